"""The public transparency report: suppression, the counts, the JSON and the page.

The story (written through the vault's own services with a hand-moved clock, over
October and November 2026): three services (one suspended), grants in several states,
reads in both months, one at 23:59:59 on 31 October and one at midnight on 1 November.
Every expected figure below is worked out by hand from it, threshold 10.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from support.ledgeratoms import ledger_atoms
from support.vaultworld import JWK, Clock, add_passkey, ask, world

from ledger.sqlstore import SqlLedger
from vault.api.transparency_routes import ReportCache, figure_text, month_label
from vault.app import create_app
from vault.config import Settings
from vault.crypto import load_keyring
from vault.domain.grants import Access
from vault.services import access, citizens, grants, registry
from vault.services import transparency as tr
from vault.services.checkpoints import publish_checkpoint
from vault.services.context import VaultContext
from vault.services.transparency_counts import count_ledger, counted
from vault.storage.database import make_engine, read_only
from vault.storage.schema import migrate
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty

ORIGIN = "http://localhost:8000"
OCT = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
NOV = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
REPORT_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
#: What the citizen told the vault (vaultworld's Ada): none of it may be published.
PERSONAL = ("Lovelace", "SW1Y 4JH", "1950-12-10", "St James", "12 St")


# -- the story ------------------------------------------------------------------------------


@dataclasses.dataclass
class Story:
    badge: str
    meals: str
    parking: str
    #: Ids that must never be published: the citizen, their pseudonym, grants.
    secrets: list[str]


def _approve(ctx: VaultContext, device: Any, citizen_id: str, g: grants.GrantView) -> None:
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))


def tell_story(ctx: VaultContext, clock: Clock) -> Story:
    clock.now = OCT
    w = world(ctx)  # the Blue Badge team and Ada, with her data
    meals = registry.register_service(ctx, registry.Registration(
        name="Free school meals check", description="Checks meals for children at school",
        purposes=["service_provision"], categories=["identity.name"], jwk=JWK,
        redirect_uris=["https://meals.example.gov/cb"],
        privacy_notice_url="https://meals.example.gov/privacy",
        dpia_url="https://meals.example.gov/dpia", max_days=30))
    parking = registry.register_service(ctx, registry.Registration(
        name="Parking permits <old>", description="Issued residents' parking permits",
        purposes=["identity_verification"], categories=["address.home"], jwk=JWK,
        redirect_uris=["https://parking.example.gov/cb"],
        privacy_notice_url="https://parking.example.gov/privacy"))
    registry.suspend_service(ctx, parking)
    device = add_passkey(ctx, w.citizen_id)
    many = Access("periodic", max_reads=100)
    ids = [w.citizen_id, w.subject]

    # October: two approved grants (one reading the address, one only an answer), ten
    # declined; 12 + 3 reads, the last one a second before November.
    g1 = ask(ctx, w, access=many, duration=timedelta(days=90))
    g2 = ask(ctx, w, access=many, categories=[], duration=timedelta(days=90))
    for g in (g1, g2):
        _approve(ctx, device, w.citizen_id, g)
    for _ in range(10):
        ids.append(grants.deny_grant(ctx, ask(ctx, w).id, citizen_id=w.citizen_id).id)
    for _ in range(11):
        clock.advance(minutes=5)
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=g1.id)
    clock.now = NOV - timedelta(seconds=1)
    access.read_under_grant(ctx, service_id=w.service_id, grant_id=g1.id)
    for _ in range(3):
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=g2.id)

    # November: 11 more reads of the address (the first at midnight), a meals grant read
    # twice, one request waiting and one the service withdrew.
    clock.now = NOV
    for _ in range(11):
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=g1.id)
        clock.advance(minutes=5)
    g3 = grants.request_grant(
        ctx, service_id=meals, citizen_id=w.citizen_id, purpose="service_provision",
        categories=["identity.name"], access=Access("periodic", max_reads=5),
        data_life="P1D", justification="Free school meals", duration=timedelta(days=30))
    _approve(ctx, device, w.citizen_id, g3)
    for _ in range(2):
        access.read_under_grant(ctx, service_id=meals, grant_id=g3.id)
    g4 = ask(ctx, w)
    g5 = grants.cancel_grant(ctx, ask(ctx, w).id, service_id=w.service_id)
    ids += [g.id for g in (g1, g2, g3, g4, g5)]
    return Story(w.service_id, meals, parking, ids)


def c(n: int) -> dict[str, Any]:
    return {"value": n, "suppressed": False, "at_least": n, "at_most": n}


def h(low: int, high: int) -> dict[str, Any]:
    return {"value": None, "suppressed": True, "at_least": low, "at_most": high}


SMALL = h(1, 9)
STATES = ("requested", "approved", "denied", "cancelled", "lapsed", "paused", "revoked",
          "expired", "exhausted")


def expected(s: Story) -> dict[str, Any]:
    """The published figures, by hand. Atoms: October reads (12 with the address, 3 with
    only the answer), November reads (11 Blue Badge, 2 meals); grants (Oct: 2 approved,
    10 denied; Nov: 1 approved, 1 requested, 1 cancelled)."""
    none = {k: c(0) for k in STATES}
    return {
        "grants": {
            "total": h(10 + 4, 10 + 4 * 9),
            "by_state": {**none, "approved": h(2, 18), "denied": c(10),
                         "requested": SMALL, "cancelled": SMALL},
            "months": [
                {"month": "2026-10", "total": h(11, 19),
                 "by_state": {**none, "approved": SMALL, "denied": c(10)}},
                {"month": "2026-11", "total": h(3, 27),
                 "by_state": {**none, "approved": SMALL, "requested": SMALL,
                              "cancelled": SMALL}},
            ],
        },
        "accesses": {
            "total": h(23 + 2, 23 + 18),
            "by_service": {s.badge: h(24, 32), s.meals: SMALL, s.parking: c(0)},
            "by_purpose": {"eligibility_assessment": h(24, 32), "identity_verification": c(0),
                           "service_provision": SMALL},
            "by_category": {"address.home": c(23), "identity.name": SMALL},
            "by_derived": {"age_over_65": h(24, 32)},
            "months": [
                {"month": "2026-10", "total": h(13, 21),
                 "by_service": {s.badge: h(13, 21), s.meals: c(0), s.parking: c(0)},
                 "by_purpose": {"eligibility_assessment": h(13, 21),
                                "identity_verification": c(0), "service_provision": c(0)},
                 "by_category": {"address.home": c(12), "identity.name": c(0)},
                 "by_derived": {"age_over_65": h(13, 21)}},
                {"month": "2026-11", "total": h(12, 20),
                 "by_service": {s.badge: c(11), s.meals: SMALL, s.parking: c(0)},
                 "by_purpose": {"eligibility_assessment": c(11), "identity_verification": c(0),
                                "service_provision": SMALL},
                 "by_category": {"address.home": c(11), "identity.name": SMALL},
                 "by_derived": {"age_over_65": c(11)}},
            ],
        },
    }


def _plain(f: tr.Figure) -> dict[str, Any]:
    return {"value": f.value, "suppressed": f.suppressed, "at_least": f.at_least,
            "at_most": f.at_most}


def _plain_all(figures: dict[str, tr.Figure]) -> dict[str, Any]:
    return {k: _plain(f) for k, f in figures.items()}


# -- the report from the database, on SQLite and PostgreSQL ------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[VaultContext]:
    engine = make_engine(database_url)
    migrate(engine)
    keyring = load_keyring(tmp_path / "keys", master_key=None, production=False)
    yield VaultContext(engine=engine, keyring=keyring, clock=clock,
                       approvals=PasskeyApprovalVerifier(RelyingParty.from_public_url(ORIGIN)))
    engine.dispose()


def test_report_counts_by_hand(ctx: VaultContext, clock: Clock) -> None:
    story = tell_story(ctx, clock)
    size = count_ledger(ctx, to_head=True)
    report = tr.transparency_report(ctx, now=REPORT_AT)
    assert report.ledger_size == size > 0
    want = expected(story)
    assert _plain(report.grants.total) == want["grants"]["total"]
    assert _plain_all(report.grants.by_state) == want["grants"]["by_state"]
    assert [{"month": m.month, "total": _plain(m.total), "by_state": _plain_all(m.by_state)}
            for m in report.grants.months] == want["grants"]["months"]
    a = report.accesses
    assert _plain(a.total) == want["accesses"]["total"]
    for dim in ("by_service", "by_purpose", "by_category", "by_derived"):
        assert _plain_all(getattr(a, dim)) == want["accesses"][dim], dim
        for got, month in zip(a.months, want["accesses"]["months"], strict=True):
            assert got.month == month["month"]
            assert _plain(got.total) == month["total"]
            assert _plain_all(getattr(got, dim)) == month[dim], (month["month"], dim)
    assert [s.name for s in report.services] == [
        "Blue Badge team", "Free school meals check", "Parking permits <old>"]
    assert [s.active for s in report.services] == [True, True, False]
    assert report.checkpoint is None  # no publisher ran: the page says so


def test_months_are_the_utc_months_of_the_entries(ctx: VaultContext, clock: Clock) -> None:
    """A read at 23:59:59.999 on 31 October is October's, one at midnight November's:
    entry times are UTC, whatever any session's time zone."""
    tell_story(ctx, clock)
    count_ledger(ctx, to_head=True)
    with read_only(ctx.engine).begin() as conn:
        found = counted(conn)
    by_month: dict[str, int] = {}
    for atom, n in found.accesses.items():
        by_month[atom.month] = by_month.get(atom.month, 0) + n
    assert by_month == {"2026-10": 15, "2026-11": 13}
    assert found.grants == {tr.GrantAtom("2026-10", "approved"): 2,
                            tr.GrantAtom("2026-10", "denied"): 10,
                            tr.GrantAtom("2026-11", "approved"): 1,
                            tr.GrantAtom("2026-11", "requested"): 1,
                            tr.GrantAtom("2026-11", "cancelled"): 1}


