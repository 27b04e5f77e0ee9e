"""Checking a consent receipt offline, with nothing but the receipt (and pinned keys).

A receipt (built by `wallet.receipts.build_receipt`) carries, under `ledger_evidence`,
the grant's ledger entries byte for byte, an RFC 9162 inclusion proof of each against
one signed checkpoint, the log's C2SP verifier key, and the `passkey.registered` entry
of every passkey that signed an action. `verify_receipt` checks, and reports every
failure it finds rather than stopping at the first:

- the checkpoint's signature under the key (pin it with `expected_key`: the key in the
  receipt only proves the receipt agrees with itself), and that the note is in its one
  canonical spelling;
- each entry: canonical entry bytes (ARCHITECTURE §2), its `seq` equal to its index, and
  its inclusion proof leading to the checkpoint's root;
- each sealed (v2) entry's opening (`ledger_evidence.openings`, ARCHITECTURE §10): its
  salt and private body hash to the entry's `sealed`, and split as `ledger.sealing` says;
  the checks below then read the full body. A receipt from before v2 has no openings,
  and needs none;
- the grant: `terms_hash` is the SHA-256 of the JCS terms in `grant.requested`; every
  grant entry names the same grant and subject; the approval, and every pause, resume
  or revoke the citizen signed, verifies offline against the signing passkey's
  registration (WebAuthn, `clients.auditor.assertion`) over the challenge it must sign;
- a step a delegate took for the citizen (`actor` beside `subject`, ARCHITECTURE §9): it
  is signed by one of the delegate's passkeys, and the receipt holds the
  `delegation.granted` entry it names, before it, letting that delegate act for this
  subject with that action until after it, whose terms hash to its `terms_hash` and are
  signed by the delegate (and by the principal, unless the receipt shows the principal
  had no passkey then: a child's vault). That the delegation had not ended by then is
  the ledger's to show (`vault-audit verify`), not a receipt's: a receipt holds no
  proof that something did not happen;
- the ISO/IEC TS 27560 fields: the record, the data principal, the status, the events
  and the processing terms say what the entries say.

Like the rest of the auditor, it imports no vault or wallet code: only `ledger`'s pure
functions and the auditor's own assertion check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.auditor.assertion import (
    AssertionInvalid,
    b64url_decode,
    load_cose_key,
    parse_assertion,
    verify_assertion,
)
from clients.auditor.delegations import NEEDS
from clients.auditor.grants import ACTIONS, action_challenge
from ledger.canonical import canonical_json
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import Entry, parse_entry
from ledger.errors import LedgerError
from ledger.hasher import HASH_SIZE, leaf_hash
from ledger.note import Note, Verifier, open_note, parse_note
from ledger.sealing import SALT_SIZE, Opening, check_opening
from ledger.verify import verify_leaf_inclusion

__all__ = [
    "ACTIONS",
    "RECEIPT_TYPE",
    "STATE_AFTER",
    "GrantEvent",
    "Problem",
    "ReceiptReport",
    "action_challenge",
    "is_receipt",
    "verify_receipt",
]

#: The grant's state after each kind of grant entry (ARCHITECTURE §3).
STATE_AFTER: Mapping[str, str] = {
    "grant.requested": "requested",
    "grant.approved": "approved",
    "grant.denied": "denied",
    "grant.cancelled": "cancelled",
    "grant.lapsed": "lapsed",
    "grant.paused": "paused",
    "grant.resumed": "approved",
    "grant.revoked": "revoked",
    "grant.expired": "expired",
    "grant.exhausted": "exhausted",
}

#: What every consent receipt the wallet makes says it is (its JSON-LD `@type`).
RECEIPT_TYPE = "dpv:ConsentReceipt"

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check: `check` names which (format, key, checkpoint, entry, inclusion,
    opening, terms, approval, delegation, claims), `index` the ledger entry concerned, if
    any."""

    check: str
    message: str
    index: int | None = None

    def __str__(self) -> str:
        where = f"entry {self.index}: " if self.index is not None else ""
        return f"{self.check}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class GrantEvent:
    """One of the grant's ledger entries, as the receipt proves it."""

    index: int
    kind: str
    time: str
    #: RFC 9162 leaf hash of the entry's bytes (where a later check continues the tree).
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    """What was checked, and every problem found. `ok` only when there are none.

    A receipt is a snapshot: `status` is the grant's state when the receipt was made
    (`made_at`, its `receipt_timestamp`), set by the last of `events`. What happened to
    the grant afterwards is in the ledger, not in the receipt (`clients.auditor.live`).
    """

    problems: tuple[Problem, ...]
    record_id: str | None = None
    status: str | None = None
    subject: str | None = None
    made_at: str | None = None
    events: tuple[GrantEvent, ...] = ()
    checkpoint: Checkpoint | None = None
    key: Verifier | None = None
    #: True when the key came from the caller, not from the receipt itself.
    key_pinned: bool = False
    rp_pinned: bool = False
    entries_included: int = 0
    signatures_verified: int = 0
    #: Sealed entries opened: their openings checked against their commitments.
    entries_opened: int = 0
    #: Steps a delegate took, each checked against its delegation (ARCHITECTURE §9).
    delegated: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class _Included:
    index: int
    entry: Entry
    data: bytes
    included: bool


