"""A vault wired for passkeys, as the wallet's routes will hold it, for the wallet tests.

`make_wallet(url, tmp_path)` builds it on a fresh database; its methods run the sign-up
and sign-in ceremonies the way the routes will: options, challenge kept in the store,
the browser's answer (here a `SoftAuthenticator`), verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session
from support.ledgerview import opened_entries
from support.vaultworld import Clock

from ledger.entry import Entry
from vault.crypto import load_keyring
from vault.services.citizens import enrol_citizen, get_citizen
from vault.services.context import VaultContext, unit_of_work
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from vault.storage.tables import PasskeyRow
from wallet.passkeys import (
    MemoryChallengeStore,
    PasskeyApprovalVerifier,
    RelyingParty,
    authentication_options,
    register_passkey,
    registration_options,
    user_handle,
    verify_sign_in,
)
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["ORIGIN", "Clock", "Wallet", "make_wallet"]

ORIGIN = "http://localhost:8000"


@dataclass
class Wallet:
    """What the wallet's routes hold: the vault, the relying party, the challenge store."""

    ctx: VaultContext
    rp: RelyingParty
    clock: Clock
    store: MemoryChallengeStore

    def data_key(self, citizen_id: str) -> bytes:
        with unit_of_work(self.ctx) as work:
            row = get_citizen(work.session, citizen_id)
            return self.ctx.keyring.unwrap(row.kek_id, row.wrapped_key, citizen_id=citizen_id)

    def start_registration(self, citizen_id: str) -> tuple[dict[str, Any], str]:
        options, challenge = registration_options(
            self.rp, user_id=user_handle(citizen_id), user_name="Ada", exclude=[])
        return options, self.store.put(challenge, purpose="register", now=self.clock())

    def finish_registration(self, citizen_id: str, ceremony: str, answer: dict[str, Any],
                            label: str = "My phone") -> PasskeyRow:
        data_key = self.data_key(citizen_id)
        challenge = self.store.take(ceremony, purpose="register", now=self.clock())
        with unit_of_work(self.ctx) as work:
            return register_passkey(work, self.rp, citizen_id=citizen_id, credential=answer,
                                    expected_challenge=challenge, label=label,
                                    data_key=data_key)

    def sign_up(self, device: SoftAuthenticator) -> tuple[str, str]:
        """A new citizen with one passkey on `device`: (citizen id, credential id)."""
        citizen = enrol_citizen(self.ctx)
        options, ceremony = self.start_registration(citizen.id)
        row = self.finish_registration(citizen.id, ceremony, device.create(options))
        return citizen.id, row.credential_id

    def start_sign_in(self) -> tuple[dict[str, Any], str]:
        options, challenge = authentication_options(self.rp)
        return options, self.store.put(challenge, purpose="sign_in", now=self.clock())

    def finish_sign_in(self, ceremony: str, answer: dict[str, Any]) -> str:
        challenge = self.store.take(ceremony, purpose="sign_in", now=self.clock())
        return self.check_sign_in(answer, challenge)

    def check_sign_in(self, answer: dict[str, Any], challenge: bytes) -> str:
        with Session(self.ctx.engine) as session, session.begin():
            return verify_sign_in(session, self.rp, credential=answer,
                                  expected_challenge=challenge, now=self.clock())

    def entries(self, kind: str | None = None) -> list[Entry]:
        """The ledger's entries (of one kind, if given), parsed."""
        with self.ctx.engine.connect() as conn:
            found = opened_entries(conn)
        return [e for e in found if kind is None or e.kind == kind]

    def passkey(self, credential_id: str) -> PasskeyRow:
        with Session(self.ctx.engine, expire_on_commit=False) as session:
            row = session.get(PasskeyRow, credential_id)
            assert row is not None
            return row


def make_wallet(url: str, tmp_path: Path) -> Wallet:
    engine = make_engine(url)
    migrate(engine)
    keyring = load_keyring(tmp_path / "keys", master_key=None, production=False)
    clock = Clock()
    rp = RelyingParty.from_public_url(ORIGIN)
    ctx = VaultContext(engine=engine, keyring=keyring, clock=clock,
                       approvals=PasskeyApprovalVerifier(rp, clock=clock))
    return Wallet(ctx, rp, clock, MemoryChallengeStore())