# -- the app: JSON, schema, page ----------------------------------------------------------------


@dataclasses.dataclass
class Site:
    client: TestClient
    story: Story
    json: dict[str, Any]
    html: str
    ledger_size: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # No sweeps: the sweeper's real clock would expire the story's (past) grants.
    settings = Settings(data_dir=tmp_path_factory.mktemp("vault"), ledger_public=True,
                        checkpoint_interval=0.05, sweep_interval=3600)
    app = create_app(settings)
    with TestClient(app) as client:
        state = app.state.vault
        clock = Clock()
        story = tell_story(dataclasses.replace(state.ctx, clock=clock), clock)
        publish_checkpoint(state.engine, state.signer)  # cover the whole story now
        count_ledger(state.ctx)  # and count it now (the counter would, within 0.2 s)
        body = client.get("/transparency.json")
        page = client.get("/transparency")
        assert body.status_code == page.status_code == 200
        with read_only(state.engine).begin() as conn:
            size = SqlLedger(conn).size()
        yield Site(client, story, body.json(), page.text, size)


def test_json_counts_by_hand(site: Site) -> None:
    want = expected(site.story)
    got = site.json
    for part in ("grants", "accesses"):
        # Months run on to the current one: those after the story are all zero.
        months, extra = got[part]["months"][:2], got[part]["months"][2:]
        assert {**got[part], "months": months} == want[part]
        assert all(m["total"] == c(0) for m in extra)
    assert got["suppression"]["threshold"] == 10
    assert "1 to 9" in got["suppression"]["rule"]
    assert "Office for National Statistics" in got["suppression"]["why"]