@dataclass(slots=True)
class _Run:
    problems: list[Problem] = field(default_factory=list)

    def fail(self, check: str, message: str, index: int | None = None) -> None:
        self.problems.append(Problem(check, message, index))


def _get(doc: Any, *path: str | int) -> Any:
    """doc[path[0]][path[1]]..., or _MISSING where the receipt lacks it."""
    for step in path:
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return doc


def _b64(text: Any) -> bytes | None:
    """Strict standard base64 (one spelling per value), or None."""
    if not isinstance(text, str):
        return None
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode() == text else None


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    return json.dumps(value, default=lambda _: None)[:200]


def _load(receipt: Mapping[str, Any] | str | bytes) -> Any:
    if isinstance(receipt, str | bytes):
        try:
            return json.loads(receipt)
        except ValueError:
            return None
    return receipt


def is_receipt(doc: Any) -> bool:
    """Whether `doc` (parsed JSON) presents itself as a consent receipt: its `@type`, or
    the ledger evidence every receipt carries. One that does and then fails the checks
    is a broken or forged receipt; one that does not is some other file."""
    return isinstance(doc, Mapping) and (doc.get("@type") == RECEIPT_TYPE
                                         or "ledger_evidence" in doc)


def verify_receipt(
    receipt: Mapping[str, Any] | str | bytes,
    *,
    expected_key: Verifier | None = None,
    expected_rp_id: str | None = None,
    expected_origins: Sequence[str] | None = None,
) -> ReceiptReport:
    """Check a consent receipt (the parsed JSON, or its text) offline.

    Without `expected_key` the receipt's own key is used, and without `expected_rp_id`
    and `expected_origins` its own relying party: the report says which were pinned,
    because only pinned values protect against a receipt forged whole.
    """
    run = _Run()
    doc = _load(receipt)
    evidence = _get(doc, "ledger_evidence")
    if not isinstance(evidence, Mapping):
        run.fail("format", "the receipt is not a JSON object with ledger_evidence")
        return ReceiptReport(tuple(run.problems))
    key = expected_key or _receipt_key(run, evidence)
    if key is not None:
        _signature(run, doc, key)
    checkpoint = _checkpoint(run, evidence, key) if key is not None else None
    entries = _entries(run, evidence, checkpoint)
    opened = _open(run, evidence, entries)
    rp_id = expected_rp_id if expected_rp_id is not None else _get(evidence, "passkeys", "rp_id")
    origins = (list(expected_origins) if expected_origins is not None
               else _get(evidence, "passkeys", "origins"))
    grant = _Grant(run, doc, entries, rp_id, origins)
    grant.check()
    made_at = _get(doc, "receipt_timestamp")
    return ReceiptReport(
        tuple(run.problems), record_id=grant.grant_id, status=grant.state,
        subject=grant.subject, made_at=made_at if isinstance(made_at, str) else None,
        events=tuple(GrantEvent(e.index, e.entry.kind, e.entry.time, leaf_hash(e.data))
                     for e in grant.events),
        checkpoint=checkpoint, key=key, key_pinned=expected_key is not None,
        rp_pinned=expected_rp_id is not None and expected_origins is not None,
        entries_included=sum(e.included for e in entries), signatures_verified=grant.signed,
        entries_opened=opened, delegated=grant.delegated)


def _receipt_key(run: _Run, evidence: Mapping[str, Any]) -> Verifier | None:
    text = evidence.get("verifier_key")
    if not isinstance(text, str):
        run.fail("key", "the receipt has no verifier_key")
        return None
    try:
        return Verifier.parse(text)
    except LedgerError as exc:
        run.fail("key", f"the verifier key does not parse: {exc}")
        return None


