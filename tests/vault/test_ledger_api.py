"""The /ledger/* contract (ARCHITECTURE §2) served by the app."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.hasher import leaf_hash
from ledger.note import Verifier
from ledger.sqlstore import SqlLedger
from ledger.verify import verify_consistency, verify_inclusion
from vault.app import create_app
from vault.config import Settings
from vault.storage.database import make_engine


def append(settings: Settings, n: int) -> datetime:
    """Append as another process would: straight into the database, not via the app.
    Returns when the commit happened."""
    engine = make_engine(settings.database)
    with engine.begin() as conn:
        SqlLedger(conn).append_many(
            [("record.written", {"record_id": f"rec_{i}", "category": "contact.email"})
             for i in range(n)])
    committed = datetime.now(UTC)
    engine.dispose()
    return committed


def publication_delay(settings: Settings, size: int, committed: datetime) -> float:
    """Seconds from a commit to the checkpoint covering it, as the publisher stamped it.

    Measured at the publisher rather than by polling over HTTP, so a stall of the test's
    own polling (a loaded CI machine) is not blamed on the publisher.
    """
    engine = make_engine(settings.database)
    with engine.connect() as conn:
        stamp = conn.exec_driver_sql(
            "SELECT published_at FROM ledger_checkpoints WHERE size = ?"
            if engine.dialect.name == "sqlite" else
            "SELECT published_at FROM ledger_checkpoints WHERE size = %s", (size,)).scalar_one()
    engine.dispose()
    published = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (published - committed).total_seconds()


def checkpoint(client: TestClient) -> Checkpoint:
    r = client.get("/ledger/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    key = Verifier.parse(client.get("/ledger/key").text)
    return open_checkpoint(r.text, expected_verifier=key)


def wait_for_checkpoint(client: TestClient, size: int, timeout: float) -> tuple[Checkpoint, float]:
    start = time.monotonic()
    while True:
        cp = checkpoint(client)
        elapsed = time.monotonic() - start
        if cp.size >= size or elapsed > timeout:
            return cp, elapsed
        time.sleep(0.01)


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_key_is_c2sp_verifier_key_named_after_origin(client: TestClient) -> None:
    key = Verifier.parse(client.get("/ledger/key").text)
    assert key.name == "localhost:8000/ledger"
    assert checkpoint(client).origin == key.name


def test_empty_ledger_has_a_signed_checkpoint(client: TestClient) -> None:
    cp = checkpoint(client)
    assert cp.size == 0
    assert cp.extensions == ()


def test_checkpoint_covers_a_commit_within_one_second(
    client: TestClient, settings: Settings
) -> None:
    for size in (5, 6, 106):
        before = checkpoint(client).size
        committed = append(settings, size - before)
        cp, elapsed = wait_for_checkpoint(client, size, timeout=5.0)
        assert cp.size == size, f"checkpoint still at {cp.size} after {elapsed:.2f}s"
        assert publication_delay(settings, size, committed) < 1.0


def test_entries_are_the_exact_hashed_bytes_and_proofs_verify(
    client: TestClient, settings: Settings
) -> None:
    append(settings, 37)
    cp, _ = wait_for_checkpoint(client, 37, timeout=2.0)
    r = client.get("/ledger/entries", params={"start": 0, "limit": 1000})
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = r.content.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 38
    for i, line in enumerate(lines[:-1]):
        p = client.get("/ledger/proofs/inclusion", params={"index": i, "tree_size": cp.size})
        assert p.status_code == 200
        doc = p.json()
        assert (doc["index"], doc["tree_size"]) == (i, cp.size)
        verify_inclusion(leaf_hash=leaf_hash(line), index=i, tree_size=cp.size,
                         proof=[base64.b64decode(h) for h in doc["hashes"]],
                         expected_root=cp.root)
    old = cp
    append(settings, 20)
    new, _ = wait_for_checkpoint(client, 57, timeout=2.0)
    c = client.get("/ledger/proofs/consistency", params={"from": old.size, "to": new.size})
    doc = c.json()
    assert (doc["from"], doc["to"]) == (old.size, new.size)
    verify_consistency(first=old.size, second=new.size,
                       proof=[base64.b64decode(h) for h in doc["hashes"]],
                       first_root=old.root, second_root=new.root)


def test_entries_paging(client: TestClient, settings: Settings) -> None:
    append(settings, 10)
    page = client.get("/ledger/entries", params={"start": 4, "limit": 3}).content
    assert [b'"seq":4' in line for line in page.split(b"\n")[:-1]] == [True, False, False]
    assert len(page.split(b"\n")) == 4
    # At the end: nothing new, not an error (auditors poll this way).
    assert client.get("/ledger/entries", params={"start": 10}).content == b""


BAD_QUERIES = [
    ("/ledger/entries", {"start": -1}),
    ("/ledger/entries", {"start": "abc"}),
    ("/ledger/entries", {"limit": 0}),
    ("/ledger/entries", {"limit": 1001}),
    ("/ledger/entries", {"start": 11}),
    ("/ledger/entries", {"start": 10**30}),
    ("/ledger/entries", {"start": "1.5"}),
    ("/ledger/proofs/inclusion", {}),
    ("/ledger/proofs/inclusion", {"index": 0}),
    ("/ledger/proofs/inclusion", {"index": 3, "tree_size": 3}),
    ("/ledger/proofs/inclusion", {"index": 0, "tree_size": 11}),
    ("/ledger/proofs/inclusion", {"index": 0, "tree_size": 0}),
    ("/ledger/proofs/inclusion", {"index": "x", "tree_size": 5}),
    ("/ledger/proofs/consistency", {"from": 0, "to": 5}),
    ("/ledger/proofs/consistency", {"from": 6, "to": 5}),
    ("/ledger/proofs/consistency", {"from": 1, "to": 11}),
    ("/ledger/proofs/consistency", {"from": 1}),
    ("/ledger/proofs/consistency", {"from": -1, "to": 2}),
]


@pytest.mark.parametrize(("path", "params"), BAD_QUERIES)
def test_bad_parameters_get_400_problem_details(
    client: TestClient, settings: Settings, path: str, params: dict[str, Any]
) -> None:
    append(settings, 10)
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["status"] == 400 and doc["title"] == "Bad Request"
    assert doc["type"] and doc["detail"]


def test_unknown_path_is_a_404_problem(client: TestClient) -> None:
    r = client.get("/ledger/nothing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


_param = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str),
                   st.text(max_size=12), st.just(""))


@hsettings(max_examples=150, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/ledger/entries", "/ledger/proofs/inclusion",
                             "/ledger/proofs/consistency"]),
       names=st.lists(st.sampled_from(["start", "limit", "index", "tree_size", "from", "to"]),
                      max_size=3, unique=True),
       values=st.lists(_param, min_size=3, max_size=3))
def test_any_query_gets_200_or_400_never_500(
    client: TestClient, path: str, names: list[str], values: list[str]
) -> None:
    r = client.get(path, params=dict(zip(names, values, strict=False)))
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.headers["content-type"] == "application/problem+json"


def test_private_ledger_needs_an_auditor_key(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, ledger_public=False, auditor_api_keys="k-one, k-two")
    with TestClient(create_app(s)) as c:
        for path in ("/ledger/entries", "/ledger/proofs/consistency?from=1&to=1"):
            r = c.get(path)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert c.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
            assert c.get(path, headers={"Authorization": "Basic k-one"}).status_code == 401
        ok = c.get("/ledger/entries", headers={"Authorization": "Bearer k-two"})
        assert ok.status_code == 200
        # The checkpoint and key are always public.
        assert c.get("/ledger/checkpoint").status_code == 200
        assert c.get("/ledger/key").status_code == 200


def test_demo_seeds_once(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, ledger_public=True, demo=True, checkpoint_interval=0.05)
    sizes = []
    for _ in range(2):
        with TestClient(create_app(s)) as c:
            sizes.append(wait_for_checkpoint(c, 1, timeout=2.0)[0].size)
            cp = checkpoint(c)
    size_after_first = sizes[0]
    assert cp.size > 0
    assert cp.size == size_after_first


def test_app_serves_the_ledger_from_either_database(database_url: str, tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url=database_url, ledger_public=True,
                 checkpoint_interval=0.05)
    with TestClient(create_app(s)) as c:
        committed = append(s, 300)
        cp, _ = wait_for_checkpoint(c, 300, timeout=5.0)
        assert cp.size == 300
        assert publication_delay(s, 300, committed) < 1.0
        lines = c.get("/ledger/entries", params={"start": 290, "limit": 10}).content.split(b"\n")
        doc = c.get("/ledger/proofs/inclusion", params={"index": 299, "tree_size": 300}).json()
        verify_inclusion(leaf_hash=leaf_hash(lines[9]), index=299, tree_size=300,
                         proof=[base64.b64decode(h) for h in doc["hashes"]],
                         expected_root=cp.root)
