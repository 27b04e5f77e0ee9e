"""`vault service add --issues` (issue 12, ARCHITECTURE §8): an issuer is registered, listed,
and its registration is on the ledger, where the auditor reads what it may issue."""

from __future__ import annotations

import json
from pathlib import Path

from support.ledgerview import read_export
from typer.testing import CliRunner

from clients.auditor.story import StoryChecker
from vault.cli import app

runner = CliRunner()

JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


def run(*args: str, data_dir: Path) -> str:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    return r.output


def add(tmp_path: Path, data: Path, *args: str) -> list[str]:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [JWK]}))
    return ["service", "add", "--name", "Benefits agency", "--jwks-file", str(jwks),
            "--redirect-uri", "https://benefits.example.gov/cb", "--purpose",
            "service_provision", *args, "--data-dir", str(data)]


def ledger(tmp_path: Path, data: Path) -> list[dict[str, object]]:
    out, openings = tmp_path / "ledger.ndjson", tmp_path / "openings.ndjson"
    run("ledger", "export", "--out", str(out), "--openings", str(openings), data_dir=data)
    return read_export(out, openings)


def test_an_issuer_is_registered_listed_and_on_the_ledger(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("db", "upgrade", data_dir=data)
    # An issuer may register with nothing to read: --category is then left out.
    r = runner.invoke(app, add(tmp_path, data, "--issues", "benefits.attendance_allowance",
                               "--issues", "identity.name", "--json"))
    assert r.exit_code == 0, r.output
    issuer = json.loads(r.output)["client_id"]
    r = runner.invoke(app, add(tmp_path, data, "--category", "address.home", "--json"))
    reader = json.loads(r.output)["client_id"]
    listed = {d["client_id"]: d for d in json.loads(run("service", "list", "--json",
                                                        data_dir=data))}
    assert listed[issuer]["issues"] == ["benefits.attendance_allowance", "identity.name"]
    assert listed[issuer]["categories"] == []
    assert listed[reader]["issues"] == []
    text = run("service", "list", data_dir=data)
    assert "issues: benefits.attendance_allowance, identity.name" in " ".join(text.split())
    entries = {e["body"]["service_id"]: e for e in ledger(tmp_path, data)  # type: ignore[index]
               if e["kind"] == "service.registered"}
    assert entries[issuer]["body"]["issues"] == [  # type: ignore[index]
        "benefits.attendance_allowance", "identity.name"]
    # A reader's registration is written as it always was: no `issues` at all.
    assert "issues" not in entries[reader]["body"]  # type: ignore[operator]
    # The auditor reads the registration and what it may issue.
    checker = StoryChecker(rp_id="localhost", origins=["http://localhost:8000"])
    for i, e in enumerate(ledger(tmp_path, data)):
        checker.feed(i, e)
    assert checker.failures == []
    assert checker.to_state()["services"][issuer][4] == [
        "benefits.attendance_allowance", "identity.name"]


def test_a_category_nobody_may_issue_is_refused_with_the_valid_codes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("db", "upgrade", data_dir=data)
    r = runner.invoke(app, add(tmp_path, data, "--issues", "contact.email"))
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert "does not let any service issue the category 'contact.email'" in text
    assert ("the categories a service may issue are benefits.attendance_allowance, "
            "benefits.universal_credit, health.observations, household.universal_credit, "
            "identity.date_of_birth, identity.name") in text
    r = runner.invoke(app, add(tmp_path, data))  # nothing to read, nothing to issue
    assert r.exit_code == 2 and "or a category to issue" in " ".join(r.output.split())
    assert json.loads(run("service", "list", "--json", data_dir=data)) == []
    # The help lists what may be issued.
    help_text = " ".join(runner.invoke(app, ["service", "add", "--help"]).output.split())
    assert "--issues" in help_text and "health.observations" in help_text
