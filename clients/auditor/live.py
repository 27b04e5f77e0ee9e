"""A consent receipt's grant as it is now, from the vault's public ledger.

A receipt is a snapshot: it proves the grant's story up to its last entry (index L),
as it was when the receipt was made, and never changes. `grant_now` reads what the
ledger recorded afterwards over the ledger's HTTP contract alone (ARCHITECTURE §2:
`/ledger/checkpoint`, `/ledger/entries`, `/ledger/proofs/*`) and proves it:

- the vault's checkpoint now is signed by the receipt's key (or the pinned one), and
  its tree extends the receipt's checkpoint's (RFC 9162 §2.1.4 consistency proof);
- every entry after L up to that checkpoint's size is read, and those entries, after
  the tree's border left of L and L itself, give the checkpoint's root: none was left
  out, added or changed. The border is the inclusion proof of L in the tree of size
  L + 1, since the path of a tree's last leaf (RFC 9162 §2.1.3.1) is exactly the roots
  of the perfect subtrees to its left; it needs no trust, as only the right border
  leads to the signed root;
- the grant's entries among them follow the state machine (`clients.auditor.grants`).

It does not check the citizen's passkey signatures on those later entries (the passkey
may have been registered after the receipt, so the receipt does not hold its key):
`vault-audit verify` checks every grant's whole story.

Sealed entries (v2) show their grant id, so the grant is followed in the public ledger,
but for one end: a grant ended by its citizen's erasure shows only the month it was
asked and the state it left. With the auditor's key the openings of such entries are
read (and checked against their commitments) and the grant's end is found; without,
`erased_endings` counts the erasure endings the receipt's grant may be among.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from clients.auditor._plural import counted
from clients.auditor.fetch import LedgerClient
from clients.auditor.grants import TRANSITIONS
from clients.auditor.openings import Opener
from clients.auditor.receipt import STATE_AFTER, GrantEvent, Problem, ReceiptReport
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import parse_entry
from ledger.errors import LedgerError
from ledger.hasher import leaf_hash
from ledger.tree import CompactRange
from ledger.verify import verify_consistency

__all__ = ["LiveReport", "grant_now"]

_ERASURE = b'"reason":"citizen_erased"'


@dataclass(frozen=True, slots=True)
class LiveReport:
    """The grant now: `state`, set by the entry `last` (the receipt's own last entry
    when nothing changed), after the grant entries `changes` and `reads` reads recorded
    since the receipt, as of `checkpoint`. `ok` only when every proof held."""

    checkpoint: Checkpoint | None
    state: str | None
    last: GrantEvent | None
    changes: tuple[GrantEvent, ...] = ()
    reads: int = 0
    entries_read: int = 0
    problems: tuple[Problem, ...] = ()
    #: Grants ended by an erasure since the receipt, sealed and not opened (no auditor
    #: key): the receipt's grant may be one of them.
    erased_endings: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@dataclass(slots=True)
class _Story:
    """The grant's entries after the receipt, in ledger order."""

    grant_id: str
    subject: str | None
    state: str
    changes: list[GrantEvent] = field(default_factory=list)
    reads: int = 0
    problems: list[Problem] = field(default_factory=list)
    opener: Opener | None = None
    erased_endings: int = 0

    def read(self, index: int, data: bytes) -> None:
        # Almost every entry is another grant's: no parse needed. An erasure's ending
        # of a sealed entry names no grant in public.
        erasure = _ERASURE in data and b'"sealed":' in data
        if self.grant_id.encode() not in data and not erasure:
            return
        try:
            entry = parse_entry(data)
        except LedgerError as exc:
            self.problems.append(Problem("live", f"not a ledger entry: {exc}", index))
            return
        body = entry.body
        if erasure and "grant_id" not in body:
            opened = self._open(index, entry.kind, body, data)
            if opened is None:
                self.erased_endings += 1
                return
            body = opened
        if body.get("grant_id") != self.grant_id:
            return
        if entry.seq != index:
            self.problems.append(Problem("live", f"the entry says it is entry {entry.seq}",
                                         index))
        if entry.kind == "data.accessed":
            self.reads += 1
        elif entry.kind in STATE_AFTER:
            allowed = TRANSITIONS.get(entry.kind, {})
            # A sealed entry (v2) shows no subject: its grant id, public, ties it to the
            # grant, whose subject the receipt proved.
            if self.state not in allowed or body.get("subject", self.subject) != self.subject:
                self.problems.append(Problem(
                    "live", f"{entry.kind} does not follow from the grant's state "
                            f"{self.state!r} (or names another subject)", index))
            self.state = STATE_AFTER[entry.kind]
            self.changes.append(GrantEvent(index, entry.kind, entry.time, leaf_hash(data)))

    def _open(self, index: int, kind: str, public: Mapping[str, Any], data: bytes
              ) -> dict[str, Any] | None:
        """The full body of sealed entry `index` through its opening, or None."""
        if self.opener is None:
            return None
        self.opener.skip_to(index)
        body = self.opener.open(index, kind, public, orjson.loads(data).get("sealed"))
        self.problems += [Problem("live", f"{f.rule}: {f.detail}", f.index)
                          for f in self.opener.failures]
        self.opener.failures.clear()
        return body


