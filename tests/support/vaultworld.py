"""Shared set-up for vault tests: a clock to move, a registered service, a citizen with data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vault.domain.grants import Access
from vault.services import citizens, grants, records, registry
from vault.services.context import VaultContext
from wallet.passkeys import RelyingParty, registration_options, user_handle
from wallet.passkeys import add_passkey as keep_passkey
from wallet.passkeys.software import SoftAuthenticator

JWK = {"kty": "EC", "crv": "P-256",
       "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


@dataclass
class Clock:
    """A clock the test moves by hand: expiry and lapses without sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: Any) -> None:
        self.now += timedelta(**kw)


@dataclass(frozen=True)
class World:
    service_id: str
    citizen_id: str
    subject: str


def blue_badge(ctx: VaultContext, **kw: object) -> str:
    reg = registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=JWK, redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy", max_days=90)
    return registry.register_service(ctx, reg)


def give_ada_data(ctx: VaultContext, citizen_id: str) -> None:
    """A name, a date of birth (over 65) and a home address."""
    records.write_record(ctx, citizen_id, "identity.name", {"given": "Ada", "family": "Lovelace"})
    records.write_record(ctx, citizen_id, "identity.date_of_birth", "1950-12-10")
    records.write_record(ctx, citizen_id, "address.home", {
        "lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
        "local_authority": "Westminster"})


def world(ctx: VaultContext) -> World:
    service_id = blue_badge(ctx)
    c = citizens.enrol_citizen(ctx)
    give_ada_data(ctx, c.id)
    return World(service_id, c.id, c.subject)


def ask(ctx: VaultContext, w: World, **kw: object) -> grants.GrantView:
    args: dict[str, object] = {
        "purpose": "eligibility_assessment", "categories": ["address.home"],
        "derived": ["age_over_65"], "access": Access("periodic", max_reads=3),
        "data_life": "P30D", "justification": "To check you can have a Blue Badge.",
        "duration": timedelta(days=30)}
    args.update(kw)
    return grants.request_grant(ctx, service_id=w.service_id, citizen_id=w.citizen_id,
                                **args)  # type: ignore[arg-type]


def add_passkey(ctx: VaultContext, citizen_id: str,
                device: SoftAuthenticator | None = None) -> SoftAuthenticator:
    """Register a passkey on `device` (a new software authenticator by default)."""
    device = device or SoftAuthenticator()
    rp = RelyingParty.from_public_url(device.origin)
    options, challenge = registration_options(rp, user_id=user_handle(citizen_id),
                                              user_name="citizen", exclude=[])
    keep_passkey(ctx, rp, citizen_id=citizen_id, credential=device.create(options),
                 expected_challenge=challenge, label="My phone")
    return device