def test_json_lists_services_with_their_catalog_texts(site: Site) -> None:
    services = {s["name"]: s for s in site.json["services"]}
    badge = services["Blue Badge team"]
    assert badge["purposes"] == [{
        "code": "eligibility_assessment",
        "text": "To check whether you can get a service or benefit.",
        "lawful_basis": "public_task",
        "lawful_basis_text": "GDPR Article 6(1)(e): a task carried out in the public interest "
                             "or under official authority"}]
    assert [c["code"] for c in badge["categories"]] == ["address.home", "identity.name"]
    assert badge["derived"] == [{"code": "age_over_65", "label": "Whether you are 65 or over"}]
    assert (badge["max_days"], badge["max_duration"], badge["status"]) == (90, "90 days", "active")
    assert badge["registered_at"] == "2026-10-05T09:00:00Z"
    assert services["Free school meals check"]["dpia_url"] == "https://meals.example.gov/dpia"
    assert services["Parking permits <old>"]["status"] == "suspended"
    assert set(services["Blue Badge team"]) >= {"privacy_notice_url", "dpia_url"}
    # Nothing that is not the public's business: keys, redirect or webhook URLs.
    assert not {"jwk", "redirect_uris", "webhook_url"} & set(badge)


def test_json_gives_the_checkpoint_and_how_to_verify_it(site: Site) -> None:
    ledger = site.json["ledger"]
    key = site.client.get("/ledger/key").text.strip()
    assert ledger["verifier_key"] == key
    assert ledger["verify_command"] == f"vault-audit verify http://localhost:8000 --key {key}"
    assert ledger["watch_command"].startswith("vault-audit watch http://localhost:8000 --key ")
    cp = ledger["checkpoint"]
    assert cp is not None and cp["size"] == site.ledger_size
    origin, size, root = cp["note"].split("\n")[:3]
    assert (int(size), root) == (cp["size"], cp["root"])
    assert origin == key.split("+")[0]
    # The figures count the entries that checkpoint signs, and say so.
    assert site.json["ledger_size"] == site.ledger_size
    assert site.json["checkpoint"] == cp
    assert ledger["transparency_command"] == (
        f"vault-audit transparency http://localhost:8000 --key {key}")


