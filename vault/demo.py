"""Demo content for `vault serve --demo`: a living system drawn from real city use cases.

Services: a council's Blue Badge team, a school's free-school-meals check, a GP practice
receiving a citizen's wearable observations, a council tax team reading an attendance
allowance award that a benefits agency wrote. One demo citizen (fictional data) with a
demo passkey held by the vault itself, so that the demo grants carry real, verifiable
approvals; grants in several states; a few reads. Everything goes through the same
use cases as real traffic, so the demo ledger verifies like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import select

from vault.domain.grants import Access, GrantAction
from vault.services import access, citizens, grants, records, registry, sources
from vault.services.context import VaultContext, unit_of_work
from vault.storage.tables import ServiceRow
from wallet.passkeys import RelyingParty, add_passkey, registration_options, user_handle
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["DemoSummary", "seed_demo", "welcome_demo_citizen"]

# Each demo service's public key (a valid P-256 point; the demo never signs with it).
_JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}

_RECORDS: list[tuple[str, Any]] = [
    ("identity.name", {"given": "Sam", "family": "Rivers"}),
    ("identity.date_of_birth", "1955-04-02"),
    ("contact.email", "sam.rivers@example.org"),
    ("contact.phone", "+447700900123"),
    ("address.home", {"lines": ["4 Willow Lane"], "town": "Riverside", "postcode": "RV1 2AB",
                      "local_authority": "Riverside"}),
    ("benefits.universal_credit", {"receiving": True, "since": "2023-09-01"}),
    ("health.gp_practice", {"name": "Riverside Health Centre", "ods_code": "Y01234"}),
    ("household.children", [{"given": "Alex", "date_of_birth": "2016-06-15",
                             "school_urn": "123456"}]),
    ("education.school", {"name": "Riverside Primary School", "urn": "123456"}),
    ("health.observations", [
        {"kind": "heart_rate", "value": 72, "unit": "bpm", "at": "2026-11-20T08:00:00Z"},
        {"kind": "steps", "value": 6412, "unit": "steps", "at": "2026-11-20T20:00:00Z"}]),
]


#: What the seeded citizen's vault keeps no value of: `make run` registers an electoral
#: register holding address.home at source (clients.examples.city), and a category can
#: be registered as held at source only while the vault holds no value of it.
_LEFT_TO_SOURCES = frozenset({"address.home"})


#: The Blue Badge team's assessment, as an operator would publish it with --dpia-text.
_BADGE_DPIA = (
    "Riverside Council assessed the Blue Badge service in November 2026 (demo text).\n\n"
    "The service needs a name and a home address to issue a badge, and two yes or no "
    "answers to decide eligibility: whether the applicant is 65 or over, and whether they "
    "get Attendance Allowance. It never sees a date of birth or an award letter.\n\n"
    "The main risk is that an address is kept longer than needed: each request states how "
    "long the team keeps what it reads, and the team deletes it when the badge is issued "
    "or refused.")


@dataclass(frozen=True)
class DemoSummary:
    citizen_id: str
    services: dict[str, str]
    grants: dict[str, str]


def _service(ctx: VaultContext, base: str, name: str, description: str, **kw: Any) -> str:
    # No URLs of their own: each links to the privacy notice and DPIA the vault
    # publishes for it at /services/{client_id}/privacy and /dpia.
    return registry.register_service(ctx, registry.Registration(
        name=name, description=description, jwk=_JWK,
        redirect_uris=[f"{base}/demo/callback"], **kw), public_url=base)


def seed_demo(ctx: VaultContext, base_url: str) -> DemoSummary | None:
    """Load the demo into an empty vault; None if it holds services already."""
    with unit_of_work(ctx) as work:
        if work.session.execute(select(ServiceRow.id).limit(1)).first() is not None:
            return None
    base = base_url.rstrip("/")
    agency = _service(ctx, base, "Benefits Agency (demo)",
                      "Awards benefits and writes the award into the citizen's vault.",
                      purposes=["service_provision"],
                      categories=["benefits.attendance_allowance"])
    services = {
        "blue_badge": _service(
            ctx, base, "Blue Badge team, Riverside Council",
            "Decides who can have a Blue Badge for disabled parking.",
            purposes=["eligibility_assessment"],
            categories=["identity.name", "address.home"],
            derived=["age_over_65", "receives:attendance_allowance"], max_days=90,
            controller="Riverside Council", contact="dataprotection@riverside.example",
            dpia_text=_BADGE_DPIA),
        "school_meals": _service(
            ctx, base, "Free school meals, Riverside schools",
            "Checks whether a family can get free school meals, without seeing why.",
            purposes=["eligibility_assessment"], categories=["education.school"],
            derived=["eligible_free_school_meals"], max_days=365),
        "gp": _service(
            ctx, base, "Riverside Health Centre",
            "Your GP practice: sees the readings from your wearable that you share.",
            purposes=["health_monitoring"], categories=["health.observations"], max_days=180),
        "council_tax": _service(
            ctx, base, "Council Tax team, Riverside Council",
            "Gives a council tax discount to people who get Attendance Allowance.",
            purposes=["eligibility_assessment"],
            categories=["benefits.attendance_allowance"], max_days=30),
        "agency": agency,
    }
    citizen = citizens.enrol_citizen(ctx)
    for category, value in _RECORDS:
        if category not in _LEFT_TO_SOURCES:
            records.write_record(ctx, citizen.id, category, value)
    records.write_record(ctx, citizen.id, "benefits.attendance_allowance",
                         {"award": "lower", "since": "2024-02-01", "awarded_by": agency},
                         source=agency)
    rp = RelyingParty.from_public_url(base)
    device = SoftAuthenticator(origin=base)
    options, challenge = registration_options(rp, user_id=user_handle(citizen.id),
                                              user_name="Sam Rivers", exclude=[])
    add_passkey(ctx, rp, citizen_id=citizen.id, credential=device.create(options),
                expected_challenge=challenge, label="Demo phone")

    def ask(service: str, **kw: Any) -> grants.GrantView:
        return grants.request_grant(ctx, service_id=services[service], citizen_id=citizen.id,
                                    data_life="P30D", **kw)

    def approve(g: grants.GrantView) -> None:
        grants.approve_grant(ctx, g.id, citizen_id=citizen.id,
                             proof=device.proof(challenge=g.terms_hash))

    badge = ask("blue_badge", purpose="eligibility_assessment",
                categories=["address.home"],
                derived=["age_over_65", "receives:attendance_allowance"],
                access=Access("periodic", max_reads=5), duration=timedelta(days=60),
                justification="To check whether you can have a Blue Badge.")
    approve(badge)
    for _ in range(2):
        access.read_under_grant(ctx, service_id=services["blue_badge"], grant_id=badge.id)
    tax = ask("council_tax", purpose="eligibility_assessment",
              categories=["benefits.attendance_allowance"], access=Access("one_time"),
              duration=timedelta(days=14),
              justification="To give you the council tax discount for Attendance Allowance.")
    approve(tax)
    access.read_under_grant(ctx, service_id=services["council_tax"], grant_id=tax.id)
    gp = ask("gp", purpose="health_monitoring", categories=["health.observations"],
             access=Access("periodic", min_interval="P1D"), duration=timedelta(days=90),
             justification="So your nurse can see your heart rate and steps each day.")
    approve(gp)
    access.read_under_grant(ctx, service_id=services["gp"], grant_id=gp.id)
    pause = grants.signing_challenge(ctx, gp.id, citizen_id=citizen.id,
                                     action=GrantAction.PAUSE)
    grants.pause_grant(ctx, gp.id, citizen_id=citizen.id,
                       proof=device.proof(challenge=pause))
    meals = ask("school_meals", purpose="eligibility_assessment",
                categories=["education.school"], derived=["eligible_free_school_meals"],
                access=Access("one_time"), duration=timedelta(days=30),
                justification="To see if Alex can have free school meals this year.")
    declined = ask("council_tax", purpose="eligibility_assessment",
                   categories=["benefits.attendance_allowance"], access=Access("one_time"),
                   duration=timedelta(days=7), justification="To review your discount.")
    grants.deny_grant(ctx, declined.id, citizen_id=citizen.id)
    return DemoSummary(citizen.id, services, {
        "blue_badge (approved, read twice)": badge.id,
        "council_tax (read once: exhausted)": tax.id,
        "gp (paused)": gp.id,
        "school_meals (waiting for the citizen)": meals.id,
        "council_tax review (declined)": declined.id})


def welcome_demo_citizen(ctx: VaultContext, citizen_id: str) -> list[str]:
    """In the demo, a citizen who just signed up gets fictional records and two waiting
    requests from the demo services, so the wallet has something to show at once.
    Returns the new grant ids (none if the demo services are not there)."""
    with unit_of_work(ctx) as work:
        names = dict(work.session.execute(select(ServiceRow.name, ServiceRow.id)).all())
        # A category a source holds (`make run`'s electoral register: address.home) is
        # never stored: the source answers for it.
        held = sources.held_categories(work.session)
    badge = names.get("Blue Badge team, Riverside Council")
    meals = names.get("Free school meals, Riverside schools")
    if badge is None or meals is None:
        return []
    for category, value in _RECORDS:
        if category not in held:
            records.write_record(ctx, citizen_id, category, value)
    asks = [
        grants.request_grant(
            ctx, service_id=badge, citizen_id=citizen_id, purpose="eligibility_assessment",
            categories=["address.home"],
            derived=["age_over_65", "receives:attendance_allowance"],
            access=Access("periodic", max_reads=5), duration=timedelta(days=60),
            data_life="P30D", justification="To check whether you can have a Blue Badge."),
        grants.request_grant(
            ctx, service_id=meals, citizen_id=citizen_id, purpose="eligibility_assessment",
            categories=["education.school"], derived=["eligible_free_school_meals"],
            access=Access("one_time"), duration=timedelta(days=30), data_life="P30D",
            justification="To see if your child can have free school meals this year."),
    ]
    return [g.id for g in asks]
