"""The challenge stores, in memory and in the database (SQLite and PostgreSQL): each
ceremony is handed back once, for its own purpose, before it expires, and of several
workers answering one ceremony at the same moment exactly one gets it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from vault.storage.database import make_engine
from vault.storage.schema import migrate
from vault.storage.tables import CeremonyRow
from wallet.errors import PasskeyRejected
from wallet.passkeys.challenges import (
    Ceremony,
    ChallengeStore,
    MemoryChallengeStore,
    Purpose,
    SqlChallengeStore,
    new_challenge,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)

MakeStore = Callable[..., ChallengeStore]


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql",
                                                         marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Stores of one kind (`ttl=` as the constructor takes it); SQL stores of one test
    share one database, as the workers of one vault do."""
    if request.param == "memory":
        yield lambda **kw: MemoryChallengeStore(**kw)
        return
    url = (f"sqlite:///{tmp_path / 'vault.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_database_url")))
    engine = _engine(url)
    yield lambda **kw: SqlChallengeStore(engine, **kw)
    engine.dispose()


@pytest.fixture
def store(make_store: MakeStore) -> ChallengeStore:
    return make_store(ttl=TTL)


def _refused(reason: str, call: Callable[[], object]) -> PasskeyRejected:
    with pytest.raises(PasskeyRejected) as exc:
        call()
    assert exc.value.reason == reason, (exc.value.reason, str(exc.value))
    assert "start again" in str(exc.value)  # the message says what to do
    return exc.value


def test_a_challenge_is_taken_once(store: ChallengeStore) -> None:
    challenge = new_challenge()
    ceremony = store.put(challenge, purpose="sign_in", now=NOW)
    assert store.take(ceremony, purpose="sign_in", now=NOW) == challenge
    _refused("challenge_unknown", lambda: store.take(ceremony, purpose="sign_in", now=NOW))
    _refused("challenge_unknown", lambda: store.claim(ceremony, purpose="sign_in", now=NOW))


def test_an_unknown_ceremony_is_refused(store: ChallengeStore) -> None:
    store.put(new_challenge(), purpose="sign_in", now=NOW)
    for ceremony in ("made-up", "", "x" * 41, "x" * 1000):
        _refused("challenge_unknown", partial(store.take, ceremony, purpose="sign_in", now=NOW))


def test_each_ceremony_has_its_own_id(store: ChallengeStore) -> None:
    challenge = new_challenge()
    first = store.put(challenge, purpose="sign_in", now=NOW)
    second = store.put(challenge, purpose="sign_in", now=NOW)
    assert first != second and len(first) >= 20  # random, not guessable
    assert store.take(second, purpose="sign_in", now=NOW) == challenge
    assert store.take(first, purpose="sign_in", now=NOW) == challenge


def test_claim_returns_the_citizen_the_ceremony_is_for(store: ChallengeStore) -> None:
    challenge = new_challenge()
    for_citizen = store.put(challenge, purpose="sign_up", now=NOW, citizen_id="cit_abc")
    for_nobody = store.put(challenge, purpose="sign_in", now=NOW)
    assert store.claim(for_citizen, purpose="sign_up", now=NOW) == Ceremony(challenge,
                                                                            "cit_abc")
    assert store.claim(for_nobody, purpose="sign_in", now=NOW) == Ceremony(challenge, None)


#: (issued for, answered as): never accepted, and the ceremony is spent.
CROSSED: list[tuple[Purpose, Purpose]] = [
    ("register", "sign_in"), ("sign_in", "register"), ("sign_up", "sign_in"),
    ("sign_in", "sign_up"), ("confirm", "register"), ("sign_up", "register"),
]


def test_a_ceremony_for_another_purpose_is_refused_and_spent(store: ChallengeStore) -> None:
    for issued, asked in CROSSED:
        ceremony = store.put(new_challenge(), purpose=issued, now=NOW)
        _refused("challenge_unknown", lambda: store.take(ceremony, purpose=asked, now=NOW))
        # Spent by the failed try: nobody can probe purposes one after another.
        _refused("challenge_unknown", lambda: store.take(ceremony, purpose=issued, now=NOW))