def test_json_validates_against_its_openapi_schema(site: Site) -> None:
    doc = site.client.get("/openapi.json").json()
    answer = doc["paths"]["/transparency.json"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/TransparencyReport"
    Draft202012Validator({"$ref": ref, "components": doc["components"]}).validate(site.json)


def test_nothing_personal_is_published(site: Site) -> None:
    for published in (site.client.get("/transparency.json").text, site.html):
        for value in (*PERSONAL, *site.story.secrets):
            assert value not in published, value


def test_page_shows_every_service_and_the_suppression_rule(site: Site) -> None:
    page = site.html
    for name in ("Blue Badge team", "Free school meals check"):
        assert name in page
    assert "Parking permits &lt;old&gt;" in page and "<old>" not in page  # autoescaped
    assert "Suspended" in page
    assert 'href="https://meals.example.gov/dpia"' in page
    assert 'href="https://badges.example.gov/privacy"' in page
    assert "fewer than 10" in page and "Office for National Statistics" in page
    assert "13 to 21" in page  # October's reads: a range, never a small number
    assert site.json["ledger"]["verify_command"] in page
    assert "vault-audit watch" in page


def test_page_charts_are_svg_with_titles_and_tables(site: Site) -> None:
    page = site.html
    svgs = re.findall(r"<svg\b[^>]*>.*?</svg>", page, re.S)
    assert len(svgs) == 4
    for svg in svgs:
        assert 'role="img"' in svg
        chart = re.search(r'id="(chart-[a-z]+)"', svg)
        assert chart is not None
        assert f'<title id="{chart[1]}-title">' in svg and f'<desc id="{chart[1]}-desc">' in svg
    assert "Data accesses per month" in svgs[1]
    assert "Denied: 10;" in svgs[0]  # the description reads out every number
    assert 'stroke-dasharray' in svgs[1]  # October and November are both ranges
    # Each chart has its numbers in a table too.
    for table in ("table-grants", "table-months", "table-services", "table-purposes"):
        assert f'id="{table}"' in page
    assert 'class="num hidden-number">fewer than 10</td>' in page


def test_page_headers_run_no_script(site: Site) -> None:
    page = site.client.get("/transparency")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text and " style=" not in page.text
    css = site.client.get("/transparency.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "url(" not in css.text and "@import" not in css.text  # nothing from elsewhere


def test_report_is_cached_for_a_moment(site: Site) -> None:
    site.client.app.state.transparency = None  # type: ignore[attr-defined]
    first = site.client.get("/transparency.json").json()
    second = site.client.get("/transparency.json")
    assert second.json()["generated_at"] == first["generated_at"]
    assert second.headers["cache-control"] == "public, max-age=1"
    assert second.headers["access-control-allow-origin"] == "*"


def test_report_cache_computes_once_per_ttl() -> None:
    now = [0.0]
    calls = itertools.count(1)
    cache = ReportCache(lambda: next(calls), ttl=60, clock=lambda: now[0])
    assert cache.get() == cache.get() == 1
    now[0] = 59.9
    assert cache.get() == 1
    now[0] = 60.0
    assert cache.get() == cache.get() == 2


def test_report_cache_serves_the_last_report_while_one_is_computed() -> None:
    now = [0.0]
    started, release = threading.Event(), threading.Event()
    calls = itertools.count(1)

    def compute() -> int:
        n = next(calls)
        if n == 2:  # the refresh takes a while
            started.set()
            release.wait(5)
        return n

    cache = ReportCache(compute, ttl=60, clock=lambda: now[0])
    assert cache.get() == 1
    now[0] = 61.0
    results: list[int] = []
    refresher = threading.Thread(target=lambda: results.append(cache.get()))
    refresher.start()
    assert started.wait(5)
    assert cache.get() == 1  # nobody else waits for the refresh
    release.set()
    refresher.join(5)
    assert results == [2] and cache.get() == 2


# -- suppression, as a pure function -----------------------------------------------------------

# Atoms 0..14 with counts, each in some of the groups 0..6; thresholds from 2 to 12.
atom_counts = st.dictionaries(st.integers(0, 14), st.integers(0, 40), max_size=15)
memberships = st.dictionaries(st.integers(0, 14), st.frozensets(st.integers(0, 6), max_size=4))


def _truth(atoms: dict[int, int], members: dict[int, frozenset[int]]) -> dict[int, int]:
    truth: dict[int, int] = {}
    for atom, n in atoms.items():
        for g in members.get(atom, frozenset()):
            truth[g] = truth.get(g, 0) + n
    return truth


@settings(max_examples=100, deadline=None)
@given(atom_counts, memberships, st.integers(2, 12))
def test_no_published_count_is_small_and_ranges_hold_the_truth(
    atoms: dict[int, int], members: dict[int, frozenset[int]], threshold: int,
) -> None:
    published = tr.suppress(atoms, lambda a: members.get(a, ()), threshold=threshold)
    truth = _truth(atoms, members)
    for group, f in published.items():
        assert f.at_least <= truth[group] <= f.at_most
        if f.value is not None:
            assert f.value == truth[group] and (f.value == 0 or f.value >= threshold)
        else:
            assert f.at_least >= 1
    # A group missing from the answer is exactly zero.
    assert all(n == 0 for g, n in truth.items() if g not in published)


@settings(max_examples=100, deadline=None)
@given(atom_counts, memberships, st.integers(3, 12))
def test_no_hidden_count_can_be_recovered(
    atoms: dict[int, int], members: dict[int, frozenset[int]], threshold: int,
) -> None:
    """Any small atom could be any other small number and nothing published would
    change: so no combination of published figures pins it down, and every hidden
    figure has at least two true values consistent with what is published."""
    def publish(a: dict[int, int]) -> dict[int, tr.Figure]:
        return tr.suppress(a, lambda x: members.get(x, ()), threshold=threshold)

    published = publish(atoms)
    possible: dict[int, set[int]] = {g: set() for g, f in published.items() if f.suppressed}
    for atom, n in atoms.items():
        if 0 < n < threshold:
            for other in range(1, threshold):
                alternative = {**atoms, atom: other}
                assert publish(alternative) == published
                for g, total in _truth(alternative, members).items():
                    if g in possible:
                        possible[g].add(total)
    assert all(len(values) >= 2 for values in possible.values())


def _attack(published: dict[str, tr.Figure], cells: list[str], threshold: int,
            groups: dict[str, list[str]], publish: Any = tr.suppress) -> dict[str, set[int]]:
    """Everything an attacker can conclude about each hidden cell: try every small value
    for every hidden cell and keep the assignments that publish the same figures."""
    hidden = [x for x in cells if published[x].suppressed]
    shown = {x: published[x].value or 0 for x in cells if not published[x].suppressed}
    found: dict[str, set[int]] = {x: set() for x in hidden}
    for values in itertools.product(range(1, threshold), repeat=len(hidden)):
        atoms = {**shown, **dict(zip(hidden, values, strict=True))}
        again = publish(atoms, lambda x: groups[x], threshold=threshold)
        if all(again.get(k) == f for k, f in published.items()):
            for x, v in zip(hidden, values, strict=True):
                found[x].add(v)
    return found


def test_a_table_with_totals_and_a_second_table_cannot_be_differenced() -> None:
    """Service A reads for purposes p1 and p2, B only for p1; B's 5 reads are hidden.
    Published naively (every cell and total exact unless small), B = p1 + p2 - A. Here
    A, p1 and the total that include B's atom are ranges, and B could be 1 to 9."""
    atoms = {"A/p1": 100, "A/p2": 20, "B/p1": 5}
    groups = {"A/p1": ["A", "p1", "all", "A/p1"], "A/p2": ["A", "p2", "all", "A/p2"],
              "B/p1": ["B", "p1", "all", "B/p1"]}
    published = tr.suppress(atoms, lambda x: groups[x])
    assert published["A"] == tr.Figure.exact(120)
    assert published["p2"] == tr.Figure.exact(20)
    assert published["B"] == published["B/p1"] == tr.Figure(None, 1, 9)
    assert published["p1"] == tr.Figure(None, 101, 109)
    assert published["all"] == tr.Figure(None, 121, 129)
    assert _attack(published, list(atoms), 10, groups)["B/p1"] == set(range(1, 10))


def test_the_attack_does_find_what_naive_suppression_leaks() -> None:
    """The attack above is not toothless: against exact totals it recovers the cell."""
    def naive(atoms: dict[str, int], groups_of: Any, threshold: int = 10) -> dict[str, Any]:
        totals: dict[str, int] = {}
        for a, n in atoms.items():
            for g in groups_of(a):
                totals[g] = totals.get(g, 0) + n
        return {g: tr.Figure(None, 1, threshold - 1) if 0 < n < threshold
                else tr.Figure.exact(n) for g, n in totals.items()}

    atoms = {"A/p1": 100, "A/p2": 20, "B/p1": 5}
    groups = {"A/p1": ["A", "p1", "all", "A/p1"], "A/p2": ["A", "p2", "all", "A/p2"],
              "B/p1": ["B", "p1", "all", "B/p1"]}
    published = naive(atoms, lambda x: groups[x])
    assert _attack(published, list(atoms), 10, groups, publish=naive)["B/p1"] == {5}


def test_suppress_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="threshold"):
        tr.suppress({"a": 1}, lambda a: [a], threshold=1)
    with pytest.raises(ValueError, match="negative"):
        tr.suppress({"a": -1}, lambda a: [a])
    assert tr.suppress({"a": 0}, lambda a: [a]) == {}


# -- laying out the report -------------------------------------------------------------------


def test_months_between_crosses_years() -> None:
    assert tr.months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01",
                                                       "2027-02"]
    assert tr.months_between("2026-11", "2026-11") == ["2026-11"]
    assert tr.month_of(datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)) == "2026-10"


