"""A citizen's passkeys: list them, rename one, remove one (never the last by mistake).

Removing is a grave step, like deleting the account: the wallet asks one of the
citizen's passkeys, with user verification, to sign `removal_challenge` (a fresh nonce
bound to the passkey being removed), and `remove_confirmed` checks that assertion and
removes the passkey in one transaction, so a refused check changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from vault.crypto import envelope
from vault.errors import NotFound
from vault.services.approvals import ApprovalProof, ApprovalVerifier
from vault.services.citizens import get_citizen
from vault.services.context import Work
from vault.storage.tables import PasskeyRow
from wallet.errors import LastPasskey
from wallet.passkeys.registration import check_label, label_ad

__all__ = [
    "PasskeyView",
    "credential_ids",
    "list_passkeys",
    "removal_challenge",
    "remove_confirmed",
    "remove_passkey",
    "rename_passkey",
]


@dataclass(frozen=True, slots=True)
class PasskeyView:
    credential_id: str
    label: str | None
    transports: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None


def _label(row: PasskeyRow, data_key: bytes) -> str | None:
    if row.label_sealed is None:
        return None
    plain = envelope.open_sealed(data_key, row.label_sealed, ad=label_ad(
        citizen_id=row.citizen_id, credential_id=row.credential_id))
    return plain.decode("utf-8")


def list_passkeys(session: Session, citizen_id: str, *, data_key: bytes) -> list[PasskeyView]:
    """The citizen's passkeys, oldest first, with their names opened."""
    rows = session.exec(
        select(PasskeyRow).where(col(PasskeyRow.citizen_id) == citizen_id)
        .order_by(col(PasskeyRow.created_at), col(PasskeyRow.credential_id))).all()
    return [PasskeyView(r.credential_id, _label(r, data_key), tuple(r.transports),
                        r.created_at, r.last_used_at) for r in rows]


def credential_ids(session: Session, citizen_id: str) -> list[str]:
    """The citizen's credential ids (base64url): whom an approval prompt may ask."""
    return list(session.exec(select(PasskeyRow.credential_id)
                             .where(col(PasskeyRow.citizen_id) == citizen_id)).all())


def _own(session: Session, citizen_id: str, credential_id: str) -> PasskeyRow:
    row = session.get(PasskeyRow, credential_id)
    if row is None or row.citizen_id != citizen_id:
        raise NotFound("no such passkey")  # never reveal another citizen's passkey
    return row


def rename_passkey(work: Work, *, citizen_id: str, credential_id: str, label: str,
                   data_key: bytes) -> None:
    """Give a passkey a new name (sealed, like its first one); "" removes the name."""
    row = _own(work.session, citizen_id, credential_id)
    kept = check_label(label)
    row.label_sealed = None if kept is None else envelope.seal(
        data_key, kept.encode("utf-8"),
        ad=label_ad(citizen_id=citizen_id, credential_id=credential_id))
    work.session.add(row)


def remove_passkey(work: Work, *, citizen_id: str, credential_id: str,
                   can_recover: bool) -> int:
    """Remove a passkey and log `passkey.removed`; returns the ledger index.

    The last passkey goes only if the citizen can still get back in
    (`can_recover`: unused recovery codes remain), or they would be locked out.
    """
    # Lock all of the citizen's passkeys (PostgreSQL; SQLite's write lock does the
    # same), so two removals at once cannot each think the other passkey remains.
    mine = work.session.exec(
        select(PasskeyRow).where(col(PasskeyRow.citizen_id) == citizen_id)
        .with_for_update()).all()
    row = next((r for r in mine if r.credential_id == credential_id), None)
    if row is None:
        raise NotFound("no such passkey")  # never reveal another citizen's passkey
    if len(mine) == 1 and not can_recover:
        raise LastPasskey(
            "this is your only passkey: add another one, or keep recovery codes, "
            "before you remove it")
    citizen = get_citizen(work.session, citizen_id)
    work.session.delete(row)
    work.session.flush()
    return work.ledger.append("passkey.removed", {
        "subject": citizen.subject, "credential_id": credential_id}).seq


def removal_challenge(nonce: bytes, credential_id: str) -> bytes:
    """What the citizen's passkey signs to remove `credential_id`: the ceremony's random
    nonce bound to that passkey, so the answer cannot remove another one."""
    return hashlib.sha256(b"wallet.remove-passkey\x00" + nonce + b"\x00"
                          + credential_id.encode("utf-8")).digest()


def remove_confirmed(work: Work, verifier: ApprovalVerifier, *, citizen_id: str,
                     credential_id: str, nonce: bytes, proof: ApprovalProof,
                     can_recover: bool) -> int:
    """`remove_passkey`, once one of the citizen's own passkeys (any of them, this one
    too) has signed `removal_challenge(nonce, credential_id)` with user verification.

    The check and the removal share `work`'s transaction: if either fails, nothing
    changes (not even the signature counter; the nonce's ceremony is spent anyway).
    """
    _own(work.session, citizen_id, credential_id)  # 404 before any passkey is judged
    verifier.verify(work.session, citizen_id=citizen_id,
                    challenge=removal_challenge(nonce, credential_id), proof=proof)
    return remove_passkey(work, citizen_id=citizen_id, credential_id=credential_id,
                          can_recover=can_recover)
