"""The vault's publisher with real vault-witness instances on loopback ports: cosignatures
gathered and served, the quorum that decides what is published, a restart that learns each
witness's size from its 409, forged cosignatures dropped, and witnesses that fail without
failing the vault."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import pytest
from livevault import free_port
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from support.livewitness import LiveWitness
from support.livewitness import live_witness as _live_witness

from ledger.checkpoint import open_checkpoint
from ledger.cosignature import WitnessKey, WitnessSigner, check_cosignatures
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.services.checkpoints import publish_checkpoint
from vault.services.witnessing import (
    NotWitnessed,
    WitnessEndpoint,
    Witnessing,
    parse_witnesses,
)
from vault.storage.database import make_engine
from vault.storage.schema import migrate

LOG = Signer.generate("vault.test/ledger")


def live_witness(tmp_path: Path, name: str, **kw: Any) -> ContextManager[LiveWitness]:
    return _live_witness(tmp_path, name, [LOG.verifier()], **kw)


def endpoint(w: LiveWitness) -> WitnessEndpoint:
    return WitnessEndpoint(w.signer.verifier(), w.url)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    migrate(e)
    yield e
    e.dispose()


def grow(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        ledger = SqlLedger(conn)
        start = ledger.tree_head().size
        ledger.append_many([("service.registered", {"service_id": f"svc_{start + i}"})
                            for i in range(n)])


def cosigners(note: str, *witnesses: LiveWitness) -> set[str]:
    check = check_cosignatures(note, expected_witnesses=[w.signer.verifier() for w in witnesses])
    assert check.forged == ()
    return {c.witness.name for c in check.valid}


def test_quorum_of_two_publishes_the_cosigned_note(tmp_path: Path, engine: Engine) -> None:
    with live_witness(tmp_path, "w1") as w1, live_witness(tmp_path, "w2") as w2:
        witnessing = Witnessing([endpoint(w1), endpoint(w2)], quorum=2)
        for n in (3, 1, 20):  # each time with a proof from the size each witness holds
            grow(engine, n)
            published = publish_checkpoint(engine, LOG, witnessing)
            assert published.new
            cp = open_checkpoint(published.note, expected_verifier=LOG.verifier())
            assert cosigners(published.note, w1, w2) == {"w1", "w2"}
            assert w1.held_size(LOG.name) == w2.held_size(LOG.name) == cp.size
        with engine.connect() as conn:
            assert SqlLedger(conn).latest_checkpoint() == (24, published.note)
        witnessing.close()


def test_without_quorum_nothing_new_is_published(tmp_path: Path, engine: Engine) -> None:
    down = WitnessEndpoint(WitnessSigner.generate("down").verifier(),
                           f"http://127.0.0.1:{free_port()}")
    with live_witness(tmp_path, "w1") as w1:
        witnessing = Witnessing([endpoint(w1), down], quorum=2, timeout=0.5)
        grow(engine, 5)
        with pytest.raises(NotWitnessed):
            publish_checkpoint(engine, LOG, witnessing)
        with engine.connect() as conn:
            assert SqlLedger(conn).latest_checkpoint() is None
        # One witness is enough with a quorum of one; the one that is down is skipped.
        one = Witnessing([endpoint(w1), down], quorum=1, timeout=0.5)
        first = publish_checkpoint(engine, LOG, one)
        assert first.size == 5 and cosigners(first.note, w1) == {"w1"}
        grow(engine, 2)
        # With the quorum of two still unmet, the last published checkpoint stays latest.
        again = publish_checkpoint(engine, LOG, witnessing)
        assert (again.size, again.note, again.new) == (5, first.note, False)
        witnessing.close()
        one.close()


def test_a_witness_that_comes_back_completes_the_quorum(tmp_path: Path, engine: Engine) -> None:
    port = free_port()
    signer = WitnessSigner.generate("late")
    with live_witness(tmp_path, "w1") as w1:
        late = WitnessEndpoint(signer.verifier(), f"http://localhost:{port}")
        witnessing = Witnessing([endpoint(w1), late], quorum=2, timeout=0.5)
        grow(engine, 4)
        with pytest.raises(NotWitnessed):
            publish_checkpoint(engine, LOG, witnessing)
        with live_witness(tmp_path, "late", port=port, signer=signer) as w2:
            published = publish_checkpoint(engine, LOG, witnessing)
            assert published.new and cosigners(published.note, w1, w2) == {"w1", "late"}
        witnessing.close()


def test_after_a_restart_the_409_teaches_each_witness_size(tmp_path: Path, engine: Engine) -> None:
    with live_witness(tmp_path, "w1") as w1, live_witness(tmp_path, "w2") as w2:
        before = Witnessing([endpoint(w1), endpoint(w2)], quorum=2)
        grow(engine, 6)
        publish_checkpoint(engine, LOG, before)
        before.close()
        grow(engine, 9)
        after = Witnessing([endpoint(w1), endpoint(w2)], quorum=2)  # knows no sizes
        published = publish_checkpoint(engine, LOG, after)
        assert published.size == 15 and cosigners(published.note, w1, w2) == {"w1", "w2"}
        after.close()


def test_cosignatures_by_another_key_do_not_count(tmp_path: Path, engine: Engine) -> None:
    with live_witness(tmp_path, "w1") as w1, live_witness(tmp_path, "impostor") as imp:
        # Configured with w1's key but pointed at a witness holding another key.
        wrong = WitnessEndpoint(w1.signer.verifier(), imp.url)
        witnessing = Witnessing([wrong], quorum=1)
        grow(engine, 3)
        with pytest.raises(NotWitnessed):
            publish_checkpoint(engine, LOG, witnessing)
        witnessing.close()


def test_quorum_zero_publishes_at_once_and_adds_cosignatures(
        tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    down = WitnessEndpoint(WitnessSigner.generate("down").verifier(),
                           f"http://127.0.0.1:{free_port()}")
    witnessing = Witnessing([down], quorum=0, timeout=0.5)
    grow(engine, 2)
    with caplog.at_level(logging.WARNING):
        published = publish_checkpoint(engine, LOG, witnessing)
    assert published.new and published.note.count("\u2014") == 1  # the log's only
    assert "witness down did not cosign" in caplog.text
    with live_witness(tmp_path, "w1") as w1:
        witnessing = Witnessing([endpoint(w1)], quorum=0)
        grow(engine, 1)
        published = publish_checkpoint(engine, LOG, witnessing)
        with engine.connect() as conn:
            assert SqlLedger(conn).latest_checkpoint() == (3, published.note)
        assert cosigners(published.note, w1) == {"w1"}
        witnessing.close()


def test_a_forking_log_gets_no_cosignature(
        tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with live_witness(tmp_path, "w1") as w1:
        witnessing = Witnessing([endpoint(w1)], quorum=1)
        grow(engine, 4)
        publish_checkpoint(engine, LOG, witnessing)
        with engine.begin() as conn:  # the operator rewrites history in place
            conn.exec_driver_sql("DELETE FROM ledger_checkpoints")
        other = make_engine(f"sqlite:///{tmp_path / 'fork.db'}")
        migrate(other)
        with other.begin() as conn:
            SqlLedger(conn).append_many([("service.registered", {"service_id": "forked"})] * 4)
        with caplog.at_level(logging.ERROR), pytest.raises(NotWitnessed):
            publish_checkpoint(other, LOG, witnessing)
        assert "answered 422" in caplog.text
        assert [e.reason.split(":")[0] for e in w1.state.evidence()] == [
            "a different root at size 4"]
        other.dispose()
        witnessing.close()


def test_witness_settings() -> None:
    key = str(WitnessSigner.generate("w.example/1").verifier())
    key2 = str(WitnessSigner.generate("w.example/2").verifier())
    pairs = parse_witnesses(f"{key} http://a.example/ ;\n{key2} https://b.example/w\n")
    assert [(str(p.key), p.url) for p in pairs] == [(key, "http://a.example"),
                                                    (key2, "https://b.example/w")]
    assert Settings(witnesses=f"{key} http://a.example", witness_quorum=1).witness_quorum == 1
    for bad in [f"{key}", f"{key} ftp://a.example", "w+00000000+AAAA http://a.example",
                f"{key} http://a.example;{key} http://b.example",
                str(LOG.verifier()) + " http://a.example"]:
        with pytest.raises(ValidationError):
            Settings(witnesses=bad)
    with pytest.raises(ValidationError):
        Settings(witnesses=f"{key} http://a.example", witness_quorum=2)
    assert isinstance(pairs[0].key, WitnessKey)