def test_build_report_fills_every_month_and_key_with_zero() -> None:
    atoms = {tr.AccessAtom("2026-10", "svc_x", "age_verification",
                           frozenset({"identity.date_of_birth"}), frozenset()): 12,
             tr.AccessAtom("2026-12", "svc_gone", "no_such_purpose", frozenset(),
                           frozenset({"age_over_18"})): 40}
    report = tr.build_report(services=[], grants={}, accesses=atoms, checkpoint=None,
                             now=datetime(2027, 1, 2, tzinfo=UTC))
    months = report.accesses.months
    assert [m.month for m in months] == ["2026-10", "2026-11", "2026-12", "2027-01"]
    assert months[1].total == tr.Figure.exact(0)
    assert months[0].by_service == {"svc_gone": tr.ZERO, "svc_x": tr.Figure.exact(12)}
    assert report.accesses.total == tr.Figure.exact(52)
    assert [m.month for m in report.grants.months] == [m.month for m in months]
    assert set(report.grants.by_state) == set(STATES)
    unknown = next(p for p in report.purposes if p.code == "no_such_purpose")
    assert unknown.lawful_basis == "unknown"  # a retired code is shown, not a crash
    assert [d.label for d in report.derived] == ["Whether you are 18 or over"]


def test_an_empty_vault_has_an_empty_report() -> None:
    report = tr.build_report(services=[], grants={}, accesses={}, checkpoint=None,
                             now=REPORT_AT)
    assert report.accesses.months == [] and report.grants.months == []
    assert report.accesses.total == report.grants.total == tr.ZERO