def _checkpoint(run: _Run, evidence: Mapping[str, Any], key: Verifier) -> Checkpoint | None:
    note = evidence.get("checkpoint")
    if not isinstance(note, str):
        run.fail("checkpoint", "the receipt has no checkpoint note")
        return None
    try:
        checkpoint = open_checkpoint(note, expected_verifier=key)
        parsed = parse_note(note)
    except LedgerError as exc:
        run.fail("checkpoint", f"the checkpoint does not verify under {key}: {exc}")
        return None
    if not _canonical(parsed, note):
        run.fail("checkpoint", "the checkpoint note is not in its canonical form")
        return None
    return checkpoint


def _canonical(parsed: Note, note: str) -> bool:
    """Base64 leaves spare bits at the end of a signature: a note could be respelt with
    the same signature bytes. A receipt holds the one canonical spelling."""
    lines = "".join(
        f"\u2014 {s.name} {base64.b64encode(s.key_id.to_bytes(4, 'big') + s.signature).decode()}\n"
        for s in parsed.signatures)
    return parsed.text + "\n" + lines == note


#: The first line of the vault's signature over a receipt; the second is BASE64(SHA-256(
#: RFC 8785 canonical JSON of the receipt without "signature")).
RECEIPT_NOTE = "citizen-vault/consent-receipt"


def _signature(run: _Run, doc: Mapping[str, Any], key: Verifier) -> None:
    """The vault's signed note over every other field: the words the ledger does not
    hold (labels, the notice, statuses) are bound by it, so no byte changes unseen."""
    note = doc.get("signature")
    if not isinstance(note, str):
        run.fail("signature", "the receipt is not signed by the vault")
        return
    body = {k: v for k, v in doc.items() if k != "signature"}
    digest = base64.b64encode(hashlib.sha256(canonical_json(body)).digest()).decode()
    try:
        opened = open_note(note, expected_verifiers=[key])
    except LedgerError as exc:
        run.fail("signature", f"the receipt's signature does not verify under {key}: {exc}")
        return
    if not _canonical(opened, note):
        run.fail("signature", "the receipt's signature is not in its canonical form")
    elif opened.text != f"{RECEIPT_NOTE}\n{digest}\n":
        run.fail("signature", "the receipt was changed after the vault signed it")


def _entries(run: _Run, evidence: Mapping[str, Any],
             checkpoint: Checkpoint | None) -> list[_Included]:
    raw = evidence.get("entries")
    if not isinstance(raw, list) or not raw:
        run.fail("format", "ledger_evidence.entries must be a non-empty list")
        return []
    found: list[_Included] = []
    seen: set[int] = set()
    for n, item in enumerate(raw):
        index = _get(item, "index")
        if type(index) is not int or index < 0:
            run.fail("format", f"ledger_evidence.entries[{n}] has no index")
            continue
        if index in seen:
            run.fail("format", "the entry appears twice", index)
            continue
        seen.add(index)
        entry = _entry(run, item, index)
        if entry is None:
            continue
        found.append(_Included(index, entry, _get(item, "entry").encode("utf-8"),
                               _included(run, item, index, checkpoint)))
    return sorted(found, key=lambda e: e.index)


def _entry(run: _Run, item: Any, index: int) -> Entry | None:
    text = _get(item, "entry")
    try:
        data = text.encode("utf-8") if isinstance(text, str) else None
    except UnicodeEncodeError:
        data = None
    if data is None:
        run.fail("entry", "the entry is not UTF-8 text", index)
        return None
    try:
        entry = parse_entry(data)
    except LedgerError as exc:
        run.fail("entry", f"not a ledger entry in canonical form: {exc}", index)
        return None
    if entry.seq != index:
        run.fail("entry", f"the entry says it is entry {entry.seq}", index)
        return None
    if _get(item, "kind") != entry.kind:
        run.fail("entry", f"listed as {_get(item, 'kind')!r}, but the entry is {entry.kind!r}",
                 index)
    return entry


