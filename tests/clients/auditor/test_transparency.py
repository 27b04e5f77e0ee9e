"""`vault-audit transparency` against a real vault over a loopback socket: it recounts
every published figure from the public entries, agrees with an honest report, and names
every figure of a doctored one (served through a small proxy, as a lying operator would)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from livevault import LiveVault, free_port, serve, serve_app
from support.livewitness import live_witness
from support.vaultworld import add_passkey, ask, world
from typer.testing import CliRunner

from clients.auditor.cli import app as cli
from clients.auditor.fetch import LedgerClient
from clients.auditor.transparency import check_transparency, fetch_report
from ledger.cosignature import WitnessSigner
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.domain.grants import Access
from vault.services import access, grants
from vault.storage.database import read_only
from wallet.passkeys.software import SoftAuthenticator

runner = CliRunner()


def _story(vault: LiveVault) -> None:
    """12 declined grants (an exact figure), one approved and read 3 times (hidden)."""
    assert vault.app is not None
    ctx = vault.app.state.vault.ctx
    w = world(ctx)
    for _ in range(12):
        grants.deny_grant(ctx, ask(ctx, w).id, citizen_id=w.citizen_id)
    device = add_passkey(ctx, w.citizen_id, SoftAuthenticator(origin=vault.url))
    g = ask(ctx, w, access=Access("periodic", max_reads=10))
    grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    for _ in range(3):
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=g.id)
    with read_only(ctx.engine).begin() as conn:
        size = SqlLedger(conn).size()
    deadline = time.monotonic() + 5  # published and counted in the background
    while fetch_report(vault.url)["ledger_size"] < size:
        assert time.monotonic() < deadline, "the report never counted the story"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveVault]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("vault"), ledger_public=True,
                        checkpoint_interval=0.05, sweep_interval=3600)
    with serve(settings) as live:
        _story(live)
        yield live


def _key(vault: LiveVault) -> str:
    return httpx.get(f"{vault.url}/ledger/key").text.strip()


def test_an_honest_report_recounts_exactly(vault: LiveVault) -> None:
    r = runner.invoke(cli, ["transparency", vault.url, "--key", _key(vault), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] and doc["key_pinned"] and doc["differences"] == []
    assert doc["compared"] > 20 and doc["ledger_size"] == doc["checkpoint_size"]
    text = runner.invoke(cli, ["transparency", vault.url, "--key", _key(vault)])
    assert text.exit_code == 0 and "OK: every published figure" in text.output


def _doctor(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["grants"]["by_state"]["denied"] = {"value": 11, "suppressed": False, "at_least": 11,
                                           "at_most": 11}
    return doc


@pytest.fixture(scope="module")
def lying(vault: LiveVault) -> Iterator[str]:
    """A proxy in front of the vault that serves everything as is but the report's
    denied grants, 11 instead of 12."""
    proxy = FastAPI()
    upstream = httpx.Client(base_url=vault.url)

    @proxy.get("/{path:path}")
    def forward(path: str, request: Request) -> Response:
        r = upstream.get(f"/{path}", params=dict(request.query_params))
        if path == "transparency.json":
            return Response(json.dumps(_doctor(r.json())), media_type="application/json")
        return Response(r.content, status_code=r.status_code,
                        media_type=r.headers.get("content-type"))

    with serve_app(proxy, free_port(), what="the proxy") as url:
        yield url
    upstream.close()


def test_a_doctored_count_is_named(vault: LiveVault, lying: str) -> None:
    r = runner.invoke(cli, ["transparency", lying, "--key", _key(vault), "--json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    assert doc["differences"] == [{"figure": "grants.by_state.denied", "published": "11",
                                   "recounted": "12"}]
    text = runner.invoke(cli, ["transparency", lying, "--key", _key(vault)])
    assert text.exit_code == 1
    assert "DIFFERS grants.by_state.denied: published 11, recounted 12" in text.output


def test_a_hidden_range_must_be_the_recounted_one(vault: LiveVault) -> None:
    doc = fetch_report(vault.url)
    reads = doc["accesses"]["total"]
    assert reads == {"value": None, "suppressed": True, "at_least": 1, "at_most": 9}
    doc["accesses"]["total"] = {**reads, "at_most": 20}  # wider than the rule gives
    with LedgerClient(vault.url) as client:
        check = check_transparency(client, doc)
    assert [str(d) for d in check.differences] == [
        "accesses.total: published hidden, 1 to 20, recounted hidden, 1 to 9"]
    assert not check.ok and not check.key_pinned


def test_a_figure_left_out_or_a_month_added_is_named(vault: LiveVault) -> None:
    doc = fetch_report(vault.url)
    month = doc["grants"]["months"][-1]["month"]
    del doc["grants"]["months"][-1]["by_state"]["denied"]
    doc["accesses"]["by_purpose"]["made_up"] = {"value": 10, "suppressed": False,
                                                "at_least": 10, "at_most": 10}
    with LedgerClient(vault.url) as client:
        check = check_transparency(client, doc)
    assert sorted(str(d) for d in check.differences) == [
        "accesses.by_purpose.made_up: published 10, recounted 0",
        f"grants.months[{month}].by_state.denied: published nothing, recounted 12",
    ]


def test_a_report_that_does_not_say_what_it_counts_is_refused(vault: LiveVault) -> None:
    proxy = FastAPI()

    @proxy.get("/transparency.json")
    def old() -> dict[str, Any]:
        doc: dict[str, Any] = fetch_report(vault.url)
        del doc["ledger_size"]
        return doc

    with serve_app(proxy, free_port(), what="the proxy") as url:
        r = runner.invoke(cli, ["transparency", url, "--json"])
    assert r.exit_code == 2
    assert "ledger_size" in json.loads(r.output)["error"]


def test_a_checkpoint_not_of_the_counted_entries_is_named(vault: LiveVault,
                                                          tmp_path: Path) -> None:
    doc = fetch_report(vault.url)
    doc["ledger_size"] -= 1  # one entry fewer counted than the checkpoint signs
    with LedgerClient(vault.url) as client:
        check = check_transparency(client, doc)
    assert "checkpoint.size" in [d.figure for d in check.differences]


def test_without_the_witnesses_quorum_nothing_is_recounted(vault: LiveVault) -> None:
    """This vault has no witnesses: a checkpoint no --witness cosigned may be a split
    view, so its figures are not vouched for (exit 1), and the reason says so."""
    witness = str(WitnessSigner.generate("witness.example").verifier())
    r = runner.invoke(cli, ["transparency", vault.url, "--key", _key(vault),
                            "--witness", witness, "--quorum", "1", "--json"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    assert doc["problem"].startswith("witness-quorum: the checkpoint has 0 valid "
                                     "cosignatures of the 1 needed")
    assert doc["compared"] == 0
    bad = runner.invoke(cli, ["transparency", vault.url, "--witness", witness,
                              "--quorum", "2"])
    assert bad.exit_code == 2 and "--quorum 2" in bad.output


def test_a_witnessed_vault_recounts_with_its_quorum(tmp_path: Path) -> None:
    """A vault whose checkpoints a witness cosigns (quorum 1): the report's checkpoint
    carries the cosignature, and the recount goes ahead with --witness."""
    signer = Signer.generate("localhost/ledger")
    with live_witness(tmp_path, "w1", [signer.verifier()]) as w1:
        settings = Settings(data_dir=tmp_path / "vault", ledger_public=True,
                            checkpoint_interval=0.05, sweep_interval=3600,
                            ledger_signing_key=str(signer), witnesses=f"{w1.vkey} {w1.url}",
                            witness_quorum=1)
        with serve(settings) as live:
            _story(live)
            r = runner.invoke(cli, ["transparency", live.url, "--key",
                                    str(signer.verifier()), "--witness", w1.vkey, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"]