def grant_now(
    client: LedgerClient,
    receipt: ReceiptReport,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> LiveReport:
    """The grant of a verified `receipt` as the vault's ledger has it now.

    Raises ValueError for a receipt that did not verify (nothing in it can be relied
    on to start from) and `AuditorError` when the vault cannot be read.
    """
    then, key, events = receipt.checkpoint, receipt.key, receipt.events
    if not receipt.ok or then is None or key is None or not events \
            or receipt.record_id is None or receipt.status is None:
        raise ValueError("only a receipt that verifies can be followed in the ledger")
    last = events[-1]
    try:
        now = open_checkpoint(client.checkpoint(), expected_verifier=key)
    except LedgerError as exc:
        return _failed(None, last, f"the vault's checkpoint does not verify under {key}: {exc}")
    problem = _extends(client, then, now)
    if problem is not None:
        return _failed(now, last, problem)
    path = client.inclusion_proof(last.index, last.index + 1)
    if len(path) != last.index.bit_count():
        return _failed(now, last, f"the inclusion proof of entry {last.index} in the tree of "
                                  f"its first {last.index + 1} entries has "
                                  f"{counted(len(path), 'hash', 'hashes')}, not "
                                  f"{last.index.bit_count()}")
    tree = CompactRange(last.index, list(reversed(path)))
    tree.push(last.leaf_hash)
    start, total = last.index + 1, now.size - last.index - 1
    story = _Story(receipt.record_id, receipt.subject, receipt.status,
                   opener=Opener(client.iter_openings(start, now.size))
                   if client.authorized else None)
    for n, data in enumerate(client.iter_entries(start, now.size)):
        story.read(start + n, data)
        tree.push(leaf_hash(data))
        if on_progress is not None and (n + 1) % 1000 == 0:
            on_progress(n + 1, total)
    root = tree.root()
    if root != now.root:
        story.problems.append(Problem(
            "live", f"entries {start:,}..{now.size - 1:,} as served, after entry "
                    f"{last.index} of the receipt, give the root {_b64(root)}, not the signed "
                    f"{_b64(now.root)}: they are not the entries the vault signed"))
    return LiveReport(now, story.state, (story.changes or [last])[-1], tuple(story.changes),
                      story.reads, total, tuple(story.problems), story.erased_endings)


def _extends(client: LedgerClient, then: Checkpoint, now: Checkpoint) -> str | None:
    """Why the tree `now` does not extend the receipt's tree `then`, or None."""
    if now.size < then.size:
        return (f"the vault now serves a tree of {counted(now.size, 'entry')}, fewer than "
                f"the {then.size:,} of the receipt's checkpoint")
    if now.size == then.size:
        return None if now.root == then.root else (
            f"the vault now serves another root for the {counted(now.size, 'entry')} of the "
            "receipt's checkpoint")
    try:
        verify_consistency(first=then.size, second=now.size,
                           proof=client.consistency_proof(then.size, now.size),
                           first_root=then.root, second_root=now.root)
    except LedgerError as exc:
        return (f"the tree of {counted(now.size, 'entry')} is not consistent with the "
                f"receipt's checkpoint of {then.size:,}: {exc}")
    return None


def _failed(now: Checkpoint | None, last: GrantEvent, why: str) -> LiveReport:
    return LiveReport(now, None, last, problems=(Problem("live", why),))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