def test_figures_read_as_words() -> None:
    assert figure_text(tr.Figure.exact(1203), 10) == "1,203"
    assert figure_text(tr.Figure.exact(0), 10) == "0"
    assert figure_text(tr.Figure(None, 1, 9), 10) == "fewer than 10"
    assert figure_text(tr.Figure(None, 2, 18), 10) == "2 to 18"
    assert figure_text(tr.Figure(None, 1201, 1209), 10) == "1,201 to 1,209"
    assert month_label("2026-01") == "Jan 2026"


# -- erasure changes nothing that is published (issue 11, bug 3) -----------------------------


def _tables(page: str, *ids: str) -> dict[str, str]:
    found = {}
    for table_id in ids:
        m = re.search(rf'<table id="{table_id}">.*?</table>', page, re.S)
        assert m is not None, table_id
        found[table_id] = m[0]
    return found


def _state_rows(page: str) -> dict[str, str]:
    table = _tables(page, "table-grants")["table-grants"]
    row = r'<th scope="row">(\w+)</th>(?:<td>[^<]*</td>)?<td class="num">([^<]+)</td>'
    return dict(re.findall(row, table))


def test_erasing_a_citizen_changes_no_published_count(tmp_path: Path) -> None:
    """A citizen with 10 approved grants read once each, 10 waiting and 10 declined is
    erased: every figure on the page and in the JSON is as before, except that the ledger
    now says the approved ones were revoked and the waiting ones denied. Every atom has
    0 or at least 10, so every figure is exact and the comparison is to the unit."""
    settings = Settings(data_dir=tmp_path / "vault", ledger_public=True, sweep_interval=3600)
    app = create_app(settings)
    with TestClient(app) as client:
        clock = Clock()
        ctx = dataclasses.replace(app.state.vault.ctx, clock=clock)
        w = world(ctx)
        meals = registry.register_service(ctx, registry.Registration(
            name="Free school meals check", description="Checks meals for children",
            purposes=["eligibility_assessment"], categories=["address.home"], jwk=JWK,
            redirect_uris=["https://meals.example.gov/cb"],
            privacy_notice_url="https://meals.example.gov/privacy", max_days=30))
        device = add_passkey(ctx, w.citizen_id)
        for _ in range(10):
            g = ask(ctx, w)
            _approve(ctx, device, w.citizen_id, g)
            access.read_under_grant(ctx, service_id=w.service_id, grant_id=g.id)
            grants.deny_grant(ctx, ask(ctx, w).id, citizen_id=w.citizen_id)
        for service in (w.service_id, meals):  # 10 waiting: 5 from each service
            for _ in range(5):
                grants.request_grant(
                    ctx, service_id=service, citizen_id=w.citizen_id,
                    purpose="eligibility_assessment", categories=["address.home"],
                    access=Access("one_time"), data_life="P1D", justification="To check",
                    duration=timedelta(days=30))

        def published() -> tuple[dict[str, Any], str]:
            publish_checkpoint(app.state.vault.engine, app.state.vault.signer)
            count_ledger(ctx)
            app.state.transparency = None  # past the cache
            body, page = client.get("/transparency.json"), client.get("/transparency")
            assert body.status_code == page.status_code == 200
            return body.json(), page.text

        before, page_before = published()
        citizens.erase_citizen(ctx, w.citizen_id)
        after, page_after = published()

    none = {k: c(0) for k in STATES}
    assert before["grants"]["by_state"] == {
        **none, "approved": c(10), "requested": c(10), "denied": c(10)}
    assert after["grants"]["by_state"] == {**none, "revoked": c(10), "denied": c(20)}
    assert after["grants"]["total"] == before["grants"]["total"] == c(30)
    assert ([m["total"] for m in after["grants"]["months"]]
            == [m["total"] for m in before["grants"]["months"]])
    assert after["accesses"] == before["accesses"]
    assert after["accesses"]["by_service"][w.service_id] == c(10)
    # What the ledger says, counted from its entries alone.
    grant_atoms, access_atoms = ledger_atoms(app.state.vault.engine)
    assert {s: c(n) for (_, s), n in grant_atoms.items()} == {
        k: v for k, v in after["grants"]["by_state"].items() if v != c(0)}
    assert sum(access_atoms.values()) == after["accesses"]["total"]["value"]
    # The page: the same tables of reads, the same total of grants, the states moved.
    tables = ("table-months", "table-services", "table-purposes", "table-categories",
              "table-derived")
    assert _tables(page_after, *tables) == _tables(page_before, *tables)
    zeros = {s.capitalize(): "0" for s in STATES}
    assert _state_rows(page_before) == {**zeros, "Approved": "10", "Requested": "10",
                                        "Denied": "10", "All": "30"}
    assert _state_rows(page_after) == {**zeros, "Revoked": "10", "Denied": "20", "All": "30"}


def test_counts_show_within_a_second_of_a_commit(tmp_path: Path) -> None:
    """Issue 13 §4: the publisher signs the commit, the counter counts it, the report's
    short cache lets it through, all within a second, with nobody calling anything."""
    settings = Settings(data_dir=tmp_path / "vault", ledger_public=True, sweep_interval=3600)
    app = create_app(settings)
    with TestClient(app) as client:
        ctx = app.state.vault.ctx
        w = world(ctx)

        def now_published() -> dict[str, Any]:
            doc: dict[str, Any] = client.get("/transparency.json").json()
            return doc

        with read_only(ctx.engine).begin() as conn:
            size = SqlLedger(conn).size()
        deadline = time.monotonic() + 5  # the world's own entries, counted first
        while now_published()["ledger_size"] < size:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        before = now_published()
        assert before["grants"]["total"] == c(0)
        ask(ctx, w)
        committed = time.monotonic()
        while (doc := now_published())["grants"]["total"] == c(0):
            assert time.monotonic() - committed < 1.0, "not counted within a second"
            time.sleep(0.02)
        assert doc["grants"]["by_state"]["requested"] == SMALL
        assert doc["ledger_size"] == size + 1 == doc["checkpoint"]["size"]