def _open(run: _Run, evidence: Mapping[str, Any], entries: list[_Included]) -> int:
    """Give each sealed entry its full body from its opening; the number opened. An entry
    that cannot be opened is dropped (its grant then lacks it: the claims say so)."""
    raw = evidence.get("openings", [])
    if not isinstance(raw, list):
        run.fail("format", "ledger_evidence.openings must be a list")
        raw = []
    openings: dict[int, Opening] = {}
    for n, item in enumerate(raw):
        opening = _opening(item)
        if opening is None:
            run.fail("opening", f"ledger_evidence.openings[{n}] is not an opening "
                                f"{{seq, salt ({SALT_SIZE} bytes, base64), private}}")
        elif opening.seq in openings:
            run.fail("opening", "the entry has two openings", opening.seq)
        else:
            openings[opening.seq] = opening
    count = 0
    for e in list(entries):
        opening = openings.pop(e.index, None)
        if e.entry.sealed is None:
            if opening is not None:
                run.fail("opening", "an opening for an entry that is not sealed", e.index)
            continue
        if opening is None:
            run.fail("opening", "the entry is sealed, and the receipt holds no opening of it",
                     e.index)
            entries.remove(e)
            continue
        try:
            e.entry = e.entry._replace(body=check_opening(e.entry, opening))
        except LedgerError as exc:
            run.fail("opening", str(exc), e.index)
            entries.remove(e)
            continue
        count += 1
    for seq in sorted(openings):
        run.fail("opening", "an opening for an entry the receipt does not hold", seq)
    return count


def _opening(item: Any) -> Opening | None:
    seq, salt, private = _get(item, "seq"), _b64(_get(item, "salt")), _get(item, "private")
    if not isinstance(item, Mapping) or len(item) != 3 or type(seq) is not int or seq < 0 \
            or salt is None or len(salt) != SALT_SIZE or not isinstance(private, dict):
        return None
    return Opening(seq, salt, private)


def _included(run: _Run, item: Any, index: int, checkpoint: Checkpoint | None) -> bool:
    raw = _get(item, "inclusion_proof")
    proof = [_b64(h) for h in raw] if isinstance(raw, list) else [None]
    if any(h is None or len(h) != HASH_SIZE for h in proof):
        run.fail("inclusion", "the inclusion proof must be a list of canonical base64 "
                              f"{HASH_SIZE}-byte hashes", index)
        return False
    if checkpoint is None:
        return False  # already reported: nothing verified to prove inclusion against
    try:
        verify_leaf_inclusion(entry=_get(item, "entry").encode("utf-8"), index=index,
                              tree_size=checkpoint.size,
                              proof=[h for h in proof if h is not None],
                              expected_root=checkpoint.root)
    except LedgerError as exc:
        run.fail("inclusion", f"not included in the checkpoint's tree: {exc}", index)
        return False
    return True


