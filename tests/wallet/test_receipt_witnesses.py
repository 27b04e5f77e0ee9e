"""A consent receipt carries a cosigned checkpoint (ARCHITECTURE §10): with a quorum of
witnesses, the checkpoint a receipt holds is one the witnesses cosigned, and
`vault-audit receipt --witness ... --quorum N` checks it; without the quorum, no receipt
is made on a checkpoint the witnesses never saw."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from support.livewitness import LiveWitness, live_witness
from support.vaultworld import World, ask, blue_badge
from support.walletenv import ORIGIN, Wallet, make_wallet
from typer.testing import CliRunner

from clients.auditor.cli import app as audit
from ledger.cosignature import WitnessSigner, check_cosignatures
from ledger.note import Signer
from vault.services import grants
from vault.services.citizens import get_citizen
from vault.services.witnessing import NotWitnessed, WitnessEndpoint, Witnessing
from wallet.passkeys.software import SoftAuthenticator
from wallet.receipts import build_receipt

SIGNER = Signer.generate("localhost/ledger")


@pytest.fixture
def wallet(tmp_path: Path) -> Iterator[Wallet]:
    w = make_wallet(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)
    yield w
    w.ctx.engine.dispose()


def approved_grant(wallet: Wallet) -> tuple[str, str]:
    device = SoftAuthenticator(origin=ORIGIN)
    citizen_id, _ = wallet.sign_up(device)
    with Session(wallet.ctx.engine) as session:
        subject = get_citizen(session, citizen_id).subject
    grant = ask(wallet.ctx, World(blue_badge(wallet.ctx), citizen_id, subject))
    wallet.clock.advance(minutes=5)
    grants.approve_grant(wallet.ctx, grant.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=grant.terms_hash))
    return citizen_id, grant.id


def test_a_receipt_carries_the_witnesses_cosignatures(wallet: Wallet, tmp_path: Path) -> None:
    with live_witness(tmp_path, "w1", [SIGNER.verifier()]) as w1, \
            live_witness(tmp_path, "w2", [SIGNER.verifier()]) as w2:
        ws: list[LiveWitness] = [w1, w2]
        witnessing = Witnessing([WitnessEndpoint(w.signer.verifier(), w.url) for w in ws],
                                quorum=2)
        ctx = dataclasses.replace(wallet.ctx, witnessing=witnessing)
        citizen_id, grant_id = approved_grant(wallet)
        receipt = build_receipt(ctx, SIGNER, citizen_id=citizen_id, grant_id=grant_id,
                                rp=wallet.rp)
        witnessing.close()
    note = receipt["ledger_evidence"]["checkpoint"]
    check = check_cosignatures(note, expected_witnesses=[w.signer.verifier() for w in ws])
    assert {c.witness.name for c in check.valid} == {"w1", "w2"}
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    keys = ["--witness", w1.vkey, "--witness", w2.vkey]

    def witness_problems(*args: str) -> list[dict[str, object]]:
        r = CliRunner().invoke(audit, ["receipt", str(path), "--json", "--key",
                                       str(SIGNER.verifier()), *args])
        return [p for p in json.loads(r.output)["problems"] if p["check"] == "witnesses"]

    assert witness_problems(*keys, "--quorum", "2") == []
    stranger = str(WitnessSigner.generate("w3").verifier())
    assert witness_problems("--witness", w1.vkey, "--witness", stranger, "--quorum", "2")


def test_no_receipt_on_a_checkpoint_without_its_quorum(wallet: Wallet) -> None:
    down = WitnessEndpoint(WitnessSigner.generate("down").verifier(), "http://127.0.0.1:9")
    witnessing = Witnessing([down], quorum=1, timeout=0.5)
    ctx = dataclasses.replace(wallet.ctx, witnessing=witnessing)
    citizen_id, grant_id = approved_grant(wallet)
    with pytest.raises(NotWitnessed):  # the API maps it to 503 not-witnessed
        build_receipt(ctx, SIGNER, citizen_id=citizen_id, grant_id=grant_id, rp=wallet.rp)
    witnessing.close()
