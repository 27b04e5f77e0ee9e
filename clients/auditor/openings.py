"""Opening sealed entries (ledger v2, ARCHITECTURE §10) for the story checks.

A v2 entry shows its `public` part and commits to the rest: ``sealed = SHA-256(salt ||
JCS(private))``. With the vault's auditor key (or an openings file from `vault ledger
export --openings`), the auditor reads the openings, NDJSON lines ``{"private":{...},
"salt":"<b64>","seq":N}`` in ledger order, beside the entries. `Opener` pairs each
sealed entry with its opening, checks it, and gives the story rules the full body
``{**public, **private}``: the rules then read the same fields as in a v1 entry.

Rules (`Failure.rule`):

=======  ===========================================================================
opening  a sealed entry without its opening; an opening that is malformed, is not in
         its canonical form, names an entry that is not sealed, or comes out of order;
         a salt and private body that do not hash to the entry's `sealed`
sealing  the entry shows a field that `ledger.sealing` keeps private (it would link a
         citizen), hides one that it shows (the public counts need it), or names a
         field in both parts
=======  ===========================================================================

An opening whose commitment does not match still gives its body to the stories (the
failure is named at the entry; what the body claims is checked too); a sealed entry
without a usable opening gives none, and its story is not checked.

Speed: an opening the vault wrote is canonical, so its private part is a slice of the
line and the commitment is one SHA-256 over bytes already at hand; the private part is
parsed once and re-encoded once to prove the slice canonical. Anything unusual goes the
slow way, through `ledger.sealing.parse_opening` and `commitment`, which name it.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from clients.auditor.story import Failure
from ledger.canonical import check_value, encode_checked
from ledger.entry import decode_b64
from ledger.errors import LedgerError
from ledger.sealing import (
    ERASED,
    PUBLIC_FIELDS,
    SALT_SIZE,
    commitment,
    parse_opening,
    public_fields,
)

__all__ = ["Opener"]

_HEAD = b'{"private":'
_SALT = b',"salt":"'
_SEQ = b'","seq":'
_sha256 = hashlib.sha256


class Opener:
    """Openings read in step with the entries: `open` each sealed entry in order, then
    `finish`. `failures` lists what was wrong (rules `opening` and `sealing`)."""

    __slots__ = (
        "_fine",
        "_line_no",
        "_lines",
        "_pending",
        "_pending_seq",
        "failures",
        "opened",
        "sealed",
    )

    def __init__(self, openings: Iterable[bytes]) -> None:
        self._lines: Iterator[bytes] = iter(openings)
        self._line_no = 0
        self._pending: bytes | None = None
        self._pending_seq = -1
        self.failures: list[Failure] = []
        #: Splits found right: (kind, public names, private names, an erasure's end?).
        self._fine: set[tuple[str, tuple[str, ...], tuple[str, ...], bool]] = set()
        self.sealed = 0  # sealed entries met
        self.opened = 0  # of them, opened with a matching commitment

    def _fail(self, index: int | None, rule: str, detail: str) -> None:
        self.failures.append(Failure(index, rule, detail))

    # -- pairing -------------------------------------------------------------------------

    def _next(self) -> bool:
        """Read the next opening line into `_pending` (False at the end)."""
        for data in self._lines:
            self._line_no += 1
            if self._pending_line(data):
                return True
        self._pending = None
        return False

    def _pending_line(self, data: bytes) -> bool:
        """Hold `data` as the next opening, if it is one in order (else a failure)."""
        seq = _seq_of(data)
        if seq is None:
            self._fail(None, "opening", f"line {self._line_no} of the openings is not "
                                        "an opening {\"private\",\"salt\",\"seq\"}")
            return False
        if seq <= self._pending_seq:
            self._fail(seq, "opening", f"an opening for entry {seq} after the one for "
                                       f"entry {self._pending_seq}: out of order or repeated")
            return False
        self._pending, self._pending_seq = data, seq
        return True

    def _take(self, index: int) -> bytes | None:
        """The opening line for entry `index`; openings for earlier entries (not sealed,
        since each sealed one took its own) are failures."""
        if self._pending is None:  # the usual case: the next line is this entry's
            for data in self._lines:
                self._line_no += 1
                if data.endswith(b'","seq":%d}' % index) and data.startswith(_HEAD) \
                        and index > self._pending_seq:
                    self._pending_seq = index
                    return data
                self._pending_line(data)
                break
        while True:
            if self._pending is None and not self._next():
                return None
            assert self._pending is not None
            seq = self._pending_seq
            if seq == index:
                data, self._pending = self._pending, None
                return data
            if seq > index:
                return None
            self._fail(seq, "opening", f"an opening for entry {seq}, which is not sealed")
            self._pending = None

    def skip_to(self, index: int) -> None:
        """Entries before `index` were read elsewhere (`watch` goes on from a state):
        openings for them are not this run's to check."""
        while self._pending is not None or self._next():
            if self._pending_seq >= index:
                return
            self._pending = None

    def finish(self, size: int) -> None:
        """The ledger ends at `size`: openings left over name no entry read. (A ledger
        with no sealed entry asks for none: a vault from before v2 serves none.)"""
        if not self.sealed:
            return
        while self._pending is not None or self._next():
            seq = self._pending_seq
            self._fail(seq, "opening", f"an opening for entry {seq}, "
                                       + ("which is not sealed" if seq < size else
                                          f"beyond the {size:,} entries read"))
            self._pending = None

    # -- opening -------------------------------------------------------------------------

    def open(self, index: int, kind: str, public: Mapping[str, Any], sealed: Any
             ) -> dict[str, Any] | None:
        """The full body of sealed entry `index` (`public` and `sealed` as parsed from
        its bytes), or None when it has no usable opening."""
        self.sealed += 1
        line = self._take(index)
        if line is None:
            self._fail(index, "opening", f"entry {index} is sealed, and no opening of it "
                                         "was given")
            return None
        private = _quick_open(line, index, sealed)
        if private is None:
            return self._slow_open(index, kind, public, sealed, line)
        self.opened += 1
        return self._split(index, kind, public, private)

    def _split(self, index: int, kind: str, public: Mapping[str, Any],
               private: dict[str, Any]) -> dict[str, Any]:
        """{**public, **private}, after checking the split is `ledger.sealing`'s."""
        full = {**public, **private}
        # Entries of a kind have few shapes: a shape once found right is right again (the
        # split depends on the names alone, and for a grant's end on its reason).
        shape = (kind, tuple(public), tuple(private), full.get("reason") == ERASED)
        if shape in self._fine:
            return full
        if len(full) != len(public) + len(private):
            both = sorted(public.keys() & private.keys())
            self._fail(index, "sealing", f"{', '.join(both)[:200]} both shown and sealed")
            return {**private, **public}  # what the public ledger shows wins
        if kind not in PUBLIC_FIELDS:
            return full  # a kind this auditor does not know: the stories warn of it
        shown = public_fields(kind, full)
        if shown is None:
            wrong = sorted(private)
            if wrong:
                self._fail(index, "sealing", f"a {kind} entry is wholly public, but it seals "
                                             f"{', '.join(wrong)[:200]}")
        elif shown.issuperset(public) and shown.isdisjoint(private):
            if len(self._fine) < 4096:
                self._fine.add(shape)
        else:
            linked = sorted(public.keys() - shown)
            hidden = sorted(private.keys() & shown)
            self._fail(index, "sealing", "; ".join(filter(None, (
                f"it shows {', '.join(linked)[:200]}, which {kind} entries keep sealed"
                if linked else "",
                f"it seals {', '.join(hidden)[:200]}, which {kind} entries show"
                if hidden else ""))))
        return full

    def _slow_open(self, index: int, kind: str, public: Mapping[str, Any], sealed: Any,
                   line: bytes) -> dict[str, Any] | None:
        """Name what is wrong with an opening the quick path did not accept."""
        try:
            opening = parse_opening(line)
            expected = decode_b64(sealed, "the entry's sealed")
        except LedgerError as exc:
            self._fail(index, "opening", f"not an opening in canonical form: {exc}")
            return None
        private = dict(opening.private)
        if commitment(opening.salt, private) != expected:
            self._fail(index, "opening", "the salt and private body do not hash to the "
                                         "entry's sealed commitment: one of them (or the "
                                         "commitment) was altered")
            # The body the vault claims is checked too: a story broken by the change is
            # named where it happened as well.
            return {**private, **public}
        self.opened += 1
        return self._split(index, kind, public, private)


