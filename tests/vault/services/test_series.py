"""Series (ARCHITECTURE §8): batches appended, read by each grant from where it left off,
each batch exactly once, oldest first; the derived answer over the last day's readings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.ledgerview import full_entries
from support.vaultworld import JWK, Clock, add_passkey

from vault.domain.errors import InvalidValue
from vault.domain.grants import Access
from vault.services import access, citizens, grants, records, registry, series
from vault.services.context import VaultContext, unit_of_work
from vault.storage.database import read_only

OBS = "health.observations"


def gp(ctx: VaultContext) -> str:
    return registry.register_service(ctx, registry.Registration(
        name="Riverside Health Centre", description="Your GP practice",
        purposes=["health_monitoring"], categories=[OBS],
        derived=["observations_of_concern", "observations_of_concern:heart_rate",
                 "observations_of_concern:oxygen_saturation"],
        jwk=JWK, redirect_uris=["https://gp.example.nhs.uk/cb"],
        privacy_notice_url="https://gp.example.nhs.uk/privacy", max_days=180))


def grant(ctx: VaultContext, service_id: str, citizen_id: str, *,
          categories: list[str] | None = None, derived: list[str] | None = None) -> str:
    g = grants.request_grant(
        ctx, service_id=service_id, citizen_id=citizen_id, purpose="health_monitoring",
        categories=[OBS] if categories is None else categories, derived=derived or [],
        access=Access("periodic", max_reads=100_000), data_life="P30D",
        justification="To keep an eye on your heart.", duration=timedelta(days=90))
    device = add_passkey(ctx, citizen_id)
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    return g.id


def reading(kind: str = "heart_rate", value: int = 70, unit: str = "bpm",
            at: str = "2026-11-22T08:00:00Z") -> dict[str, Any]:
    return {"kind": kind, "value": value, "unit": unit, "at": at}


def read(ctx: VaultContext, service_id: str, grant_id: str) -> access.Release:
    return access.read_under_grant(ctx, service_id=service_id, grant_id=grant_id)


def versions(release: access.Release) -> list[int]:
    found = release.data.get(OBS)
    return [] if found is None else [b["version"] for b in found["batches"]]


def entries(ctx: VaultContext) -> list[dict[str, Any]]:
    with read_only(ctx.engine).begin() as conn:
        return full_entries(conn)


def test_a_grant_reads_the_batches_since_its_last_read_oldest_first(ctx: VaultContext) -> None:
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gid = grant(ctx, service, citizen)
    assert OBS not in read(ctx, service, gid).data  # nothing yet: nothing released
    first = series.append_own(ctx, citizen, OBS, [reading(value=70), reading(value=71)])
    second = series.append_own(ctx, citizen, OBS, [reading(value=72)])
    got = read(ctx, service, gid)
    assert got.data[OBS] == {"next": False, "batches": [
        {"version": first, "items": [reading(value=70), reading(value=71)]},
        {"version": second, "items": [reading(value=72)]}]}
    log = entries(ctx)
    assert log[got.ledger_index]["body"]["categories"] == [OBS]
    written = [e["body"] for e in log if e["kind"] == "record.written"]
    assert [w["items"] for w in written] == [2, 1]  # the entry counts, never shows, items
    assert "70" not in orjson.dumps(written).decode()
    # Read again: nothing new, nothing released; a new batch comes alone.
    again = read(ctx, service, gid)
    assert OBS not in again.data
    assert log[-1]["kind"] == "data.accessed"
    assert entries(ctx)[again.ledger_index]["body"]["categories"] == []
    third = series.append_own(ctx, citizen, OBS, [reading(value=73)])
    assert versions(read(ctx, service, gid)) == [third]


def test_a_read_releases_at_most_a_page_and_says_more_wait(
        ctx: VaultContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series, "READ_BATCHES", 2)
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gid = grant(ctx, service, citizen)
    made = [series.append_own(ctx, citizen, OBS, [reading(value=60 + i)]) for i in range(5)]
    pages = [read(ctx, service, gid).data[OBS] for _ in range(3)]
    assert [[b["version"] for b in p["batches"]] for p in pages] == [made[:2], made[2:4],
                                                                     made[4:]]
    assert [p["next"] for p in pages] == [True, True, False]


def test_each_grant_has_its_own_cursor(ctx: VaultContext) -> None:
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    one, two = grant(ctx, service, citizen), grant(ctx, service, citizen)
    v1 = series.append_own(ctx, citizen, OBS, [reading()])
    assert versions(read(ctx, service, one)) == [v1]
    v2 = series.append_own(ctx, citizen, OBS, [reading(value=99)])
    assert versions(read(ctx, service, two)) == [v1, v2]  # the other's read moved nothing
    assert versions(read(ctx, service, one)) == [v2]
    # Another citizen's series is another series: their batches never show here.
    other = citizens.enrol_citizen(ctx).id
    series.append_own(ctx, other, OBS, [reading()])
    assert versions(read(ctx, service, one)) == []


def test_two_reads_of_one_grant_in_one_batch_each_get_their_own_batches(
        ctx: VaultContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series, "READ_BATCHES", 1)
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gid = grant(ctx, service, citizen)
    made = [series.append_own(ctx, citizen, OBS, [reading(value=60 + i)]) for i in range(3)]
    ask = access.ReadAsk(service, gid)
    with unit_of_work(ctx) as work:
        outcomes = access.read_batch(ctx, work, [ask, ask])
    assert [versions(o) for o in outcomes if isinstance(o, access.Release)] == [
        made[:1], made[1:2]]
    assert versions(read(ctx, service, gid)) == made[2:]


@pytest.mark.parametrize(("items", "why"), [
    ([], "1 to 1000 items"),
    ([reading()] * 1001, "1 to 1000 items"),
    ([reading(), {**reading(), "value": 72.5}], "[1].value must be a whole number"),
    ([reading(), {**reading(), "unit": "b\x07m"}], "[1].unit must not contain control"),
    ([{**reading(), "extra": 1}], "[0] has a field that is not allowed"),
    ([reading(at="2026-11-22T09:11:00Z")], "[0].at is in the future"),
])
def test_a_bad_batch_writes_nothing(ctx: VaultContext, items: list[Any], why: str) -> None:
    citizen = citizens.enrol_citizen(ctx).id
    before = len(entries(ctx))
    with pytest.raises(InvalidValue, match=why.replace("[", r"\[").replace("]", r"\]")):
        series.append_own(ctx, citizen, OBS, items)
    assert len(entries(ctx)) == before
    # Up to the slack for a device's clock, and exactly 1,000 items, are fine.
    series.append_own(ctx, citizen, OBS, [reading(at="2026-11-22T09:10:00Z")] * 1000)


# --- observations_of_concern: the bands and the last 24 hours ----------------------------


def concern(ctx: VaultContext, clock: Clock, batches: list[list[dict[str, Any]]]
            ) -> dict[str, Any]:
    """The answers after writing each batch an hour apart (the clock then stays)."""
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gid = grant(ctx, service, citizen, categories=[],
                derived=["observations_of_concern", "observations_of_concern:heart_rate",
                         "observations_of_concern:oxygen_saturation"])
    for items in batches:
        series.append_own(ctx, citizen, OBS, items)
        clock.advance(hours=1)
    got = read(ctx, service, gid)
    assert got.data == {}  # the readings themselves are never released
    return {k.removeprefix("observations_of_concern"): v for k, v in got.derived.items()}


def test_concern_is_unknown_without_readings_in_the_last_day(ctx: VaultContext,
                                                             clock: Clock) -> None:
    assert concern(ctx, clock, []) == {"": None, ":heart_rate": None,
                                       ":oxygen_saturation": None}
    # Readings the bands do not judge (steps; a heart rate in another unit) are no answer.
    assert concern(ctx, clock, [[reading("steps", 20000, "steps"),
                                 reading(unit="beats per hour", value=4000)]])[""] is None


def test_concern_over_the_bands(ctx: VaultContext, clock: Clock) -> None:
    now = "2026-11-22T08:30:00Z"
    assert concern(ctx, clock, [[reading(value=40, at=now), reading(value=130, at=now),
                                 reading("oxygen_saturation", 92, "%", now)]]) == {
        "": False, ":heart_rate": False, ":oxygen_saturation": False}  # the ends are in
    assert concern(ctx, clock, [[reading(value=131, at=now)],
                                [reading("oxygen_saturation", 95, "%", now)]]) == {
        "": True, ":heart_rate": True, ":oxygen_saturation": False}
    assert concern(ctx, clock, [[reading("oxygen_saturation", 91, "%", now),
                                 reading(value=39, unit="/min", at=now)]]) == {
        "": True, ":heart_rate": True, ":oxygen_saturation": True}


def test_concern_looks_at_the_last_24_hours_by_when_each_reading_was_taken(
        ctx: VaultContext, clock: Clock) -> None:
    # Written now, but taken 25 hours ago: outside the window, whenever it was sent.
    assert concern(ctx, clock, [[reading(value=200, at="2026-11-21T08:00:00Z"),
                                 reading(value=70, at="2026-11-22T08:00:00Z")]])[""] is False
    # A reading out of band 23 hours ago counts; a day later it no longer does.
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gid = grant(ctx, service, citizen, categories=[], derived=["observations_of_concern"])
    assert clock.now.isoformat() == "2026-11-22T10:00:00+00:00"
    series.append_own(ctx, citizen, OBS, [reading(value=200, at="2026-11-22T10:00:00Z")])
    series.append_own(ctx, citizen, OBS, [reading(value=70, at="2026-11-22T10:00:00Z")])
    clock.advance(hours=23, minutes=59)
    assert read(ctx, service, gid).derived == {"observations_of_concern": True}
    clock.advance(minutes=2)
    series.append_own(ctx, citizen, OBS, [reading(value=70, at="2026-11-23T09:00:00Z")])
    assert read(ctx, service, gid).derived == {"observations_of_concern": False}


# --- the series rules, whatever the interleaving -----------------------------------------

_OPS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(0, 1), st.integers(1, 3)),
    st.tuples(st.just("read"), st.integers(0, 1), st.integers(1, 2)),
), max_size=14)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS, page=st.integers(1, 3))
def test_every_batch_reaches_every_grant_once_in_order(
        sqlite_ctx: VaultContext, monkeypatch: pytest.MonkeyPatch, ops: list[Any],
        page: int) -> None:
    """Appends (by the citizen, of 1 to 3 items) and reads (alone, or two of a grant in
    one transaction) in any order: each grant, reading until nothing more, has seen
    every batch exactly once, oldest first, whole."""
    ctx = sqlite_ctx
    monkeypatch.setattr(series, "READ_BATCHES", page)
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gids = [grant(ctx, service, citizen), grant(ctx, service, citizen)]
    written: list[tuple[int, list[dict[str, Any]]]] = []
    seen: list[list[tuple[int, list[dict[str, Any]]]]] = [[], []]

    def take(who: int, release: access.Release) -> None:
        found = release.data.get(OBS)
        if found is not None:
            seen[who] += [(b["version"], b["items"]) for b in found["batches"]]

    for op, who, n in ops:
        if op == "append":
            items = [reading(value=len(written) * 10 + i) for i in range(n)]
            written.append((series.append_own(ctx, citizen, OBS, items), items))
        else:
            ask = access.ReadAsk(service, gids[who])
            with unit_of_work(ctx) as work:
                for outcome in access.read_batch(ctx, work, [ask] * n):
                    assert isinstance(outcome, access.Release)
                    take(who, outcome)
    for who, gid in enumerate(gids):
        while True:
            got = read(ctx, service, gid)
            take(who, got)
            if not got.data.get(OBS, {}).get("next"):
                break
        assert seen[who] == written


# --- versions never reused; every way in is the one append -------------------------------

_MIXED_OPS = st.lists(st.one_of(
    st.tuples(st.just("own"), st.integers(0, 1), st.integers(1, 3)),
    st.tuples(st.just("issued"), st.integers(0, 1), st.integers(1, 2)),
    st.tuples(st.just("delete"), st.integers(0, 1), st.integers(1, 1)),
    st.tuples(st.just("read"), st.integers(0, 1), st.integers(1, 2)),
), max_size=16)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_MIXED_OPS, page=st.integers(1, 3))
# The case that went wrong: read past the citizen's newest batch, delete it, append again.
@example(ops=[("own", 0, 1), ("read", 0, 1), ("delete", 0, 1), ("own", 0, 1)], page=1)
def test_deleting_own_batches_never_makes_a_grant_skip_later_ones(
        sqlite_ctx: VaultContext, monkeypatch: pytest.MonkeyPatch, ops: list[Any],
        page: int) -> None:
    """Appends (the citizen's own, and the operator's for an issuer), deletions of the
    citizen's own batches and reads, in any order: each grant, reading until nothing
    more, has been released every batch still stored, each batch it was released exactly
    once, oldest first, whole. (Before: deleting the newest batches let their versions be
    taken again, and a grant whose cursor had passed them never saw those batches.)"""
    ctx = sqlite_ctx
    monkeypatch.setattr(series, "READ_BATCHES", page)
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gids = [grant(ctx, service, citizen), grant(ctx, service, citizen)]
    made: list[tuple[int, list[dict[str, Any]]]] = []  # every batch ever written
    stored: dict[int, tuple[str, list[dict[str, Any]]]] = {}  # version -> source, items
    seen: list[list[tuple[int, list[dict[str, Any]]]]] = [[], []]

    def take(who: int, release: access.Release) -> None:
        found = release.data.get(OBS)
        if found is not None:
            seen[who] += [(b["version"], b["items"]) for b in found["batches"]]

    for op, who, n in ops:
        items = [reading(value=len(made) * 10 + i) for i in range(n)]
        if op in ("own", "issued"):
            source = "citizen" if op == "own" else service
            version = records.write_record(ctx, citizen, OBS, items, source=source).version
            assert all(version > v for v in stored)
            made.append((version, items))
            stored[version] = source, items
        elif op == "delete" and any(s == "citizen" for s, _ in stored.values()):
            records.delete_records(ctx, citizen, OBS)
            stored = {v: b for v, b in stored.items() if b[0] != "citizen"}
        elif op == "read":
            with unit_of_work(ctx) as work:
                for outcome in access.read_batch(ctx, work, [access.ReadAsk(service,
                                                                            gids[who])] * n):
                    assert isinstance(outcome, access.Release)
                    take(who, outcome)
    for who, gid in enumerate(gids):
        while True:
            got = read(ctx, service, gid)
            take(who, got)
            if not got.data.get(OBS, {}).get("next"):
                break
        released = [v for v, _ in seen[who]]
        assert released == sorted(set(released))  # each once, oldest first
        assert all(batch in made for batch in seen[who])
        assert all((v, items) in seen[who] for v, (_, items) in stored.items())


def test_a_series_written_as_a_record_is_a_batch(ctx: VaultContext) -> None:
    """`records.write_record` (the operator's `vault citizen write`, the demo) of a series
    appends a batch through the series' own append: its checks, its entry."""
    service = gp(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    gid = grant(ctx, service, citizen)
    view = records.write_record(ctx, citizen, OBS, [reading(), reading(value=71)],
                                source=service)
    assert (view.version, view.value, view.source) == (1, [reading(), reading(value=71)],
                                                       service)
    written = [e["body"] for e in entries(ctx) if e["kind"] == "record.written"]
    assert written[-1]["items"] == 2 and written[-1]["source"] == service
    assert read(ctx, service, gid).data[OBS]["batches"] == [
        {"version": 1, "items": [reading(), reading(value=71)]}]
    before = len(entries(ctx))
    with pytest.raises(InvalidValue, match=r"\[0\]\.at is in the future"):
        records.write_record(ctx, citizen, OBS, [reading(at="2026-11-23T08:00:00Z")])
    with pytest.raises(InvalidValue, match="is a series: write a batch of readings as a list"):
        records.write_record(ctx, citizen, OBS, reading())
    assert len(entries(ctx)) == before
