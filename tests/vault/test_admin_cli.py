"""The operator's commands against a real database."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from typer.testing import CliRunner

from vault.cli import app
from vault.crypto.webhook_signing import signature_headers, webhook_secret

runner = CliRunner()

JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


def run(*args: str, data_dir: Path) -> str:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    return r.output


def test_service_citizen_and_keys_commands(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [JWK]}))
    data = tmp_path / "data"
    out = run("service", "add", "--name", "Blue Badge team", "--jwks-file", str(jwks),
              "--redirect-uri", "https://badges.example.gov/cb", "--purpose",
              "eligibility_assessment", "--category", "address.home", "--derived",
              "age_over_65", "--max-days", "90", "--json", data_dir=data)
    client_id = json.loads(out)["client_id"]
    assert client_id.startswith("svc_")
    listed = json.loads(run("service", "list", "--json", data_dir=data))
    assert listed[0]["client_id"] == client_id and listed[0]["active"]
    run("service", "suspend", client_id, data_dir=data)
    assert not json.loads(run("service", "list", "--json", data_dir=data))[0]["active"]

    cid = json.loads(run("citizen", "enrol", "--json", data_dir=data))["citizen_id"]
    run("citizen", "write", cid, "contact.email", '"ada@example.org"', data_dir=data)
    exported = json.loads(run("citizen", "export", cid, data_dir=data))
    assert exported["contact.email"][0]["value"] == "ada@example.org"
    assert "data keys now under" in run("keys", "rotate", data_dir=data)
    assert json.loads(run("citizen", "export", cid, data_dir=data)) == exported
    run("citizen", "erase", cid, "--yes", data_dir=data)
    gone = runner.invoke(app, ["citizen", "export", cid, "--data-dir", str(data)])
    assert gone.exit_code == 2 and "no such citizen" in gone.output
    assert "schema at" in run("db", "upgrade", data_dir=data)
    verify = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data), "--json"])
    assert json.loads(verify.output)["ok"], verify.output


@pytest.mark.parametrize(("args", "message"), [
    (["citizen", "write", "cit_x", "contact.email", "not json"], "not JSON"),
    (["citizen", "write", "cit_x", "contact.email", '"a@b.org"'], "no such citizen"),
    (["service", "suspend", "svc_nope"], "no service"),
])
def test_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    r = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and message in r.output


def test_webhook_secret_and_delivery_log(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(JWK))
    data = tmp_path / "data"
    added = json.loads(run(
        "service", "add", "--name", "Blue Badge team", "--jwks-file", str(jwks),
        "--redirect-uri", "https://badges.example.gov/cb", "--purpose",
        "eligibility_assessment", "--category", "address.home", "--webhook-url",
        "https://badges.example.gov/hooks", "--json", data_dir=data))
    secret = added["webhook_secret"]
    assert secret.startswith("whsec_")
    assert run("service", "webhook-secret", added["client_id"], data_dir=data).strip() == secret
    # The printed secret verifies what the vault signs for this service.
    app_key = (data / "keys" / "app.key").read_text().strip()
    raw = webhook_secret(base64.b64decode(app_key), added["client_id"])
    body = b'{"type":"grant.approved"}'
    headers = signature_headers(raw, message_id="msg_1", timestamp=int(time.time()), body=body)
    assert Webhook(secret).verify(body, headers) == {"type": "grant.approved"}
    assert json.loads(run("service", "deliveries", added["client_id"], "--json",
                          data_dir=data)) == []
    gone = runner.invoke(app, ["service", "deliveries", "svc_nope", "--data-dir", str(data)])
    assert gone.exit_code == 2 and "no service" in gone.output
