"""`--witness VKEY ... --quorum N`: trust a checkpoint only when N of the given witnesses
cosigned it (C2SP tlog-cosignature), so a vault cannot show this auditor a history that
those witnesses have not seen, and so cannot split its view between auditors.

Only valid cosignatures by the given keys count, once per witness; lines by other keys are
ignored and a line by a given key that does not verify is named as forged. A cosignature
dated in the future (beyond a minute of clock skew) does not count either.

`--witness "VKEY URL"` also asks that witness what it last cosigned for this log (its
monitoring URL, `GET <URL>/<hex SHA-256 of the origin>/checkpoint`, C2SP tlog-witness)
and checks, with a consistency proof from the vault, that the vault's checkpoint and the
witness's lie on one history. If not, the vault showed that witness another history: the
fork is refused and both checkpoints are shown. This covers witnesses the vault does not
send this auditor's checkpoints to, or that cosigned what the vault served others.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.watch import CheckpointRefused
from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.cosignature import CosignatureCheck, WitnessKey, check_cosignatures
from ledger.errors import LedgerError
from ledger.note import parse_note
from ledger.verify import verify_consistency

__all__ = ["ForkReported", "QuorumMissing", "WitnessPolicy", "WitnessRefusal",
           "WitnessedClient"]

#: Seconds a witness's clock may run ahead of ours.
_SKEW = 60


class WitnessRefusal(CheckpointRefused):
    """The witnesses do not back the served checkpoint; `problem` names how."""

    problem = "witness"


class QuorumMissing(WitnessRefusal):
    """The checkpoint lacks its quorum of valid cosignatures from the given witnesses."""

    problem = "witness-quorum"


class ForkReported(WitnessRefusal):
    """A witness cosigned a checkpoint of this log that the served one does not extend
    (nor is extended by): the vault has shown two histories."""

    problem = "witness-fork"


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    witnesses: tuple[WitnessKey, ...]
    quorum: int
    #: Monitoring URLs of the witnesses given as "VKEY URL".
    urls: Mapping[WitnessKey, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, keys: Sequence[str] | None, quorum: int | None) -> WitnessPolicy | None:
        """The policy of `--witness` and `--quorum` (None without either); AuditorError
        for keys that do not parse or a quorum the witnesses given cannot reach."""
        if not keys and quorum is None:
            return None
        urls: dict[WitnessKey, str] = {}
        found: list[WitnessKey] = []
        for item in keys or []:
            vkey, *url = item.split()
            try:
                key = WitnessKey.parse(vkey)
            except LedgerError as e:
                raise AuditorError(f"--witness: {e}") from None
            if len(url) > 1 or (url and not url[0].startswith(("http://", "https://"))):
                raise AuditorError(f"--witness takes 'VKEY' or 'VKEY URL', not {item[:60]!r}")
            if url:
                urls[key] = url[0].rstrip("/")
            found.append(key)
        witnesses = tuple(dict.fromkeys(found))
        needed = len(witnesses) if quorum is None else quorum
        if not 1 <= needed <= len(witnesses):
            raise AuditorError(f"--quorum {needed} needs at least {max(needed, 1)} --witness "
                               f"keys (got {len(witnesses)})")
        return cls(witnesses, needed, urls)

    def check(self, note: str | bytes, *, now: float | None = None) -> CosignatureCheck:
        when = time.time() if now is None else now
        try:
            return check_cosignatures(note, expected_witnesses=self.witnesses,
                                      not_after=int(when) + _SKEW)
        except LedgerError as e:
            raise QuorumMissing(f"witness-quorum: the checkpoint is malformed: {e}") from None

    def require(self, note: str | bytes, *, now: float | None = None) -> CosignatureCheck:
        """The check, or QuorumMissing naming how many valid cosignatures it has."""
        check = self.check(note, now=now)
        if not check.meets(self.quorum):
            forged = f"; forged or future-dated: {', '.join(check.forged)}" if check.forged \
                else ""
            raise QuorumMissing(
                f"witness-quorum: the checkpoint has {len(check.valid)} valid cosignatures of "
                f"the {self.quorum} needed from the {len(self.witnesses)} witnesses given"
                f"{forged}")
        return check

    def problem(self, note: str | bytes) -> str | None:
        """Why the note lacks its quorum, or None if it has it."""
        try:
            self.require(note)
        except QuorumMissing as e:
            return str(e)
        return None


class WitnessedClient(LedgerClient):
    """A ledger client that serves only checkpoints with the policy's quorum."""

    def __init__(self, base_url: str, *, policy: WitnessPolicy, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.policy = policy

    def checkpoint(self) -> str:
        note = super().checkpoint()
        self.policy.require(note)
        for key, url in self.policy.urls.items():
            self._compare(key, url, note)
        return note

    def _compare(self, key: WitnessKey, url: str, note: str) -> None:
        """ForkReported if what `key` last cosigned and `note` are not one history."""
        served = _checkpoint_of(note)
        origin_hash = hashlib.sha256(served.origin.encode()).hexdigest()
        try:
            r = httpx.get(f"{url}/{origin_hash}/checkpoint", timeout=30.0)
        except httpx.HTTPError as exc:
            raise AuditorError(f"cannot reach witness {key.name} at {url}: {exc}") from None
        if r.status_code == 404:
            return  # it never cosigned this log: nothing to compare
        if r.status_code != 200:
            raise AuditorError(f"witness {key.name} answered {r.status_code} at {url}")
        theirs = r.text
        try:
            if not check_cosignatures(theirs, expected_witnesses=[key]).valid:
                raise AuditorError(f"witness {key.name} serves a checkpoint it did not cosign")
            seen = _checkpoint_of(theirs)
        except LedgerError as exc:
            raise AuditorError(f"witness {key.name} serves a malformed checkpoint: {exc}"
                               ) from None
        if seen.origin != served.origin:
            raise AuditorError(f"witness {key.name} answered for another log {seen.origin!r}")
        small, large = sorted((seen, served), key=lambda c: c.size)
        try:
            if small.size == large.size:
                consistent = small.root == large.root
            elif small.size == 0:
                consistent = True
            else:
                verify_consistency(first=small.size, second=large.size,
                                   proof=self.consistency_proof(small.size, large.size),
                                   first_root=small.root, second_root=large.root)
                consistent = True
        except LedgerError:
            consistent = False
        if not consistent:
            raise ForkReported(
                f"witness-fork: witness {key.name} cosigned a checkpoint of size {seen.size} "
                f"(root {_b64(seen.root)}) that the vault's checkpoint of size {served.size} "
                f"(root {_b64(served.root)}) is not consistent with: the vault showed two "
                f"histories.\n--- the witness's checkpoint:\n{theirs}"
                f"--- the vault's checkpoint:\n{note}")


def _checkpoint_of(note: str) -> Checkpoint:
    return parse_checkpoint(parse_note(note).text)


def _b64(root: bytes) -> str:
    return base64.b64encode(root).decode()
