"""`vault-audit receipt FILE`: a consent receipt downloaded from the wallet verifies
offline through the CLI, and says it is a snapshot; a changed byte does not verify; a
file that is not a receipt is said to be none; `--live URL` follows the grant in the
vault's ledger since the receipt."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livevault import LiveVault, serve
from support.livewallet import sign_up
from support.vaultworld import World, ask, blue_badge
from support.webwallet import open_wallet
from typer.testing import CliRunner

from clients.auditor.cli import app
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.services.access import read_under_grant

runner = CliRunner()


@dataclass(frozen=True)
class Downloaded:
    data: bytes  # the file exactly as the wallet served it
    key: str
    rp_id: str
    origins: tuple[str, ...]
    workdir: Path

    def pins(self) -> list[str]:
        return ["--key", self.key, "--rp-id", self.rp_id,
                *[a for o in self.origins for a in ("--origin", o)]]


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Downloaded]:
    """Sign up, approve a grant with a passkey, download its receipt from the grant page."""
    tmp = tmp_path_factory.mktemp("receipt-cli")
    with open_wallet(tmp / "vault") as web:
        b = web.sign_up()
        grant = ask(web.ctx, web.world_for(b))
        assert b.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200
        r = b.client.get(f"/wallet/grants/{grant.id}/receipt.json",
                         headers={"accept": "application/json"})
        assert r.status_code == 200, r.text
        yield Downloaded(r.content, str(web.state.signer.verifier()), web.state.rp.rp_id,
                         tuple(web.state.rp.origins), tmp)


def check(d: Downloaded, data: bytes, *args: str, name: str = "receipt.json"
          ) -> tuple[int, dict[str, Any]]:
    path = d.workdir / name
    path.write_bytes(data)
    r = runner.invoke(app, ["receipt", str(path), "--json", *args])
    return r.exit_code, json.loads(r.stdout)


def refused(code: int, doc: dict[str, Any]) -> bool:
    """A changed receipt fails its checks (1), or is no longer JSON at all (2)."""
    return (code == 1 and bool(doc["problems"])) or (
        code == 2 and "is not JSON" in doc["error"])


def test_a_downloaded_receipt_verifies_with_everything_pinned(downloaded: Downloaded) -> None:
    code, doc = check(downloaded, downloaded.data, *downloaded.pins())
    assert code == 0, doc
    assert doc["ok"] and doc["problems"] == [] and doc["status"] == "approved"
    assert doc["key_pinned"] and doc["rp_pinned"] and doc["key"] == downloaded.key
    assert (doc["entries_included"], doc["signatures_verified"]) == (3, 1)
    assert doc["entries_opened"] == 3  # sealed (ledger v2): each opened through the receipt
    assert doc["checkpoint"]["origin"] == downloaded.key.split("+")[0]
    path = downloaded.workdir / "receipt.json"
    human = runner.invoke(app, ["receipt", str(path), *downloaded.pins()])
    assert human.exit_code == 0
    assert "verifies" in human.stdout and "pinned with --key" in human.stdout
    assert "3 proved included" in human.stdout and "1 verified" in human.stdout
    assert "openings: 3 sealed entries opened" in human.stdout
    assert "checkpoint: " in human.stdout and " entries of " in human.stdout


def test_it_says_the_receipt_is_a_snapshot_and_when_it_was_made(downloaded: Downloaded) -> None:
    receipt = json.loads(downloaded.data)
    made_at, approval = receipt["receipt_timestamp"], receipt["events"][-1]
    code, doc = check(downloaded, downloaded.data)
    assert code == 0 and doc["status"] == "approved" and doc["live"] is None
    assert doc["snapshot"] == {"state": "approved", "since": approval["event_time"],
                               "ledger_index": approval["ledger_index"], "made_at": made_at}
    human = runner.invoke(app, ["receipt", str(downloaded.workdir / "receipt.json")])
    assert (f"approved (since {approval['event_time']}, ledger entry "
            f"{approval['ledger_index']}) when this receipt was made, at {made_at}. A receipt "
            "is a snapshot: it does not show what happened to the grant since; add --live "
            "URL to check the grant now") in human.stdout


def test_without_pins_it_says_what_it_took_from_the_receipt(downloaded: Downloaded) -> None:
    code, doc = check(downloaded, downloaded.data)
    assert code == 0 and not doc["key_pinned"] and not doc["rp_pinned"], doc
    assert (doc["rp_id"], doc["origins"]) == (downloaded.rp_id, list(downloaded.origins))
    human = runner.invoke(app, ["receipt", str(downloaded.workdir / "receipt.json")])
    assert human.exit_code == 0
    assert human.stdout.count("taken from the receipt itself") == 2


def test_another_key_or_relying_party_is_refused(downloaded: Downloaded) -> None:
    other = str(Signer.generate(downloaded.key.split("+")[0]).verifier())
    code, doc = check(downloaded, downloaded.data, "--key", other)
    assert code == 1 and {p["check"] for p in doc["problems"]} >= {"checkpoint"}, doc
    code, doc = check(downloaded, downloaded.data, "--origin", "https://evil.example")
    assert code == 1 and doc["rp_id"] == "evil.example", doc
    assert "approval" in {p["check"] for p in doc["problems"]}


# -- files that are not receipts, and the words for counts -------------------------------


def test_a_missing_or_unreadable_file_says_so_plainly(tmp_path: Path) -> None:
    """Exit 2 (nothing to check: not a verdict), in words, not `[Errno 2] ...`."""
    missing = tmp_path / "missing.json"
    r = runner.invoke(app, ["receipt", str(missing)])
    assert r.exit_code == 2
    assert " ".join(r.stderr.split()) == f"error: no such file: {missing}"
    r = runner.invoke(app, ["receipt", str(tmp_path)])
    assert r.exit_code == 2 and f"{tmp_path} is a directory, not a receipt file" in r.stderr
    r = runner.invoke(app, ["receipt", str(missing), "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout)["error"] == f"no such file: {missing}"


def test_json_output_is_the_json_as_is_whatever_the_message_holds(tmp_path: Path) -> None:
    """A message with a backslash before "[tag]" (as a changed byte in a receipt can
    make) once went through rich's markup, which ate the tag and half the escape and
    printed a raw control character: --json must print what json.dumps wrote."""
    for name in ("a\\[bold]b[/bold]\\n.json", "x\\[/]:smile:.json"):
        missing = tmp_path / name
        r = runner.invoke(app, ["receipt", str(missing), "--json"])
        assert r.exit_code == 2
        assert r.stdout == json.dumps({"ok": False, "error": f"no such file: {missing}",
                                       "index": None, "reason": f"no such file: {missing}"}
                                      ) + "\n"


@pytest.mark.parametrize(("content", "said"), [
    (b"\xff{", "is not JSON, so not a consent receipt"),
    (b"<html>receipt</html>", "is not JSON, so not a consent receipt"),
    (b'{"hello": "world"}', "is not a consent receipt: the wallet's receipts are JSON "
                            "objects of @type dpv:ConsentReceipt with ledger_evidence"),
    (b"[1, 2]", "is not a consent receipt"),
    (b'"a string"', "is not a consent receipt"),
])
def test_a_file_that_is_not_a_receipt_says_so(tmp_path: Path, content: bytes, said: str
                                              ) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(content)
    r = runner.invoke(app, ["receipt", str(path)])
    assert r.exit_code == 2 and said in " ".join(r.stderr.split()), r.output
    assert "RP ID None" not in r.output and "Errno" not in r.output
    r = runner.invoke(app, ["receipt", str(path), "--json"])
    assert r.exit_code == 2 and said in json.loads(r.stdout)["error"]


def test_a_broken_receipt_is_a_verdict_with_its_problems_counted(tmp_path: Path) -> None:
    """A file that says it is a receipt and fails is a forged or broken receipt (exit 1),
    its problems counted in English, and no relying party made up."""
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"@type": "dpv:ConsentReceipt"}))
    r = runner.invoke(app, ["receipt", str(path)])
    assert r.exit_code == 1
    assert "the consent receipt does not verify (1 problem):" in r.stdout
    assert "RP ID None" not in r.stdout and "none checked (no relying party" in r.stdout


def test_one_problem_and_two_problems(downloaded: Downloaded) -> None:
    receipt = json.loads(downloaded.data)
    receipt["status"]["snapshot"] = "Changed."  # only the vault's signature covers the words
    path = downloaded.workdir / "one.json"
    path.write_text(json.dumps(receipt))
    r = runner.invoke(app, ["receipt", str(path)])
    assert r.exit_code == 1 and "does not verify (1 problem):" in r.stdout
    receipt["status"]["state"] = "revoked"  # and the claims' check this one
    path.write_text(json.dumps(receipt))
    r = runner.invoke(app, ["receipt", str(path)])
    assert r.exit_code == 1 and "does not verify (2 problems):" in r.stdout
    assert "problem(s)" not in r.stdout


# -- --live: the grant now, from the vault's ledger ---------------------------------------


def _ledger_size(vault: LiveVault) -> int:
    assert vault.app is not None
    with vault.app.state.vault.ctx.engine.connect() as conn:
        return SqlLedger(conn).tree_head().size


def _checkpointed(vault: LiveVault) -> None:
    """Wait until the published checkpoint covers every entry (it must, within 1 s)."""
    size, deadline = _ledger_size(vault), time.monotonic() + 2.0
    while int(httpx.get(f"{vault.url}/ledger/checkpoint").text.split("\n")[1]) < size:
        assert time.monotonic() < deadline, "no checkpoint covered the new entries"
        time.sleep(0.02)


def test_live_says_what_became_of_the_grant_since_the_receipt(tmp_path: Path) -> None:
    """A receipt downloaded while the grant was approved, checked after a read and the
    citizen's revocation, against a vault whose ledger needs the auditor's key."""
    settings = Settings(data_dir=tmp_path / "vault", ledger_public=False,
                        auditor_api_keys="sekrit", checkpoint_interval=0.05)
    with serve(settings) as vault:
        assert vault.app is not None
        ctx = vault.app.state.vault.ctx
        ada = sign_up(vault)
        assert ada.citizen_id is not None
        service = blue_badge(ctx)
        grant = ask(ctx, World(service, ada.citizen_id, ""))
        assert ada.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200
        path = tmp_path / "receipt.json"
        path.write_bytes(ada.client.get(f"/wallet/grants/{grant.id}/receipt.json").content)
        receipt = json.loads(path.read_bytes())
        live = ["receipt", str(path), "--live", vault.url, "--api-key", "sekrit"]
        _checkpointed(vault)
        r = runner.invoke(app, [*live, "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert (doc["live"]["state"], doc["live"]["changed"]) == ("approved", False)
        assert "now: still approved, no change" in runner.invoke(app, live).stdout

        read_under_grant(ctx, service_id=service, grant_id=grant.id)
        assert ada.passkey_post(f"/wallet/grants/{grant.id}/revoke").status_code == 200
        _checkpointed(vault)
        r = runner.invoke(app, [*live, "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert doc["ok"] and doc["status"] == "approved"  # the receipt has not changed
        now = doc["live"]
        assert (now["state"], now["changed"], now["reads_since"]) == ("revoked", True, 1)
        [revoked] = now["changes"]
        assert revoked["kind"] == "grant.revoked" and now["ledger_index"] == revoked["index"]
        human = runner.invoke(app, live)
        assert human.exit_code == 0, human.output
        approval = receipt["events"][-1]
        assert (f"approved (since {approval['event_time']}, ledger entry "
                f"{approval['ledger_index']}) when this receipt was made, at "
                f"{receipt['receipt_timestamp']}; now: revoked at {revoked['time']} (ledger "
                f"entry {revoked['index']})") in human.stdout
        assert "1 read recorded" in human.stdout

        denied = runner.invoke(app, ["receipt", str(path), "--live", vault.url, "--json"])
        assert denied.exit_code == 2 and "401" in json.loads(denied.stdout)["error"]

        # The vault changes the revocation after signing it: the entries it serves no
        # longer give its signed root.
        db = sqlite3.connect(tmp_path / "vault" / "vault.db")
        (data,) = db.execute("SELECT data FROM ledger_entries WHERE seq = ?",
                             (revoked["index"],)).fetchone()
        db.execute("UPDATE ledger_entries SET data = ? WHERE seq = ?",
                   (data.replace(b'"grant.revoked"', b'"grant.expired"'), revoked["index"]))
        db.commit()
        db.close()
        r = runner.invoke(app, [*live, "--json"])
        assert r.exit_code == 1
        [problem] = json.loads(r.stdout)["problems"]
        assert problem["check"] == "live" and "not the entries the vault signed" in \
            problem["message"]


# -- any changed byte --------------------------------------------------------------------

#: Fields no check covers. None since receipts carry the vault's signature over every
#: field: the ledger evidence and the grant's claims are also checked one by one, and the
#: catalog's words, constants, the receipt's own id and time are bound by the signature.
UNPROVEN: frozenset[tuple[str, ...]] = frozenset()

Path_ = tuple[str | int, ...]


def layout(value: Any, path: Path_ = ()) -> tuple[bytes, list[tuple[int, int, Path_]]]:
    """`value` serialised as the wallet's JSONResponse does (compact, UTF-8), with the
    byte span of every member (its key included) and element."""
    if not isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode(), []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out, spans = bytearray(b"{" if isinstance(value, dict) else b"["), []
    for n, (k, v) in enumerate(items):
        out += b"," if n else b""
        start = len(out)
        if isinstance(value, dict):
            out += json.dumps(k, ensure_ascii=False).encode() + b":"
        inner, sub = layout(v, (*path, k))
        spans += [(s + len(out), e + len(out), p) for s, e, p in sub]
        out += inner
        spans.append((start, len(out), (*path, k)))
    out += b"}" if isinstance(value, dict) else b"]"
    return bytes(out), spans


def unproven(spans: list[tuple[int, int, Path_]], pos: int) -> bool:
    """Whether the byte at `pos` lies in (or under) one of the UNPROVEN fields."""
    for start, end, path in spans:
        if start <= pos < end:
            shape = tuple("*" if isinstance(x, int) else x for x in path)
            if any(shape[:len(u)] == u for u in UNPROVEN):
                return True
    return False


def test_the_layout_is_the_downloaded_bytes(downloaded: Downloaded) -> None:
    assert layout(json.loads(downloaded.data))[0] == downloaded.data


@pytest.fixture(scope="module")
def proven(downloaded: Downloaded) -> list[int]:
    """Every byte position of the receipt outside the UNPROVEN fields."""
    _, spans = layout(json.loads(downloaded.data))
    return [i for i in range(len(downloaded.data)) if not unproven(spans, i)]


_SOME = settings(max_examples=50, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SOME
@given(n=st.integers(0, 2**32), flip=st.integers(1, 255))
def test_any_changed_byte_is_refused(
    downloaded: Downloaded, proven: list[int], n: int, flip: int,
) -> None:
    data = downloaded.data
    pos = proven[n % len(proven)]
    assert len(proven) > len(data) // 2  # the evidence is most of the file
    changed = data[:pos] + bytes([data[pos] ^ flip]) + data[pos + 1:]
    code, doc = check(downloaded, changed, name="changed.json")
    assert refused(code, doc), (pos, data[max(pos - 30, 0):pos + 10])


@_SOME
@given(n=st.integers(0, 2**32), flip=st.integers(1, 255))
def test_with_pins_any_changed_byte_of_the_ledger_evidence_is_refused(
    downloaded: Downloaded, n: int, flip: int,
) -> None:
    """The receipt's own key and relying party must agree with the pinned ones too."""
    data = downloaded.data
    start = data.index(b'"ledger_evidence":')
    pos = start + n % (len(data) - start - 1)  # not the closing brace
    changed = data[:pos] + bytes([data[pos] ^ flip]) + data[pos + 1:]
    code, doc = check(downloaded, changed, *downloaded.pins(), name="changed.json")
    assert refused(code, doc), (pos, data[max(pos - 30, 0):pos + 10])
