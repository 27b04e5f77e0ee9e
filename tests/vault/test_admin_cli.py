"""The operator's commands against a real database."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from click.testing import Result
from sqlmodel import Session
from standardwebhooks import Webhook
from typer.testing import CliRunner

from vault.cli import app
from vault.crypto.webhook_signing import signature_headers, webhook_secret
from vault.domain.categories import categories
from vault.domain.purposes import purposes
from vault.storage.database import make_engine
from vault.storage.schema import current_revision
from vault.storage.tables import ServiceRow

runner = CliRunner()

JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


def run(*args: str, data_dir: Path) -> str:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    return r.output


def new_vault(tmp_path: Path) -> Path:
    """A data directory with a vault in it (what `vault serve` would also make)."""
    data = tmp_path / "data"
    assert "schema at" in run("db", "upgrade", data_dir=data)
    return data


def test_service_citizen_and_keys_commands(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [JWK]}))
    data = new_vault(tmp_path)
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
    r = runner.invoke(app, [*args, "--data-dir", str(new_vault(tmp_path))])
    assert r.exit_code == 2 and message in r.output


def test_webhook_secret_and_delivery_log(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(JWK))
    data = new_vault(tmp_path)
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


# -- a folder with no vault (issue 11: `vault service list` made one and printed nothing) ----

NO_VAULT_COMMANDS = [
    ["service", "list"], ["service", "suspend", "svc_x"], ["service", "webhook-secret", "svc_x"],
    ["service", "deliveries", "svc_x"], ["citizen", "enrol"], ["citizen", "export", "cit_x"],
    ["citizen", "write", "cit_x", "contact.email", '"a@b.org"'],
    ["citizen", "erase", "cit_x", "--yes"], ["keys", "rotate"], ["ledger", "verify"],
    ["ledger", "export"],
]


def _says_where_and_how(output: str, where: str) -> None:
    text = " ".join(output.split())  # the console wraps long lines
    assert f"no vault at {where}" in text, text
    for way in ("--data-dir", "VAULT_DATA_DIR", "VAULT_DATABASE_URL", "vault db upgrade"):
        assert way in text, way


@pytest.mark.parametrize("args", NO_VAULT_COMMANDS, ids=" ".join)
def test_commands_refuse_a_folder_with_no_vault_and_make_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)  # "run from another folder", with no --data-dir
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    _says_where_and_how(r.output, f"{tmp_path / 'vault-data'} (there is no database "
                                  f"{tmp_path / 'vault-data' / 'vault.db'})")
    assert list(tmp_path.iterdir()) == []  # nothing made: no folder, no keys, no database


def test_service_add_refuses_a_folder_with_no_vault(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(JWK))
    elsewhere = tmp_path / "elsewhere"
    r = runner.invoke(app, [
        "service", "add", "--name", "Blue Badge team", "--jwks-file", str(jwks),
        "--redirect-uri", "https://badges.example.gov/cb", "--purpose",
        "eligibility_assessment", "--category", "address.home", "--data-dir", str(elsewhere)])
    assert r.exit_code == 2
    _says_where_and_how(r.output, str(elsewhere))
    assert not elsewhere.exists()


def test_a_file_that_is_not_a_vault_is_refused_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    db.write_bytes(b"")
    r = runner.invoke(app, ["service", "list", "--database", f"sqlite:///{db}"])
    assert r.exit_code == 2
    assert f"no vault in {db} (the file holds no vault schema)" in " ".join(r.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no -shm
    assert db.read_bytes() == b""


def test_an_empty_postgresql_database_is_refused_and_left_empty(pg_database_url: str) -> None:
    r = runner.invoke(app, ["service", "list", "--database", pg_database_url])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "no vault in the database postgresql://" in text and "VAULT_DATABASE_URL" in text
    password = pg_database_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    assert not password or password not in text
    engine = make_engine(pg_database_url)
    try:
        assert current_revision(engine) is None  # still nothing there
    finally:
        engine.dispose()


def test_serve_and_db_upgrade_still_make_a_new_vault(tmp_path: Path) -> None:
    data = tmp_path / "new"
    run("db", "upgrade", data_dir=data)
    assert json.loads(run("service", "list", "--json", data_dir=data)) == []


# -- the codes: in errors, in --help, and `vault catalog list` ------------------------------


def _add(tmp_path: Path, *extra: str) -> Result:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(JWK))
    return runner.invoke(app, [
        "service", "add", "--name", "Blue Badge team", "--jwks-file", str(jwks),
        "--redirect-uri", "https://badges.example.gov/cb", "--data-dir",
        str(new_vault(tmp_path)), *extra])


@pytest.mark.parametrize(("extra", "listed"), [
    (["--purpose", "eligibility", "--category", "address.home"],
     ["unknown purpose 'eligibility'; the purposes are", "eligibility_assessment",
      "service_provision", "research_with_consent"]),
    (["--purpose", "eligibility_assessment", "--category", "address"],
     ["unknown category 'address'; the categories are", "address.home", "identity.name",
      "health.observations"]),
    (["--purpose", "eligibility_assessment", "--category", "address.home", "--derived",
      "over_65"],
     ["there is no derived answer called 'over_65'; the derived answers are", "age_over_65",
      "receives:attendance_allowance", "resident_in:<local authority>"]),
])
def test_an_unknown_code_lists_the_valid_ones(tmp_path: Path, extra: list[str],
                                             listed: list[str]) -> None:
    r = _add(tmp_path, *extra)
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    for words in listed:
        assert words in text, words


def test_service_add_help_lists_the_codes() -> None:
    r = runner.invoke(app, ["service", "add", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    for code in (*purposes(), *categories(), "age_over_65", "receives:universal_credit",
                 "resident_in:<local authority>"):
        assert code in text, code
    assert "vault catalog list" in text


def test_catalog_list_gives_every_code_with_its_words(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["catalog", "list", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert {p["code"]: p["words"] for p in doc["purposes"]} == {
        p.code: p.text for p in purposes().values()}
    eligibility = next(p for p in doc["purposes"] if p["code"] == "eligibility_assessment")
    assert eligibility["more"].startswith("GDPR Article 6(1)(e)")
    assert {c["code"]: c["words"] for c in doc["categories"]} == {
        c.code: c.label for c in categories().values()}
    derived = {d["code"]: d["words"] for d in doc["derived"]}
    assert derived["age_over_65"] == "Whether you are 65 or over"
    assert derived["receives:attendance_allowance"] == "Whether you get Attendance Allowance"
    assert "resident_in:<local authority>" in derived
    # receives: rests on issued facts, and the catalog says so (ARCHITECTURE §8).
    marked = {d["code"]: d["more"] for d in doc["derived"] if d.get("issued_only")}
    assert set(marked) == {"receives:attendance_allowance", "receives:universal_credit"}
    assert all(m.startswith("Counts only what the service that issues it added")
               for m in marked.values())
    # Free school meals: the catalog says the rule, and which input counts only as issued.
    meals = next(d for d in doc["derived"] if d["code"] == "eligible_free_school_meals")
    assert "household.universal_credit as the benefits agency issued it" in meals["more"]
    issuers = {c["code"]: c["issued_by"] for c in doc["categories"] if "issued_by" in c}
    assert issuers == {c.code: c.issued_by for c in categories().values() if c.issuable}
    assert "benefits.attendance_allowance" in issuers and "address.home" not in issuers
    human = runner.invoke(app, ["catalog", "list"], env={"COLUMNS": "120"})
    assert human.exit_code == 0
    for words in ("eligibility_assessment", "To check whether you can get a service or benefit.",
                  "address.home", "Home address", "age_over_65", "Whether you are 65 or over",
                  "Issued by"):
        assert words in human.output, words
    assert list(tmp_path.iterdir()) == []  # the catalogs come with the vault: no data dir


def test_service_add_publishes_its_pages_with_the_operators_words(tmp_path: Path) -> None:
    r = _add(tmp_path, "--purpose", "eligibility_assessment", "--category", "address.home",
             "--public-url", "https://vault.riverside.example", "--controller",
             "Riverside Council", "--contact", "dpo@riverside.example", "--dpia-text",
             "Assessed in 2026.\n\nLow risk.", "--json")
    assert r.exit_code == 0, r.output
    client_id = json.loads(r.output)["client_id"]
    data = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data / 'vault.db'}")
    try:
        with Session(engine) as session:
            row = session.get(ServiceRow, client_id)
    finally:
        engine.dispose()
    assert row is not None
    base = f"https://vault.riverside.example/services/{client_id}"
    assert (row.privacy_notice_url, row.dpia_url) == (f"{base}/privacy", f"{base}/dpia")
    assert (row.controller, row.contact, row.dpia_text) == (
        "Riverside Council", "dpo@riverside.example", "Assessed in 2026.\n\nLow risk.")
    (tmp_path / "again").mkdir()
    bad = _add(tmp_path / "again", "--purpose", "eligibility_assessment", "--category",
               "address.home", "--contact", "call Jo")
    assert bad.exit_code == 2 and "contact must be an email address or an http(s) URL" in (
        " ".join(bad.output.split()))