def _seq_of(data: bytes) -> int | None:
    """The `seq` an opening line ends with (None if it does not look like one)."""
    at = data.rfind(_SEQ)
    if at < 0 or not data.startswith(_HEAD) or not data.endswith(b"}"):
        return None
    digits = data[at + len(_SEQ):-1]
    if not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0") or len(digits) > 16:
        return None
    return int(digits)


def _quick_open(line: bytes, index: int, sealed: Any) -> dict[str, Any] | None:
    """The private body of a canonical opening of entry `index` whose commitment is
    `sealed` (the entry's base64 text), or None for anything else."""
    try:
        at = line.rindex(_SALT)
        salt_text = line[at + len(_SALT):-len(_SEQ) - len(str(index)) - 1]
        salt = binascii.a2b_base64(salt_text, strict_mode=True)
        if len(salt) != SALT_SIZE or binascii.b2a_base64(salt, newline=False) != salt_text:
            return None
        private_json = line[len(_HEAD):at]
        digest = _sha256(salt + private_json).digest()
        if type(sealed) is not str or binascii.b2a_base64(digest, newline=False) \
                != sealed.encode():
            return None
        private = orjson.loads(private_json)
        if type(private) is not dict:
            return None
        # Canonical, so one reading: orjson's sorted output is JCS for ASCII text (no
        # astral keys to order otherwise), and a round trip that gives back the very
        # bytes rules out duplicate keys and other spellings. Anything else is checked
        # to the letter.
        if private_json.isascii():
            if orjson.dumps(private, option=orjson.OPT_SORT_KEYS) != private_json:
                return None
        elif encode_checked(private, check_value(private)) != private_json:
            return None
    except (ValueError, binascii.Error, orjson.JSONDecodeError, LedgerError):
        return None
    return private
