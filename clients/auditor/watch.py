"""`vault-audit watch`: each poll verifies only what is new since the last one.

The state directory holds one verified point of the ledger (`clients.auditor.state`:
the signed checkpoint, its size, the story checker's state and the tree's right border,
O(log n) hashes), plus what the watcher adds: the pinned key, the last entry's leaf
hash and time, and the failures found so far. A poll:

1. opens the served checkpoint with the pinned key (on a first run without `--key`, the
   vault's own key, trusted on first use and said loudly);
2. on a first run, verifies the whole ledger (`clients.auditor.verify.verify_url`) and
   keeps its state if everything verified;
3. if the tree grew, checks the RFC 9162 consistency proof from the remembered tree to
   the new one (§2.1.4.2), fetches only the new entries, checks their seq, prev links
   and times from the remembered last entry, hashes them onto the remembered border and
   compares the root with the new checkpoint's, and runs the story and personal-data
   checks on them (`EntryChecks`);
4. saves the new state: a crash leaves the old state or the new one, never a mix.

A served checkpoint smaller than the remembered one, of the same size with another
root, with a consistency proof that does not verify, or whose new entries do not give
its root, shows a rewritten or forked history: the poll says so, keeps both checkpoints
and what it found in `DIR/evidence/`, and leaves the trusted state as it was.

Story failures in new entries do not stop the watch: the state moves on (the history is
consistent), and the failures are remembered, because the ledger holds them for good.

Files the watcher adds to the state's: `key.txt` (the pinned key) and `watch.json`,
the commit record: the size it speaks for, the last entry, the failures, and the
SHA-256 of each state file. Saving writes the files into `DIR/.staging/`, replaces
`watch.json` (the commit point), then moves them into place; loading finishes a move a
crash interrupted, or drops a staging that was never committed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import orjson

from clients.auditor._plural import counted
from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.openings import Opener
from clients.auditor.state import (
    CHECKPOINT,
    SIZE,
    STORY,
    AuditState,
    StateError,
    load_state,
    save_state,
)
from clients.auditor.story import Failure, StoryChecker
from clients.auditor.verify import (
    PROGRESS_EVERY,
    SEALED_SEEN,
    STORIES_UNCHECKED,
    EntryChecks,
    relying_party_of,
    verify_url,
)
from ledger.canonical import check_value, encode_checked
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import SEALED_VERSION, VERSION, check_kind, check_time, parse_entry
from ledger.errors import EncodingError, LedgerError, ProofError, RangeError
from ledger.note import Verifier
from ledger.tree import CompactRange
from ledger.verify import verify_consistency, verify_inclusion

__all__ = [
    "COMMIT",
    "KEY",
    "CheckpointRefused",
    "Outcome",
    "WatchError",
    "WatchReport",
    "poll",
]

KeySource = Literal["given", "pinned", "first use"]
#: Called with (entries done, entries to do).
Progress = Callable[[int, int | None], None]

COMMIT = "watch.json"
KEY = "key.txt"
_STAGING = ".staging"
_FILES = (CHECKPOINT, SIZE, STORY, KEY)
_FORMAT = 1


class WatchError(AuditorError):
    """The state directory cannot be used: unreadable, in use, or pinning another key."""


class CheckpointRefused(WatchError):
    """The served checkpoint is not signed by the pinned key (or is malformed)."""


class Outcome(StrEnum):
    FIRST = "first"  # nothing was remembered: the whole ledger was verified
    UNCHANGED = "unchanged"  # the same tree as last time
    GREW = "grew"  # consistent with the last one, and its new entries checked
    REWRITTEN = "rewritten"  # the served history contradicts the trusted one


@dataclass(frozen=True, slots=True)
class WatchReport:
    """One poll: what was served, what was checked, and what was found."""

    outcome: Outcome
    checkpoint: Checkpoint  # as served (its signature verified)
    previous: Checkpoint | None  # the trusted one before this poll
    key: Verifier
    key_source: KeySource
    new_entries: int = 0
    #: Failures found in this poll's entries (chain, story, personal data), in order.
    failures: tuple[Failure, ...] = ()
    warnings: tuple[Failure, ...] = ()
    #: Failures found by earlier polls (the ledger keeps them for good).
    earlier_failures: tuple[Failure, ...] = ()
    reason: str = ""
    evidence: tuple[Path, ...] = ()
    saved: bool = False  # whether this poll moved the trusted state on
    #: Whether the stories were checked: not for sealed entries without their openings
    #: (no auditor key), nor ever after a state saved without them.
    stories: str = "checked"

    @property
    def ok(self) -> bool:
        return (self.outcome is not Outcome.REWRITTEN and not self.failures
                and not self.earlier_failures)

    @property
    def exit_code(self) -> int:
        """0 all verified, 3 a rewritten or forked history, 1 anything else wrong."""
        if self.outcome is Outcome.REWRITTEN:
            return 3
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        prev = self.previous
        return {
            "ok": self.ok, "outcome": self.outcome.value, "exit_code": self.exit_code,
            "origin": self.checkpoint.origin, "size": self.checkpoint.size,
            "root": _b64(self.checkpoint.root),
            "previous_size": None if prev is None else prev.size,
            "previous_root": None if prev is None else _b64(prev.root),
            "new_entries": self.new_entries, "key": str(self.key),
            "key_source": self.key_source,
            "failures": [_failure_json(f) for f in self.failures],
            "warnings": [_failure_json(f) for f in self.warnings],
            "earlier_failures": [_failure_json(f) for f in self.earlier_failures],
            "reason": self.reason or None, "evidence": [str(p) for p in self.evidence],
            "saved": self.saved, "stories": self.stories,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _failure_json(f: Failure) -> dict[str, Any]:
    return {"index": f.index, "rule": f.rule, "detail": f.detail}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the trusted state ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Last:
    leaf: bytes  # the leaf hash of entry size - 1
    time: str


@dataclass(frozen=True, slots=True)
class _Saved:
    """What DIR holds: the verified point, and the watcher's additions (when it wrote
    the state itself; `vault-audit verify --state` writes only the verified point)."""

    audit: AuditState
    key: Verifier | None = None
    last: _Last | None = None
    failures: tuple[Failure, ...] = ()


def _save(state_dir: Path, audit: AuditState, key: Verifier, last: _Last | None,
          failures: Sequence[Failure]) -> None:
    """Write the state so that a crash at any point leaves the old one or the new one."""
    try:
        _commit(state_dir, audit, key, last, failures)
    except (OSError, StateError) as exc:
        raise WatchError(f"cannot save the state in {state_dir}: {exc}") from None


def _commit(state_dir: Path, audit: AuditState, key: Verifier, last: _Last | None,
            failures: Sequence[Failure]) -> None:
    staging = state_dir / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    save_state(staging, audit)
    _write(staging / KEY, f"{key}\n".encode())
    files = {name: _sha((staging / name).read_bytes()) for name in _FILES}
    commit = {
        "format": _FORMAT, "size": audit.size,
        "last_leaf": None if last is None else _b64(last.leaf),
        "last_time": None if last is None else last.time,
        "failures": [_failure_json(f) for f in failures],
        "files": files,
    }
    _fsync_dir(staging)
    _write(state_dir / f"{COMMIT}.tmp", json.dumps(commit, indent=1).encode())
    os.replace(state_dir / f"{COMMIT}.tmp", state_dir / COMMIT)  # the commit point
    _fsync_dir(state_dir)
    _settle(state_dir, files)


def _settle(state_dir: Path, files: Mapping[str, str]) -> None:
    """Move committed staging files into place; drop what was never committed."""
    staging = state_dir / _STAGING
    if not staging.is_dir():
        return
    for name, digest in files.items():
        staged = staging / name
        if staged.is_file() and _sha(staged.read_bytes()) == digest:
            os.replace(staged, state_dir / name)
    shutil.rmtree(staging, ignore_errors=True)
    _fsync_dir(state_dir)


def _load(state_dir: Path) -> _Saved | None:
    """The saved state, or None when DIR holds none yet."""
    with contextlib.suppress(FileNotFoundError):
        (state_dir / f"{COMMIT}.tmp").unlink()  # written, never committed
    try:
        commit = json.loads((state_dir / COMMIT).read_bytes())
    except FileNotFoundError:
        commit = None
    except ValueError:
        raise WatchError(f"{state_dir / COMMIT} is not JSON") from None
    try:
        if commit is not None:
            if commit["format"] != _FORMAT:
                raise WatchError(f"unknown state format {commit['format']!r}")
            _settle(state_dir, commit["files"])
        else:
            shutil.rmtree(state_dir / _STAGING, ignore_errors=True)
        audit = load_state(state_dir)
        key_file = state_dir / KEY
        key = Verifier.parse(key_file.read_text()) if key_file.exists() else None
        if audit is None or commit is None or commit["size"] != audit.size:
            # Written by `verify --state` (or by it after us): the point, and a pinned key.
            return None if audit is None else _Saved(audit, key)
        last = None
        if commit["last_leaf"] is not None:
            last = _Last(base64.b64decode(commit["last_leaf"], validate=True),
                         commit["last_time"])
        failures = tuple(Failure(f["index"], f["rule"], f["detail"])
                         for f in commit["failures"])
        return _Saved(audit, key, last, failures)
    except (KeyError, TypeError, ValueError, binascii.Error, LedgerError, OSError,
            StateError) as exc:
        raise WatchError(f"the state in {state_dir} cannot be read: {exc}") from None


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One watcher at a time per directory (the lock goes with the process)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WatchError(f"another watcher is using {state_dir}") from None
        yield


def _pin(client: LedgerClient, saved: _Saved | None,
         expected_key: Verifier | None) -> tuple[Verifier, KeySource]:
    pinned = saved.key if saved is not None else None
    if pinned is not None:
        if expected_key is not None and expected_key != pinned:
            raise WatchError(f"the state pins the key {pinned}, not {expected_key}: watch "
                             "under another key with a new state directory")
        return pinned, "given" if expected_key is not None else "pinned"
    if expected_key is not None:
        return expected_key, "given"
    try:
        return Verifier.parse(client.key()), "first use"
    except LedgerError as exc:
        raise WatchError(f"the vault's /ledger/key does not parse: {exc}") from None


# -- a poll -----------------------------------------------------------------------------


def poll(
    client: LedgerClient,
    state_dir: Path,
    *,
    url: str,
    expected_key: Verifier | None = None,
    rp_id: str | None = None,
    origins: Sequence[str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_progress: Progress | None = None,
) -> WatchReport:
    """Verify what the vault at `url` serves now against what `state_dir` remembers.

    The passkeys' relying party is, in order: the one given, the one the state
    remembers, the one of `url`. Raises CheckpointRefused when the served checkpoint is
    not signed by the pinned key, WatchError when the state cannot be used, and
    AuditorError when the vault cannot be read: in each case nothing is saved.
    """
    with _locked(state_dir):
        saved = _load(state_dir)
        key, source = _pin(client, saved, expected_key)
        note = client.checkpoint()
        try:
            served = open_checkpoint(note, expected_verifier=key)
        except LedgerError as exc:
            raise CheckpointRefused(f"the served checkpoint is refused: {exc}") from None
        remembered = saved.audit.story if saved is not None else {}
        default_rp, default_origins = relying_party_of(url)
        rp = rp_id or remembered.get("rp_id") or default_rp
        ors = tuple(origins or remembered.get("origins") or default_origins)
        if saved is None:
            return _first(client, state_dir, key, source, served, rp, ors, on_progress)
        try:
            trusted = open_checkpoint(saved.audit.checkpoint, expected_verifier=key)
        except LedgerError as exc:
            raise WatchError(f"the checkpoint saved in {state_dir} does not open with the "
                             f"key {key}: {exc}") from None
        tree = CompactRange(trusted.size, list(saved.audit.border))
        if trusted.size != saved.audit.size or tree.root() != trusted.root:
            raise WatchError(f"the tree border saved in {state_dir} does not give the "
                             "saved checkpoint's root")
        return _Poll(client, url, state_dir, now(), saved, trusted, tree, key, source, note,
                     served, rp, ors, on_progress).run()


def _first(client: LedgerClient, state_dir: Path, key: Verifier, source: KeySource,
           served: Checkpoint, rp_id: str, origins: Sequence[str],
           on_progress: Progress | None) -> WatchReport:
    """Verify everything (`verify_url`); keep the state only if everything verified."""
    staging = state_dir / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    report = verify_url(client, expected_key=key, rp_id=rp_id, origins=origins,
                        on_progress=on_progress, state_dir=staging)
    cp = report.checkpoint or served  # verify_url fetched it again: it may have grown
    saved = False
    if report.state_saved is not None:
        audit = load_state(staging)
        assert audit is not None  # verify_url just saved it
        shutil.rmtree(staging)
        _save(state_dir, audit, key, None, ())
        saved = True
    shutil.rmtree(staging, ignore_errors=True)
    return WatchReport(Outcome.FIRST, cp, None, key, source, new_entries=report.size,
                       failures=tuple(report.failures), warnings=tuple(report.warnings),
                       saved=saved, stories=report.stories)


@dataclass(slots=True)
class _Chain:
    """The end of the verified log, extended entry by entry (RFC 9162 §2.1.1 leaves)."""

    tree: CompactRange
    last: _Last | None
    failures: list[Failure] = field(default_factory=list)

    def extend(self, entries: Iterator[bytes], checks: EntryChecks,
               on_entry: Callable[[int], None] | None = None) -> None:
        sha256, tree, last = hashlib.sha256, self.tree, self.last
        # Without a last entry the tree is empty (a state without the last hash proves
        # it first: `_Poll.trusted_last`), and entry 0 has an empty prev.
        prev_b64 = _b64(last.leaf) if last is not None else ""
        time = last.time if last is not None else ""
        for data in entries:
            i = tree.size
            leaf = sha256(b"\x00" + data).digest()
            entry_time = _plain_entry(data, i, prev_b64, time)
            if entry_time is None:
                entry_time = self._named_failure(data, i, last, time)
            time = max(time, entry_time)
            checks.feed(i, data)
            tree.push(leaf)
            last = _Last(leaf, time)
            prev_b64 = _b64(leaf)
            if on_entry is not None and tree.size % PROGRESS_EVERY == 0:
                on_entry(tree.size)
        self.last = last
        if on_entry is not None:
            on_entry(tree.size)

    def _named_failure(self, data: bytes, i: int, last: _Last | None, time: str) -> str:
        """The slow path, for an entry `_plain_entry` did not pass: say what is wrong."""
        fail = self.failures.append
        try:
            entry = parse_entry(data)
        except EncodingError as exc:
            fail(Failure(i, "chain", f"not a canonical entry: {exc}"))
            return time
        if entry.seq != i:
            fail(Failure(i, "chain", f"seq {entry.seq} where {i} belongs"))
        if last is not None and entry.prev != last.leaf:
            fail(Failure(i, "chain", f"prev is not the leaf hash of entry {i - 1}"))
        if entry.time < time:
            fail(Failure(i, "chain", f"time {entry.time} is earlier than the previous "
                                     f"entry's {time}"))
        return entry.time


def _plain_entry(data: bytes, seq: int, prev_b64: str, time: str) -> str | None:
    """The entry's time if it is plainly entry `seq` after the leaf `prev_b64`, at or
    after `time`, in canonical form (ARCHITECTURE §2); None for anything else (the slow
    path names it). The rules of `parse_entry`, in the order cheap for the common case
    (as `ledger.audit.LogAuditor` checks them from entry 0)."""
    try:
        obj = orjson.loads(data)
        if type(obj) is not dict or len(obj) not in (6, 7):
            return None
        if len(obj) == 7:  # sealed (v2): `public` and a canonical 32-byte `sealed`
            version, body, sealed = SEALED_VERSION, obj["public"], obj["sealed"]
            if type(sealed) is not str or len(sealed) != 44 \
                    or _b64(base64.b64decode(sealed, validate=True)) != sealed:
                return None
        else:
            version, body = VERSION, obj["body"]
        t = obj["time"]
        if (obj["seq"] != seq or type(obj["seq"]) is not int or obj["prev"] != prev_b64
                or obj["v"] != version or type(obj["v"]) is not int or type(body) is not dict):
            return None
        check_time(t)
        check_kind(obj["kind"])
        if t < time or encode_checked(obj, check_value(body, parsed_ascii=data.isascii())) \
                != data:
            return None
        return t  # type: ignore[no-any-return]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, EncodingError):
        return None


@dataclass(slots=True)
class _Poll:
    client: LedgerClient
    url: str
    state_dir: Path
    now: datetime
    saved: _Saved
    trusted: Checkpoint
    tree: CompactRange
    key: Verifier
    source: KeySource
    note: str
    served: Checkpoint
    rp_id: str
    origins: tuple[str, ...]
    on_progress: Progress | None

    def report(self, outcome: Outcome, **kw: Any) -> WatchReport:
        return WatchReport(outcome, self.served, self.trusted, self.key, self.source,
                           earlier_failures=self.saved.failures, **kw)

    def run(self) -> WatchReport:
        old, new = self.trusted, self.served
        if new.size < old.size:
            return self.rewritten(f"the served tree has {counted(new.size, 'entry')}, fewer "
                                  f"than the {old.size:,} of the trusted checkpoint")
        if new.size == old.size:
            if new.root != old.root:
                return self.rewritten(f"the served tree of {counted(new.size, 'entry')} has "
                                      "another root than the trusted checkpoint of the same size")
            return self.report(Outcome.UNCHANGED)
        proof: list[bytes] = []
        if old.size:  # the empty tree is a prefix of every tree
            proof = self.client.consistency_proof(old.size, new.size)
            try:
                verify_consistency(first=old.size, second=new.size, proof=proof,
                                   first_root=old.root, second_root=new.root)
            except (ProofError, RangeError) as exc:
                return self.rewritten(
                    f"the consistency proof from {old.size:,} to "
                    f"{counted(new.size, 'entry')} does not verify: {exc}",
                    consistency_proof=[_b64(h) for h in proof])
        return self.grow(proof)

    def grow(self, proof: list[bytes]) -> WatchReport:
        old, new = self.trusted, self.served
        try:
            story = StoryChecker.from_state(self.saved.audit.story, rp_id=self.rp_id,
                                            origins=self.origins)
        except (KeyError, TypeError, ValueError) as exc:
            raise WatchError(f"the story state in {self.state_dir} cannot be read: "
                             f"{exc!r}") from None
        # Sealed entries are opened when the auditor key can fetch their openings (ARCHITECTURE
        # §10); without, their stories are not checked (as `verify` says of the public ledger).
        # A state saved without them knows no sealed entry's story: none can be checked on.
        unchecked = bool(self.saved.audit.story.get(STORIES_UNCHECKED))
        checks = EntryChecks(story, opener=Opener(self.client.iter_openings(old.size, new.size))
                             if self.client.authorized and not unchecked else None,
                             sealed_seen=bool(self.saved.audit.story.get(SEALED_SEEN)))
        chain = _Chain(CompactRange(self.tree.size, list(self.tree.hashes)), self.saved.last)
        entries = self.client.iter_entries(self.resume_from(chain), new.size)
        if chain.last is None and old.size:
            try:
                chain.last = self.trusted_last(next(entries))
            except (ProofError, RangeError) as exc:
                return self.rewritten(f"entry {old.size - 1} as served now is not the one "
                                      f"in the trusted tree: {exc}")
        report = self.on_progress
        on_entry = None if report is None else (
            lambda n: report(n - old.size, new.size - old.size))
        chain.extend(entries, checks, on_entry)
        root = chain.tree.root()
        if root != new.root:
            return self.rewritten(
                f"entries {old.size:,}..{new.size - 1:,} as served do not give the signed "
                f"root (they give {_b64(root)}): the entries served are not the ones signed",
                tuple(chain.failures), consistency_proof=[_b64(h) for h in proof])
        checks.finish(new.size)
        found = tuple(sorted([*chain.failures, *checks.failures],
                             key=lambda f: -1 if f.index is None else f.index))
        state = story.to_state()
        unchecked = unchecked or (checks.opener is None and checks.unopened > 0)
        if unchecked:
            state[STORIES_UNCHECKED] = True
        if checks.sealed_seen:
            state[SEALED_SEEN] = True
        audit = AuditState(self.note, new.size, state, tuple(chain.tree.hashes))
        _save(self.state_dir, audit, self.key, chain.last, (*self.saved.failures, *found))
        return self.report(Outcome.GREW, new_entries=new.size - old.size, failures=found,
                           warnings=tuple(story.warnings), saved=True,
                           stories="not checked: no openings" if unchecked else "checked")

    def resume_from(self, chain: _Chain) -> int:
        """Where to fetch from: the first new entry, or the last trusted one when the
        state does not hold its hash (written by `verify --state`)."""
        size = self.trusted.size
        return size - 1 if chain.last is None and size else size

    def trusted_last(self, data: bytes) -> _Last:
        """The last trusted entry, fetched again: proved to be in the trusted tree by an
        inclusion proof (RFC 9162 §2.1.3.2) before its hash and time are relied on."""
        size = self.trusted.size
        leaf = hashlib.sha256(b"\x00" + data).digest()
        verify_inclusion(leaf_hash=leaf, index=size - 1, tree_size=size,
                         proof=self.client.inclusion_proof(size - 1, size),
                         expected_root=self.trusted.root)
        try:
            time = parse_entry(data).time
        except EncodingError:
            time = ""  # verified once; its chain failure was reported then
        return _Last(leaf, time)

    def rewritten(self, reason: str, failures: tuple[Failure, ...] = (),
                  **details: Any) -> WatchReport:
        old, new = self.trusted, self.served
        doc = {
            "outcome": Outcome.REWRITTEN.value, "reason": reason, "url": self.url,
            "key": str(self.key), "observed_at": self.now.isoformat(),
            "trusted": {"size": old.size, "root": _b64(old.root)},
            "served": {"size": new.size, "root": _b64(new.root)},
            "failures": [_failure_json(f) for f in failures], **details}
        kept = _keep_evidence(self.state_dir, self.now, self.saved.audit.checkpoint,
                              old.size, self.note, new.size, doc)
        return self.report(Outcome.REWRITTEN, reason=reason, evidence=kept,
                           failures=failures)


def _keep_evidence(state_dir: Path, now: datetime, trusted_note: str, trusted_size: int,
                   served_note: str, served_size: int, details: Mapping[str, Any]
                   ) -> tuple[Path, ...]:
    """Both checkpoints and what was found, under names no later poll overwrites."""
    folder = state_dir / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    prefix, n = stamp, 1
    while any(folder.glob(f"{prefix}-*")):
        n += 1
        prefix = f"{stamp}-{n}"
    kept = (folder / f"{prefix}-trusted-{trusted_size}.checkpoint",
            folder / f"{prefix}-served-{served_size}.checkpoint",
            folder / f"{prefix}-report.json")
    _write(kept[0], trusted_note.encode())
    _write(kept[1], served_note.encode())
    _write(kept[2], json.dumps(dict(details), indent=1).encode())
    return kept
