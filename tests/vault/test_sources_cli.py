"""`vault service add --issues CAT --source-url URL` (ARCHITECTURE §8, held at source):
registered, listed by `vault service list` and `vault catalog list --data-dir`, on the
ledger as which categories are held (never where), and writes of them refused."""

from __future__ import annotations

import json
from pathlib import Path

from support.ledgerview import read_export
from typer.testing import CliRunner

from vault.cli import app

runner = CliRunner()

JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}
URL = "https://register.example.gov/source"


def run(*args: str, data_dir: Path, code: int = 0) -> str:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert r.exit_code == code, r.output
    return r.output


def add(tmp_path: Path, data: Path, *args: str, code: int = 0) -> str:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [JWK]}))
    return run("service", "add", "--name", "Electoral register", "--jwks-file", str(jwks),
               "--redirect-uri", "https://register.example.gov/cb", "--purpose",
               "service_provision", *args, data_dir=data, code=code)


def test_a_source_is_registered_listed_and_its_categories_refuse_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("db", "upgrade", data_dir=data)
    source = json.loads(add(tmp_path, data, "--issues", "address.home", "--source-url", URL,
                            "--json"))["client_id"]
    [listed] = json.loads(run("service", "list", "--json", data_dir=data))
    assert listed["client_id"] == source
    assert listed["held_at_source"] == ["address.home"] and listed["source_url"] == URL
    text = " ".join(run("service", "list", data_dir=data).split())
    assert f"issues: address.home held at source ({URL})" in text
    # The catalog says so when told which vault to look at, and is as before otherwise.
    doc = json.loads(run("catalog", "list", "--json", data_dir=data))
    [home] = [c for c in doc["categories"] if c["code"] == "address.home"]
    assert home["held_at_source"] == {"client_id": source, "name": "Electoral register"}
    plain = json.loads(runner.invoke(app, ["catalog", "list", "--json"]).output)
    assert all("held_at_source" not in c for c in plain["categories"])
    assert "Held at source by Electoral register" in " ".join(
        run("catalog", "list", data_dir=data).split())
    # On the ledger: which categories, not where.
    out = tmp_path / "ledger.ndjson"
    openings = tmp_path / "openings.ndjson"
    run("ledger", "export", "--out", str(out), "--openings", str(openings), data_dir=data)
    [entry] = [e for e in read_export(out, openings) if e["kind"] == "service.registered"]
    assert entry["body"]["held_at_source"] == ["address.home"]
    assert "register.example.gov" not in json.dumps(entry)
    # The vault stores no value of it: the operator's write is refused, saying why.
    citizen = run("citizen", "enrol", data_dir=data).strip()
    value = json.dumps({"lines": ["1 Guildhall Yard"], "town": "London",
                        "postcode": "EC2V 5AE", "local_authority": "City of London"})
    refused = run("citizen", "write", citizen, "address.home", value, data_dir=data, code=2)
    assert "held at source by Electoral register" in " ".join(refused.split())


def test_a_bad_source_registration_is_refused_with_the_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("db", "upgrade", data_dir=data)
    r = add(tmp_path, data, "--source-url", URL, "--category", "address.home", code=2)
    assert "a source URL needs the categories held there (--issues)" in " ".join(r.split())
    r = add(tmp_path, data, "--issues", "address.home", "--source-url",
            "http://register.example.gov/source", code=2)
    assert "source_url must use https" in " ".join(r.split())
    assert json.loads(run("service", "list", "--json", data_dir=data)) == []
