"""`vault service add --jwks-file` registers a whole JWK Set, and `vault service keys
CLIENT_ID --jwks-file F` replaces it (rotation); bad key files are clear errors, exit 2,
changing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from clients.service.keys import ServiceKey
from vault.cli import app
from vault.storage.database import make_engine
from vault.storage.tables import ServiceRow

runner = CliRunner()
OLD, NEW = ServiceKey.generate(kid="2026"), ServiceKey.generate()


def invoke(*args: str, data: Path) -> tuple[int, str]:
    r = runner.invoke(app, [*args, "--data-dir", str(data)])
    return r.exit_code, r.output


def key_file(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def registered(data: Path, client_id: str) -> list[str]:
    """The kids of the set the vault holds for the service."""
    engine = make_engine(f"sqlite:///{data / 'vault.db'}")
    try:
        with Session(engine) as session:
            row = session.get(ServiceRow, client_id)
            assert row is not None
            return [k["kid"] for k in row.jwks["keys"]]
    finally:
        engine.dispose()


@pytest.fixture
def vault(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "data"
    assert invoke("db", "upgrade", data=data)[0] == 0
    both = key_file(tmp_path, "both.json", {"keys": [*OLD.public_jwks()["keys"],
                                                     NEW.public_jwk()]})
    code, out = invoke("service", "add", "--name", "Benefits agency", "--jwks-file", both,
                       "--redirect-uri", "https://benefits.example.gov/cb", "--purpose",
                       "eligibility_assessment", "--category", "identity.name", "--json",
                       data=data)
    assert code == 0, out
    return data, json.loads(out)["client_id"]


def test_a_whole_set_is_registered_and_replaced(vault: tuple[Path, str],
                                                tmp_path: Path) -> None:
    data, client_id = vault
    assert registered(data, client_id) == ["2026", NEW.key_id]
    new_only = key_file(tmp_path, "new.json", NEW.public_jwk())  # one JWK: a set of one
    code, out = invoke("service", "keys", client_id, "--jwks-file", new_only, data=data)
    assert code == 0, out
    assert out.split() == [client_id, "now", "has", "1", "key(s):", NEW.key_id]
    assert registered(data, client_id) == [NEW.key_id]


@pytest.mark.parametrize(("doc", "says"), [
    ({"keys": [{**OLD.public_jwk(), "d": "AAAA"}]}, "private key material"),
    ({"keys": [OLD.public_jwk(), OLD.public_jwk()]}, "already the kid"),
    ({"keys": []}, "1 to 10 keys"),
    ([OLD.public_jwk()], "a JWK Set or a JWK"),
])
def test_bad_key_files_are_clear_errors(vault: tuple[Path, str], tmp_path: Path,
                                        doc: Any, says: str) -> None:
    data, client_id = vault
    bad = key_file(tmp_path, "bad.json", doc)
    code, out = invoke("service", "keys", client_id, "--jwks-file", bad, data=data)
    assert code == 2 and says in " ".join(out.split()), out
    code, out = invoke("service", "add", "--name", "Another", "--jwks-file", bad,
                       "--redirect-uri", "https://a.example.gov/cb", "--purpose",
                       "eligibility_assessment", "--category", "identity.name", data=data)
    assert code == 2 and says in " ".join(out.split()), out
    assert registered(data, client_id) == ["2026", NEW.key_id]  # unchanged


def test_an_unknown_service_is_a_clear_error(vault: tuple[Path, str], tmp_path: Path) -> None:
    data, _ = vault
    good = key_file(tmp_path, "good.json", NEW.public_jwks())
    code, out = invoke("service", "keys", "svc_nobody", "--jwks-file", good, data=data)
    assert code == 2 and "no service" in out
