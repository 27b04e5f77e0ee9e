"""A citizen's account in the wallet: sign up, taking over a child's vault, recovery
codes, and leaving.

Sign up is one transaction: the citizen, their first passkey (with its ledger entry)
and their first session commit together or not at all, so a failed passkey check never
leaves an account nobody can enter.

Recovery codes are 60 random bits each, shown once, kept as HMAC-SHA-256 under the app
secret: a stolen database cannot be searched for them offline, and the lookup needs no
user name. Each works once; using one signs the citizen in to add a new passkey.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, update
from sqlmodel import Session, col, select

from vault.crypto import typed_codes
from vault.services import dependants
from vault.services.citizens import enrol_in, erase_citizen, get_citizen
from vault.services.context import VaultContext, unit_of_work
from vault.services.records import data_key
from vault.storage.tables import RecoveryCodeRow
from wallet.errors import PasskeyRejected, RecoveryRefused
from wallet.passkeys.challenges import Ceremony
from wallet.passkeys.registration import register_passkey
from wallet.passkeys.relying_party import RelyingParty
from wallet.sessions import SessionStore

__all__ = [
    "CODE_COUNT",
    "NewCodes",
    "SignedUp",
    "codes_left",
    "delete_account",
    "new_recovery_codes",
    "redeem_recovery_code",
    "sign_up",
    "take_over",
]

CODE_COUNT = 10
_CODE_CHARS = 12


@dataclass(frozen=True, slots=True)
class SignedUp:
    citizen_id: str
    credential_id: str
    #: The new session's cookie token.
    token: str


def sign_up(
    ctx: VaultContext, rp: RelyingParty, sessions: SessionStore, *, ceremony: Ceremony,
    credential: Mapping[str, Any], label: str,
) -> SignedUp:
    """A new citizen, their first passkey and a session, in one transaction.

    `ceremony` is the claimed sign-up ceremony: its citizen id was chosen by the server
    when the options were made (it is the passkey's user handle).
    """
    if ceremony.citizen_id is None:
        raise ValueError("a sign-up ceremony names the citizen it creates")
    with unit_of_work(ctx) as work:
        citizen, key = enrol_in(ctx, work, ceremony.citizen_id)
        row = register_passkey(work, rp, citizen_id=citizen.id, credential=credential,
                               expected_challenge=ceremony.challenge, label=label,
                               data_key=key)
        token = sessions.start(work.session, citizen.id, now=work.now)
    return SignedUp(citizen.id, row.credential_id, token)


def take_over(
    ctx: VaultContext, rp: RelyingParty, sessions: SessionStore, secret: bytes, *,
    ceremony: Ceremony, credential: Mapping[str, Any], label: str, code: str, keep: bool,
) -> SignedUp:
    """A child takes over the vault a parent made them (`vault.services.dependants`):
    the handover code used up, their first passkey, the parent's relationship ended
    unless `keep`, and a session, in one transaction. `ceremony` was started for the
    code's child (its passkey's user handle), so a ceremony of one code cannot serve
    another."""
    with unit_of_work(ctx) as work:
        handover = dependants.claim_handover(work, secret, code)
        if ceremony.citizen_id != handover.child_id:
            raise PasskeyRejected("challenge_unknown", "this passkey request was started "
                                  "for another handover code; start again")
        key = data_key(ctx, get_citizen(work.session, handover.child_id))
        row = register_passkey(work, rp, citizen_id=handover.child_id, credential=credential,
                               expected_challenge=ceremony.challenge, label=label,
                               data_key=key)
        dependants.settle_handover(work, handover, keep=keep)
        token = sessions.start(work.session, handover.child_id, now=work.now)
    return SignedUp(handover.child_id, row.credential_id, token)


def _code_hash(secret: bytes, code: str) -> str:
    return typed_codes.code_hash(secret, b"recovery-code", code)


@dataclass(frozen=True, slots=True)
class NewCodes:
    #: The new codes, formatted to read (ABCD-EFGH-JKMN): shown this once.
    codes: list[str]
    #: How many unused codes they replaced, which no longer work (0 for a first set).
    replaced: int


def new_recovery_codes(ctx: VaultContext, secret: bytes, citizen_id: str) -> NewCodes:
    """Ten fresh codes, replacing any unused ones; shown once, never stored in clear."""
    raw = [typed_codes.new_code(_CODE_CHARS) for _ in range(CODE_COUNT)]
    with unit_of_work(ctx) as work:
        gone = cast("CursorResult[Any]", work.session.execute(delete(RecoveryCodeRow).where(
            col(RecoveryCodeRow.citizen_id) == citizen_id,
            col(RecoveryCodeRow.used_at).is_(None))))
        for code in raw:
            work.session.add(RecoveryCodeRow(code_hash=_code_hash(secret, code),
                                             citizen_id=citizen_id, created_at=work.now))
    return NewCodes([typed_codes.readable(code) for code in raw], replaced=gone.rowcount)


def codes_left(session: Session, citizen_id: str) -> int:
    """How many unused recovery codes the citizen has."""
    return int(session.exec(select(func.count()).select_from(RecoveryCodeRow).where(
        col(RecoveryCodeRow.citizen_id) == citizen_id,
        col(RecoveryCodeRow.used_at).is_(None))).one())


def redeem_recovery_code(
    ctx: VaultContext, secret: bytes, sessions: SessionStore, code: str, *, now: datetime,
) -> tuple[str, str]:
    """Use a recovery code: it is spent, and the citizen gets a new session.

    Returns (citizen id, session token). The code is marked used with a guarded
    UPDATE, so of two requests racing with one code only one gets in.
    """
    normal = typed_codes.normalise(code)
    if not typed_codes.well_formed(normal, _CODE_CHARS):
        raise RecoveryRefused("a recovery code is 12 letters and digits, like "
                              "ABCD-EFGH-JKMN")
    key = _code_hash(secret, normal)
    with unit_of_work(ctx) as work:
        row = work.session.get(RecoveryCodeRow, key)
        spent = cast("CursorResult[Any]", work.session.execute(
            update(RecoveryCodeRow).where(col(RecoveryCodeRow.code_hash) == key,
                                          col(RecoveryCodeRow.used_at).is_(None))
            .values(used_at=now)))
        if row is None or spent.rowcount != 1:
            raise RecoveryRefused("that recovery code is not right, or it was used already")
        token = sessions.start(work.session, row.citizen_id, now=now)
        return row.citizen_id, token


def delete_account(ctx: VaultContext, citizen_id: str) -> int:
    """Erase the citizen (crypto-shredding; sessions, passkeys and codes go with the
    citizen's row). Returns the index of `citizen.erased` on the ledger."""
    return erase_citizen(ctx, citizen_id)