def test_a_ceremony_expires(store: ChallengeStore) -> None:
    early, late = new_challenge(), new_challenge()
    kept = store.put(early, purpose="sign_in", now=NOW)
    gone = store.put(late, purpose="sign_in", now=NOW)
    almost = NOW + TTL - timedelta(microseconds=1)
    assert store.take(kept, purpose="sign_in", now=almost) == early
    _refused("challenge_expired", lambda: store.take(gone, purpose="sign_in", now=NOW + TTL))
    # And it does not come back.
    _refused("challenge_unknown", lambda: store.take(gone, purpose="sign_in", now=NOW))


def test_the_default_lifetime_is_five_minutes(make_store: MakeStore) -> None:
    store = make_store()
    kept = store.put(new_challenge(), purpose="sign_in", now=NOW)
    gone = store.put(new_challenge(), purpose="sign_in", now=NOW)
    store.take(kept, purpose="sign_in", now=NOW + timedelta(minutes=4, seconds=59))
    _refused("challenge_expired",
             lambda: store.take(gone, purpose="sign_in", now=NOW + timedelta(minutes=5)))


def test_short_challenges_and_bad_lifetimes_are_refused(make_store: MakeStore) -> None:
    with pytest.raises(ValueError, match="16"):
        make_store().put(b"x" * 15, purpose="sign_in", now=NOW)
    for ttl in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(ValueError, match="ttl"):
            make_store(ttl=ttl)


def test_one_worker_finishes_what_another_started(make_store: MakeStore) -> None:
    """Two SQL stores over one database are two workers of one vault (the memory store
    is one process's, so there it is the same store)."""
    first = make_store(ttl=TTL)
    second = first if isinstance(first, MemoryChallengeStore) else make_store(ttl=TTL)
    challenge = new_challenge()
    ceremony = first.put(challenge, purpose="register", now=NOW, citizen_id="cit_1")
    assert second.claim(ceremony, purpose="register", now=NOW) == Ceremony(challenge, "cit_1")
    _refused("challenge_unknown", lambda: first.take(ceremony, purpose="register", now=NOW))


def test_expired_ceremonies_are_cleared_away(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'vault.db'}")
    store = SqlChallengeStore(engine, ttl=TTL)
    for _ in range(3):
        store.put(new_challenge(), purpose="sign_in", now=NOW)

    def pending() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(CeremonyRow)).scalar_one())

    assert pending() == 3
    store.put(new_challenge(), purpose="sign_in", now=NOW + TTL)
    assert pending() == 1  # the table does not grow with abandoned ceremonies
    engine.dispose()


def _race(stores: list[ChallengeStore], ceremony: str
          ) -> tuple[list[bytes], list[str], list[BaseException]]:
    """One thread per store claims `ceremony` at the same moment:
    (challenges won, refusal reasons, any other error)."""
    start = threading.Barrier(len(stores))
    won: list[bytes] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim(store: ChallengeStore) -> None:
        start.wait()
        try:
            got = store.take(ceremony, purpose="sign_in", now=NOW)
        except PasskeyRejected as exc:
            with lock:
                refused.append(exc.reason)
        except BaseException as exc:  # a database error must fail the test, not hide
            with lock:
                errors.append(exc)
        else:
            with lock:
                won.append(got)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return won, refused, errors


def test_a_ceremony_claimed_by_many_workers_at_once_is_won_once(database_url: str) -> None:
    engine = _engine(database_url)
    try:
        for round_ in range(5):
            challenge = new_challenge()
            ceremony = SqlChallengeStore(engine).put(challenge, purpose="sign_in", now=NOW)
            # Each thread with a store of its own: a worker of its own, one database.
            workers: list[ChallengeStore] = [SqlChallengeStore(engine) for _ in range(8)]
            won, refused, errors = _race(workers, ceremony)
            assert not errors, errors
            assert won == [challenge], f"round {round_}: {len(won)} winners"
            assert refused == ["challenge_unknown"] * 7
    finally:
        engine.dispose()


def test_the_memory_store_is_won_once_too() -> None:
    store = MemoryChallengeStore(ttl=TTL)
    challenge = new_challenge()
    won, refused, errors = _race([store] * 8, store.put(challenge, purpose="sign_in", now=NOW))
    assert not errors
    assert won == [challenge]
    assert refused == ["challenge_unknown"] * 7
