"""Consent receipts: the JSON a citizen downloads from a grant's page (ARCHITECTURE §6).

A receipt has two halves. The first is an ISO/IEC TS 27560 consent receipt in the
DPVCG's `dpv-27560` profile: the record (the grant), the data principal, the purpose
with its DPV purpose and legal basis, the personal data and derived answers, the
duration, retention and access frequency, the parties, the status and every consent
event, each with a W3C DPV term. The second, `ledger_evidence`, makes it checkable
offline by anyone (`clients.auditor.receipt.verify_receipt`): the grant's `grant.*`
ledger entries byte for byte, the `passkey.registered` entry of every passkey that
signed one of them, an inclusion proof of each against one signed checkpoint, the log's
verifier key, and the relying party the passkeys answered for. Sealed entries (ledger
v2) hold only their public part: `openings` carries the opening (salt and private body)
of each of the receipt's own sealed entries, so the receipt still shows, and its reader
can check, who signed what. A step a delegate took for the citizen (ARCHITECTURE §9:
`actor` and `delegation_id` beside `subject`) brings the `delegation.granted` entry it
was taken under, and the `passkey.registered` entries of the passkeys that signed it and
that delegation, so the reader can check the delegate was allowed. Last, `signature`: the
vault's signature (the ledger key) over all the rest, so the words the ledger does not
hold (the catalog's labels, the notice) are bound too.

Any grant has a receipt, answered or not: `status` is the state after its latest
entry, and signatures appear only where the citizen signed something. The citizen is
named only by their ledger pseudonym (`subject`): no citizen id, no record value.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlmodel import Session, col, select

from ledger.canonical import canonical_json
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import Entry, format_time, parse_entry
from ledger.errors import StoreError
from ledger.note import Signer, sign_note
from ledger.sealing import full_body, parse_opening
from ledger.sqlstore import SqlLedger
from ledger.store import MAX_PAGE
from vault.domain.categories import categories as category_catalog
from vault.domain.derived import resolve_derived
from vault.domain.grants import GrantTerms, describe
from vault.domain.purposes import DPV_NAMESPACE
from vault.domain.purposes import purposes as purpose_catalog
from vault.errors import NotFound
from vault.services.checkpoints import publish_checkpoint
from vault.services.context import VaultContext, new_id, reading
from vault.storage.tables import (
    CitizenRow,
    GrantEventRow,
    GrantRow,
    PasskeyRow,
    RelationshipRow,
    ServiceRow,
)
from wallet.passkeys.relying_party import RelyingParty

__all__ = ["CONSENT_STATUS", "LEGAL_BASIS", "RECEIPT_SCHEMA", "build_receipt"]

#: The DPVCG profile of ISO/IEC TS 27560 for a receipt that copies its consent record.
RECEIPT_SCHEMA = "https://w3id.org/dpv/schema/dpv-27560#receipt-record"

_CONTEXT = {
    "dpv": DPV_NAMESPACE,
    "dct": "http://purl.org/dc/terms/",
    "dpv-27560": "https://w3id.org/dpv/schema/dpv-27560#",
}

#: DPV consent status recorded by each grant entry. DPV has no "paused": a paused grant
#: still holds the citizen's consent but allows no reads, so it is the parent status
#: "invalid for processing" rather than ConsentGiven (which DPV counts as valid). A
#: request the service cancels is DPV's ConsentRevoked (ended by someone other than the
#: data subject); one left unanswered until it lapses is ConsentExpired, as is a grant
#: whose reads are used up (its contextual validity ended).
CONSENT_STATUS: dict[str, str] = {
    "grant.requested": "dpv:ConsentRequested",
    "grant.approved": "dpv:ConsentGiven",
    "grant.denied": "dpv:ConsentRefused",
    "grant.cancelled": "dpv:ConsentRevoked",
    "grant.lapsed": "dpv:ConsentExpired",
    "grant.paused": "dpv:ConsentStatusInvalidForProcessing",
    "grant.resumed": "dpv:ConsentGiven",
    "grant.revoked": "dpv:ConsentWithdrawn",  # by the citizen; see _consent_status
    "grant.expired": "dpv:ConsentExpired",
    "grant.exhausted": "dpv:ConsentExpired",
}

#: The purpose catalog's lawful bases (GDPR Article 6(1)) as DPV legal bases.
LEGAL_BASIS: dict[str, str] = {
    "consent": DPV_NAMESPACE + "Consent",
    "contract": DPV_NAMESPACE + "Contract",
    "legal_obligation": DPV_NAMESPACE + "LegalObligation",
    "vital_interests": DPV_NAMESPACE + "VitalInterest",
    "public_task": DPV_NAMESPACE + "PublicInterest",
    "legitimate_interests": DPV_NAMESPACE + "LegitimateInterest",
}

_STATE_AFTER = {kind: kind.removeprefix("grant.") for kind in CONSENT_STATUS}
_STATE_AFTER["grant.resumed"] = "approved"

_WITHDRAWAL = ("Open this grant in your wallet and choose \u201cRevoke access\u201d; you "
               "confirm with your passkey. The service can no longer {what} from that moment.")
#: What revoking stops, by the grant's actions.
_STOPS = {("read",): "read", ("write",): "add to your vault",
          ("read", "write"): "read or add to your vault"}


#: An entry as the store gives it with its opening: index, bytes, opening (None: v1).
Opened = tuple[int, bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class _Found:
    """What a receipt is made of, read in one transaction."""

    grant: GrantRow
    service: ServiceRow
    subject: str
    #: The grant's entries, in ledger order: bytes, and parsed with their full body.
    events: list[tuple[int, bytes, Entry]]
    #: passkey.registered entries of the signing passkeys, and the delegation.granted
    #: entries of the delegations steps were taken under.
    keys: list[tuple[int, bytes]]
    latest: tuple[int, str] | None  # the latest saved checkpoint (size, note)
    #: The openings (bytes) of the sealed entries among events and keys, by index.
    openings: dict[int, bytes]


def build_receipt(
    ctx: VaultContext, signer: Signer, *, citizen_id: str, grant_id: str,
    rp: RelyingParty | None = None,
) -> dict[str, Any]:
    """The consent receipt of one of the citizen's grants; NotFound for any other grant.

    `signer` is the ledger's checkpoint key: the latest saved checkpoint is used if it
    covers every entry in the receipt, else a new one is published. `rp` names the
    relying party the passkey assertions were made for (the wallet's); by default, the
    one the vault's approval verifier checks them against.
    """
    rp = rp or _relying_party(ctx)
    found = _gather(ctx, citizen_id=citizen_id, grant_id=grant_id)
    needed = max([seq for seq, _, _ in found.events] + [seq for seq, _ in found.keys])
    note, checkpoint = _covering_checkpoint(ctx, signer, found.latest, needed)
    with reading(ctx) as session:
        ledger = SqlLedger(session.connection())
        evidence = [
            {"index": seq, "kind": parse_entry(data).kind, "entry": data.decode("utf-8"),
             "inclusion_proof": [_b64(h) for h in ledger.inclusion_proof(seq, checkpoint.size)]}
            for seq, data in sorted([(s, d) for s, d, _ in found.events] + found.keys)]
    return sign_receipt({
        **_consent_receipt(ctx, found, vault_url=rp.origins[0]),
        "ledger_evidence": {
            "verifier_key": str(signer.verifier()),
            "checkpoint": note,
            "passkeys": {"rp_id": rp.rp_id, "origins": list(rp.origins)},
            "entries": evidence,
            # {"seq", "salt", "private"} of each sealed entry above, in index order.
            "openings": [orjson.loads(found.openings[seq]) for seq in sorted(found.openings)],
        },
    }, signer)


#: The first line of a receipt's signed note; the second is BASE64(SHA-256(RFC 8785
#: canonical JSON of the receipt without its "signature")).
RECEIPT_NOTE = "citizen-vault/consent-receipt"


def sign_receipt(receipt: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The receipt with `signature`: a C2SP signed note by the ledger's key over the hash
    of everything else in it, so that no byte of it (the catalog's words included, which
    the ledger does not hold) can change without the change showing."""
    digest = hashlib.sha256(canonical_json(receipt)).digest()
    text = f"{RECEIPT_NOTE}\n{base64.b64encode(digest).decode()}\n"
    return {**receipt, "signature": sign_note(text, [signer])}


def _relying_party(ctx: VaultContext) -> RelyingParty:
    rp = getattr(ctx.approvals, "rp", None)
    if not isinstance(rp, RelyingParty):
        raise TypeError("build_receipt needs rp= unless ctx.approvals is a "
                        "PasskeyApprovalVerifier")
    return rp


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _gather(ctx: VaultContext, *, citizen_id: str, grant_id: str) -> _Found:
    with reading(ctx) as session:
        grant = session.get(GrantRow, grant_id)
        if grant is None or grant.citizen_id != citizen_id:
            raise NotFound("no such grant")  # never reveal another citizen's grant
        citizen = session.get(CitizenRow, citizen_id)
        service = session.get(ServiceRow, grant.service_id)
        assert citizen is not None and service is not None  # foreign keys
        ledger = SqlLedger(session.connection())
        seqs = session.exec(select(GrantEventRow.seq).where(col(GrantEventRow.grant_id) == grant_id)
                            .order_by(col(GrantEventRow.seq))).all()
        events, openings = [], {}
        for seq in seqs:
            [(_, data, opening)] = ledger.opened(seq, 1)
            events.append((seq, data, _opened(data, opening)))
            if opening is not None:
                openings[seq] = opening
        keys: dict[str, tuple[int, bytes]] = {}  # by credential id
        granted: dict[str, tuple[int, bytes]] = {}  # by delegation id

        def signed_by(assertion: Any, signer: Any, before: int) -> None:
            """Add the registration of the passkey behind `assertion` (by `signer`)."""
            cid = assertion.get("credential_id") if isinstance(assertion, dict) else None
            if isinstance(cid, str) and isinstance(signer, str) and cid not in keys:
                key_seq, key_data, key_opening = _registration(
                    session, ledger, cid, subject=signer, before=before)
                keys[cid] = (key_seq, key_data)
                if key_opening is not None:
                    openings[key_seq] = key_opening

        for seq, _, entry in events:
            # A delegate signs with their own passkey (ARCHITECTURE §9).
            actor = entry.body.get("actor", citizen.subject)
            signed_by(entry.body.get("assertion"), actor, seq)
            did = entry.body.get("delegation_id")
            if actor != citizen.subject and isinstance(did, str) and did not in granted:
                d_seq, d_data, d_opening = _delegation(session, ledger, did, before=seq)
                granted[did] = (d_seq, d_data)
                if d_opening is not None:
                    openings[d_seq] = d_opening
                terms = _opened(d_data, d_opening).body
                signed_by(terms.get("principal_assertion"), terms.get("subject"), d_seq)
                signed_by(terms.get("delegate_assertion"), terms.get("delegate"), d_seq)
        return _Found(grant, service, citizen.subject, events,
                      sorted([*keys.values(), *granted.values()]),
                      ledger.latest_checkpoint(), openings)


def _delegation(session: Session, ledger: SqlLedger, delegation_id: str, *, before: int
                ) -> Opened:
    """The `delegation.granted` entry of `delegation_id`, before `before`: at the
    relationship's `ledger_index`, or (its row erased with one of its people) searched for
    in the ledger backwards."""
    row = session.get(RelationshipRow, delegation_id)
    if row is not None and row.ledger_index is not None and row.ledger_index < before:
        [found] = ledger.opened(row.ledger_index, 1)
        if _grants_delegation(found, delegation_id):
            return found
    for high in range(before, 0, -MAX_PAGE):
        low = max(0, high - MAX_PAGE)
        for item in reversed(ledger.opened(low, high - low)):
            if _grants_delegation(item, delegation_id):
                return item
    raise StoreError(f"no delegation.granted entry for delegation {delegation_id}")


def _grants_delegation(row: Opened, delegation_id: str) -> bool:
    _, data, opening = row
    if b'"kind":"delegation.granted"' not in data \
            or delegation_id.encode() not in (opening if opening is not None else data):
        return False
    return _opened(data, opening).body.get("delegation_id") == delegation_id


def _opened(data: bytes, opening: bytes | None) -> Entry:
    """The entry with its full body (a sealed entry's opening checked against it)."""
    entry = parse_entry(data)
    return entry._replace(body=full_body(
        entry, parse_opening(opening) if opening is not None else None))



def _registration(session: Session, ledger: SqlLedger, credential_id: str, *, subject: str,
                  before: int) -> Opened:
    """The `passkey.registered` entry of `credential_id` (by `subject`) before `before`.

    No table maps a credential to its entry, so this searches the ledger. The passkey's
    row gives its registration time, and entry times never go backwards, so a binary
    search finds where to start and the entry follows within a few entries. A removed
    passkey has no row (nor would a clock that stepped back leave the entry after that
    point): then the ledger is read backwards from `before`, which is correct but slow.
    """
    row = session.get(PasskeyRow, credential_id)
    if row is not None:
        start = _first_at(ledger, format_time(row.created_at), before)
        found = _scan_forward(ledger, start, before, credential_id, subject)
        if found is not None:
            return found
    found = _scan_backward(ledger, before, credential_id, subject)
    if found is None:  # the approval was checked against it: the ledger is damaged
        raise StoreError(f"no passkey.registered entry for credential {credential_id}")
    return found


def _first_at(ledger: SqlLedger, time: str, end: int) -> int:
    """The first index below `end` whose entry time is `time` or later (else `end`)."""
    lo, hi = 0, end
    while lo < hi:
        mid = (lo + hi) // 2
        if orjson.loads(ledger.entries(mid, 1)[0])["time"] < time:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _registers(row: Opened, credential_id: str, subject: str) -> bool:
    # Cheap byte tests first: almost no entry is a registration of this passkey. The
    # credential id is in the opening of a sealed entry, in the entry's bytes of a v1 one.
    _, data, opening = row
    if b'"kind":"passkey.registered"' not in data \
            or credential_id.encode() not in (opening if opening is not None else data):
        return False
    body = _opened(data, opening).body
    return body.get("credential_id") == credential_id and body.get("subject") == subject


def _scan_forward(ledger: SqlLedger, start: int, stop: int, credential_id: str,
                  subject: str) -> Opened | None:
    """The first registration of the passkey in entries [start, stop), a page at a time."""
    for low in range(start, stop, MAX_PAGE):
        for row in ledger.opened(low, min(MAX_PAGE, stop - low)):
            if _registers(row, credential_id, subject):
                return row
    return None


def _scan_backward(ledger: SqlLedger, stop: int, credential_id: str,
                   subject: str) -> Opened | None:
    """The last registration of the passkey in entries [0, stop), newest first."""
    for high in range(stop, 0, -MAX_PAGE):
        low = max(0, high - MAX_PAGE)
        for row in reversed(ledger.opened(low, high - low)):
            if _registers(row, credential_id, subject):
                return row
    return None


def _covering_checkpoint(ctx: VaultContext, signer: Signer, latest: tuple[int, str] | None,
                         needed: int) -> tuple[str, Checkpoint]:
    """A signed checkpoint whose tree holds entry `needed`: the latest saved one if it
    does, else one published now (every entry is committed, so the head covers it)."""
    note = latest[1] if latest is not None and latest[0] > needed else \
        publish_checkpoint(ctx.engine, signer, ctx.witnessing).note
    checkpoint = open_checkpoint(note, expected_verifier=signer.verifier())
    if checkpoint.size <= needed:
        raise StoreError(f"checkpoint of size {checkpoint.size} misses entry {needed}")
    return note, checkpoint


def _consent_status(kind: str, body: Any) -> str:
    if kind == "grant.revoked" and body.get("by") != "citizen":
        return "dpv:ConsentRevoked"  # ended by someone other than the data subject
    return CONSENT_STATUS[kind]


def _actor(entry: Entry, *, subject: str, service_id: str) -> str:
    """Who made the event: the service, the citizen (by pseudonym) or the vault itself."""
    if entry.kind in ("grant.requested", "grant.cancelled"):
        return service_id
    if entry.kind in ("grant.approved", "grant.denied", "grant.paused", "grant.resumed") \
            or entry.body.get("by") == "citizen":
        actor = entry.body.get("actor")  # a delegate, for the citizen (ARCHITECTURE §9)
        return actor if isinstance(actor, str) else subject
    return "vault"


def _snapshot(state: str, since: str, index: int, made_at: str, vault_url: str) -> str:
    """What a receipt is, in words: a copy of the grant as it was when it was made. It
    cannot change afterwards (it is signed), so it must not read as the grant's state
    now, which the ledger has."""
    return (f"This receipt shows the grant as it was at {made_at} (UTC), when the receipt "
            f"was made: {state} since {since} (ledger entry {index}). It does not change "
            "afterwards: if the grant is paused, revoked or ends later, this receipt still "
            "says what it says here. To see the grant as it is now, open it in your wallet, "
            f"or run: vault-audit receipt RECEIPT-FILE --live {vault_url}")


def _consent_receipt(ctx: VaultContext, found: _Found, *, vault_url: str) -> dict[str, Any]:
    """The ISO/IEC TS 27560 fields (dpv-27560 names and terms), and what the receipt is:
    the status as of the receipt's own time (`status.as_of`, `status.snapshot`)."""
    terms = GrantTerms.from_json(orjson.loads(found.grant.terms))
    purpose = purpose_catalog()[terms.purpose]
    service, subject = found.service, found.subject
    last_seq, _, last = found.events[-1]
    made_at, state = format_time(ctx.clock()), _STATE_AFTER[last.kind]
    return {
        "@context": _CONTEXT,
        "@type": "dpv:ConsentReceipt",
        "schema_version": RECEIPT_SCHEMA,
        "receipt_id": new_id("rcp"),
        "receipt_timestamp": made_at,
        "record_id": terms.grant_id,
        "pii_principal_id": subject,
        "language": "en",
        "terms_hash": _b64(found.grant.terms_hash),
        "status": {"state": state,
                   "consent_status": _consent_status(last.kind, last.body),
                   "ledger_index": last_seq, "since": last.time, "as_of": made_at,
                   "snapshot": _snapshot(state, last.time, last_seq, made_at, vault_url)},
        "notice": {"@type": "dpv:ConsentNotice", "language": "en",
                   "text": describe(terms, service_name=service.name, purpose=purpose),
                   "privacy_notice": service.privacy_notice_url},
        "purposes": [{
            "purpose": purpose.code,
            "purpose_description": purpose.text,
            "purpose_type": purpose.dpv_iri,
            "lawful_basis": {"code": purpose.lawful_basis,
                             "description": purpose.lawful_basis_text,
                             "dpv": LEGAL_BASIS[purpose.lawful_basis]},
            # RFC 9396 actions: "read" (the categories are disclosed to the service)
            # and/or "write" (the service adds them to the vault: an issuer).
            "actions": list(terms.actions),
            "pii_information": [_category(code) for code in terms.categories],
            "derived_answers": [{"name": name, "label": resolve_derived(name).label,
                                 "@type": "dpv:DerivedPersonalData"}
                                for name in terms.derived],
            "processing_method": _processing(terms),
            "pii_controllers": [service.id],
            "recipient_third_parties": [],
            "validity": {"not_before": terms.not_before, "expires_at": terms.expires_at},
            "retention_period": {"duration": terms.data_life, "@type": "dpv:StorageDuration"},
            "access_frequency": terms.access.to_json(),
            "justification": terms.justification,
            "withdrawal_method": _WITHDRAWAL.format(what=_STOPS[terms.actions]),
            "privacy_notice": service.privacy_notice_url,
        }],
        "parties": [
            {"party_id": service.id, "party_name": service.name,
             "party_url": service.privacy_notice_url,
             "party_role": ["dpv:DataController",
                            *(["dpv:Recipient"] if terms.can_read else []),
                            *(["dpv:DataSource"] if terms.can_write else [])]},
            {"party_id": subject, "party_role": ["dpv:DataSubject"]},
        ],
        "events": [{"event_time": e.time, "event_type": e.kind,
                    "event_state": _consent_status(e.kind, e.body),
                    "entity_id": _actor(e, subject=subject, service_id=service.id),
                    "ledger_index": seq}
                   for seq, _, e in found.events],
    }


def _category(code: str) -> dict[str, str]:
    known = category_catalog().get(code)
    return {"pii_type": code, "label": known.label if known else code,
            "@type": "dpv:PersonalData"}


def _processing(terms: GrantTerms) -> list[str]:
    """Raw categories are disclosed to the service (a read); derived answers are computed
    in the vault and only the answer leaves it; what an issuer writes is stored."""
    disclosed = terms.can_read and bool(terms.categories)
    return ((["dpv:Disclose"] if disclosed else []) + (["dpv:Derive"] if terms.derived else [])
            + (["dpv:Store"] if terms.can_write else []))