class _Grant:
    """The grant's entries, checked against each other and against the receipt's claims."""

    def __init__(self, run: _Run, doc: Any, entries: list[_Included], rp_id: Any,
                 origins: Any) -> None:
        self.run, self.doc, self.rp_id, self.origins = run, doc, rp_id, origins
        self.events = [e for e in entries if e.entry.kind.startswith("grant.")]
        self.keys = [e for e in entries if e.entry.kind == "passkey.registered"]
        self.delegations = {e.entry.body["delegation_id"]: e for e in entries
                            if e.entry.kind == "delegation.granted"
                            and isinstance(e.entry.body.get("delegation_id"), str)}
        self.grant_id: str | None = None
        self.subject: str | None = None
        self.state: str | None = None
        self.signed = 0
        self.delegated = 0

    def check(self) -> None:
        if not self.events or self.events[0].entry.kind != "grant.requested":
            self.run.fail("claims", "the receipt holds no grant.requested entry before the "
                                    "grant's other entries")
            return
        requested = self.events[0]
        body = requested.entry.body
        grant_id, subject = body.get("grant_id"), body.get("subject")
        terms, terms_hash = body.get("terms"), _b64(body.get("terms_hash"))
        if not isinstance(grant_id, str) or not isinstance(subject, str) \
                or not isinstance(terms, dict) or terms_hash is None:
            self.run.fail("terms", "grant.requested lacks grant_id, subject, terms or "
                                   "terms_hash", requested.index)
            return
        self.grant_id, self.subject = grant_id, subject
        computed = hashlib.sha256(canonical_json(terms)).digest()
        if computed != terms_hash:
            self.run.fail("terms", f"the terms hash to {base64.b64encode(computed).decode()}, "
                                   f"not to the recorded {body['terms_hash']}", requested.index)
        for i, e in enumerate(self.events):
            b = e.entry.body
            if b.get("grant_id") != grant_id or b.get("subject") != subject:
                self.run.fail("claims", "the entry is about another grant or subject", e.index)
            elif e.entry.kind not in STATE_AFTER or (i and e.entry.kind == "grant.requested"):
                self.run.fail("claims", f"unexpected {e.entry.kind} entry", e.index)
            elif i:
                self._signature(e, self.events[i - 1].index, grant_id, subject, terms_hash)
        self.state = STATE_AFTER.get(self.events[-1].entry.kind)
        self._claims(terms, subject)

    def _signature(self, e: _Included, after: int, grant_id: str, subject: str,
                   terms_hash: bytes) -> None:
        kind, body = e.entry.kind, e.entry.body
        # A delegate acts within a delegation, and signs with their own passkey
        # (ARCHITECTURE §9); a refusal they made is theirs too, though unsigned.
        signer = body.get("actor", subject)
        if signer != subject and not self._delegated(e, signer, subject):
            return
        if kind == "grant.approved":
            if body.get("terms_hash") != base64.b64encode(terms_hash).decode():
                self.run.fail("approval", "the approval names other terms", e.index)
                return
            challenge = terms_hash
        elif kind in ACTIONS and "assertion" in body:
            challenge = action_challenge(grant_id=grant_id, action=ACTIONS[kind],
                                         terms_hash=terms_hash, after=after)
        else:
            return  # not signed by the citizen (a service's, or the vault's, transition)
        if self._verified(e, body.get("assertion"), signer, challenge, "approval",
                          f"{kind} carries no passkey assertion"):
            self.signed += 1

    def _verified(self, e: _Included, a: Any, signer: Any, challenge: bytes, check: str,
                  missing: str) -> bool:
        """Whether `a` is an assertion over `challenge` by a passkey `signer` registered
        before entry `e` (a problem named `check` if not)."""
        if not isinstance(a, dict) or not all(isinstance(a.get(k), str) for k in (
                "credential_id", "authenticator_data", "client_data_json", "signature")):
            self.run.fail(check, missing, e.index)
            return False
        registered = [k for k in self.keys if k.index < e.index
                      and k.entry.body.get("credential_id") == a["credential_id"]
                      and k.entry.body.get("subject") == signer]
        if not registered:
            whose = "this subject" if signer == self.subject else f"{str(signer)[:60]}"
            self.run.fail(check, f"the receipt holds no earlier passkey.registered entry "
                                 f"of {whose} for credential {a['credential_id']}", e.index)
            return False
        if not isinstance(self.rp_id, str) or not isinstance(self.origins, list):
            self.run.fail("format", "ledger_evidence.passkeys needs rp_id and origins")
            return False
        try:
            key = load_cose_key(b64url_decode(registered[-1].entry.body.get("public_key"),
                                              what="the public key"))
            verify_assertion(parse_assertion(a), public_key=key, expected_challenge=challenge,
                             expected_rp_id=self.rp_id, expected_origins=self.origins)
        except AssertionInvalid as exc:
            self.run.fail(check, f"the passkey signature does not verify "
                                 f"({exc.reason}): {exc}", e.index)
            return False
        return True

    def _delegated(self, e: _Included, actor: Any, subject: str) -> bool:
        """Whether the receipt shows `actor` could take step `e` for `subject`: the
        delegation it names, granted before it with that action, until after it, its
        terms hashed and signed by both people (problems named `delegation` if not)."""
        kind, body = e.entry.kind, e.entry.body
        did = body.get("delegation_id")
        d = self.delegations.get(did)
        if not isinstance(actor, str) or d is None:
            self.run.fail("delegation", f"{kind} was taken by {str(actor)[:60]} for the "
                                        f"subject, and the receipt holds no delegation.granted "
                                        f"entry of its delegation {str(did)[:60]}", e.index)
            return False
        t = d.entry.body
        needed = NEEDS.get(kind, "view")
        actions = t.get("actions")
        until = t.get("until")
        wrong = [why for bad, why in (
            (d.index >= e.index, f"it was granted at entry {d.index}, not before"),
            (t.get("subject") != subject, "it is another subject's"),
            (t.get("delegate") != actor, f"it does not let {actor} act"),
            (not isinstance(actions, list) or needed not in actions,
             f"it does not allow {needed}"),
            (not isinstance(until, str) or not until.endswith("Z")
             or e.entry.time >= until[:-1] + ".000Z", f"it ran until {str(until)[:30]}"),
        ) if bad]
        if wrong:
            self.run.fail("delegation", f"{kind} was taken by {actor} under delegation "
                                        f"{did}, but {'; '.join(wrong)}", e.index)
            return False
        terms = {"delegation_id": did, "principal": subject, "delegate": actor,
                 "kind": t.get("relationship"), "actions": actions, "until": until,
                 "issuer": t.get("issuer")}
        try:
            terms_hash = hashlib.sha256(canonical_json(terms)).digest()
        except LedgerError:
            terms_hash = b""
        if not terms_hash or _b64(t.get("terms_hash")) != terms_hash:
            self.run.fail("delegation", "the delegation's terms do not hash to its "
                                        "terms_hash", d.index)
            return False
        signed = self._verified(d, t.get("delegate_assertion"), actor, terms_hash,
                                "delegation", "the delegate did not sign the delegation")
        if t.get("principal_assertion") is not None:
            signed = self._verified(d, t.get("principal_assertion"), subject, terms_hash,
                                    "delegation", "") and signed
        elif any(k.index < d.index and k.entry.body.get("subject") == subject
                 for k in self.keys):
            self.run.fail("delegation", "the principal had a passkey, and did not sign the "
                                        "delegation", d.index)
            signed = False
        if signed:
            self.delegated += 1
        return signed

    def _claim(self, what: str, said: Any, ledger: Any) -> None:
        if said != ledger:
            self.run.fail("claims", f"the receipt says {what} is {_shown(said)}, the ledger "
                                    f"says {_shown(ledger)}")

    def _claims(self, terms: dict[str, Any], subject: str) -> None:
        d, last = self.doc, self.events[-1]
        self._claim("record_id", _get(d, "record_id"), self.grant_id)
        self._claim("pii_principal_id", _get(d, "pii_principal_id"), subject)
        self._claim("terms_hash", _get(d, "terms_hash"),
                    self.events[0].entry.body.get("terms_hash"))
        self._claim("the status", _get(d, "status", "state"), self.state)
        self._claim("the status's ledger_index", _get(d, "status", "ledger_index"), last.index)
        # Receipts made before they said they were snapshots have neither field.
        if _get(d, "status", "since") is not _MISSING:
            self._claim("the status's time", _get(d, "status", "since"), last.entry.time)
        as_of = _get(d, "status", "as_of")
        if as_of is not _MISSING and as_of != _get(d, "receipt_timestamp"):
            self.run.fail("claims", f"the status is said to be as of {_shown(as_of)}, not as "
                                    f"of the receipt's time {_shown(_get(d, 'receipt_timestamp'))}")
        events = _get(d, "events")
        said = ([[_get(v, "ledger_index"), _get(v, "event_type"), _get(v, "event_time")]
                 for v in events] if isinstance(events, list) else _MISSING)
        self._claim("the events", said,
                    [[e.index, e.entry.kind, e.entry.time] for e in self.events])
        purposes = _get(d, "purposes")
        if not isinstance(purposes, list) or len(purposes) != 1:
            self.run.fail("claims", "the receipt must list exactly one purpose")
            return
        p = purposes[0]
        self._claim("the purpose", _get(p, "purpose"), terms.get("purpose"))
        # Receipts made before write grants have no actions: they only read.
        if _get(p, "actions") is not _MISSING:
            self._claim("the actions", _get(p, "actions"), terms.get("actions", ["read"]))
        self._claim("pii_controllers", _get(p, "pii_controllers"), [terms.get("service_id")])
        pii = _get(p, "pii_information")
        self._claim("the personal data", [_get(x, "pii_type") for x in pii]
                    if isinstance(pii, list) else _MISSING, terms.get("categories"))
        derived = _get(p, "derived_answers")
        self._claim("the derived answers", [_get(x, "name") for x in derived]
                    if isinstance(derived, list) else _MISSING, terms.get("derived"))
        self._claim("the validity", _get(p, "validity"),
                    {"not_before": terms.get("not_before"),
                     "expires_at": terms.get("expires_at")})
        self._claim("the retention period", _get(p, "retention_period", "duration"),
                    terms.get("data_life"))
        access = terms.get("access")
        self._claim("the access frequency",
                    {k: _get(p, "access_frequency", k)
                     for k in ("mode", "max_reads", "min_interval")}, access)
        self._claim("the justification", _get(p, "justification"), terms.get("justification"))

