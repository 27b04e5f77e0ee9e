"""Several passkeys per citizen: list, rename, remove (never the last one by mistake)."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from support.walletenv import ORIGIN, Wallet

import wallet.passkeys as passkeys
from vault.errors import NotFound
from vault.services.context import unit_of_work
from wallet.errors import InvalidLabel, LastPasskey, PasskeyRejected
from wallet.passkeys import list_passkeys, remove_passkey, rename_passkey
from wallet.passkeys.software import SoftAuthenticator


def names(wallet: Wallet, citizen_id: str) -> list[str | None]:
    with Session(wallet.ctx.engine) as session:
        views = list_passkeys(session, citizen_id, data_key=wallet.data_key(citizen_id))
    return [v.label for v in views]


def add_passkey(wallet: Wallet, citizen_id: str, label: str) -> str:
    options, ceremony = wallet.start_registration(citizen_id)
    answer = SoftAuthenticator(origin=ORIGIN).create(options)
    wallet.clock.advance(minutes=1)
    row = wallet.finish_registration(citizen_id, ceremony, answer, label=label)
    return str(row.credential_id)


def test_list_and_rename(wallet: Wallet, device: SoftAuthenticator) -> None:
    citizen_id, first = wallet.sign_up(device)
    second = add_passkey(wallet, citizen_id, "Laptop")
    assert names(wallet, citizen_id) == ["My phone", "Laptop"]
    key = wallet.data_key(citizen_id)
    with unit_of_work(wallet.ctx) as work:
        rename_passkey(work, citizen_id=citizen_id, credential_id=first, label=" Old phone ",
                       data_key=key)
        rename_passkey(work, citizen_id=citizen_id, credential_id=second, label="",
                       data_key=key)
    assert names(wallet, citizen_id) == ["Old phone", None]
    with pytest.raises(InvalidLabel), unit_of_work(wallet.ctx) as work:
        rename_passkey(work, citizen_id=citizen_id, credential_id=first, label="x" * 61,
                       data_key=key)


def test_nobody_touches_another_citizens_passkeys(wallet: Wallet,
                                                  device: SoftAuthenticator) -> None:
    ada, ada_cid = wallet.sign_up(device)
    bob, _ = wallet.sign_up(SoftAuthenticator(origin=ORIGIN))
    add_passkey(wallet, bob, "spare")
    bob_key = wallet.data_key(bob)
    with pytest.raises(NotFound), unit_of_work(wallet.ctx) as work:
        rename_passkey(work, citizen_id=bob, credential_id=ada_cid, label="mine",
                       data_key=bob_key)
    with pytest.raises(NotFound), unit_of_work(wallet.ctx) as work:
        remove_passkey(work, citizen_id=bob, credential_id=ada_cid, can_recover=True)
    assert names(wallet, ada) == ["My phone"]


def test_remove_logs_and_stops_the_passkey(wallet: Wallet, device: SoftAuthenticator) -> None:
    citizen_id, first = wallet.sign_up(device)
    add_passkey(wallet, citizen_id, "Laptop")
    with unit_of_work(wallet.ctx) as work:
        seq = remove_passkey(work, citizen_id=citizen_id, credential_id=first,
                             can_recover=False)
    [entry] = wallet.entries("passkey.removed")
    registered = wallet.entries("passkey.registered")[0]
    assert entry.seq == seq
    assert entry.body == {"subject": registered.body["subject"], "credential_id": first}
    assert names(wallet, citizen_id) == ["Laptop"]
    options, ceremony = wallet.start_sign_in()
    with pytest.raises(PasskeyRejected) as exc:
        wallet.finish_sign_in(ceremony, device.get(options))
    assert exc.value.reason == "unknown_credential"


def test_the_last_passkey_stays_without_recovery(wallet: Wallet,
                                                 device: SoftAuthenticator) -> None:
    citizen_id, only = wallet.sign_up(device)
    with pytest.raises(LastPasskey, match="only passkey"), unit_of_work(wallet.ctx) as work:
        remove_passkey(work, citizen_id=citizen_id, credential_id=only, can_recover=False)
    assert names(wallet, citizen_id) == ["My phone"]
    with unit_of_work(wallet.ctx) as work:
        remove_passkey(work, citizen_id=citizen_id, credential_id=only, can_recover=True)
    assert names(wallet, citizen_id) == []


def test_every_public_name_loads() -> None:
    for name in passkeys.__all__:
        assert getattr(passkeys, name) is not None, name
    with pytest.raises(AttributeError):
        passkeys.no_such_name
