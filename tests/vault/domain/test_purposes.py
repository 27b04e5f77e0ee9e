"""The purposes catalog: plain-English text, a GDPR lawful basis and a real DPV term each."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from vault.domain.purposes import DPV_NAMESPACE, Purpose, purposes

REQUIRED = {"service_provision", "eligibility_assessment", "identity_verification",
            "research_with_consent"}

# DPV purpose concepts (https://w3id.org/dpv#) we may map to: a closed list, so a typo in
# the catalog cannot invent a term.
KNOWN_DPV_PURPOSES = {
    "dpv:ServiceProvision", "dpv:RequestedServiceProvision", "dpv:ServiceAccessDetermination",
    "dpv:IdentityVerification", "dpv:AgeVerification", "dpv:ResearchAndDevelopment",
    "dpv:ScientificResearch", "dpv:ImproveHealthcare", "dpv:ImprovePublicServices",
}
ARTICLE_6 = {
    "consent": "(a)", "contract": "(b)", "legal_obligation": "(c)", "vital_interests": "(d)",
    "public_task": "(e)", "legitimate_interests": "(f)",
}


def test_required_purposes_exist() -> None:
    assert set(purposes()) >= REQUIRED


@pytest.mark.parametrize("code", sorted(purposes()))
def test_every_purpose_is_complete(code: str) -> None:
    p = purposes()[code]
    assert isinstance(p, Purpose) and p.code == code
    assert re.fullmatch(r"[a-z][a-z0-9_]*", code)
    assert p.text.endswith(".") and len(p.text) > 10
    assert p.lawful_basis in ARTICLE_6
    assert p.lawful_basis_text.startswith(f"GDPR Article 6(1){ARTICLE_6[p.lawful_basis]}: ")
    assert p.dpv in KNOWN_DPV_PURPOSES
    assert p.dpv_iri == DPV_NAMESPACE + p.dpv.removeprefix("dpv:")
    assert p.dpv_iri.startswith("https://w3id.org/dpv#")


def test_research_rests_on_consent_and_council_work_on_public_task() -> None:
    assert purposes()["research_with_consent"].lawful_basis == "consent"
    assert purposes()["eligibility_assessment"].lawful_basis == "public_task"


def test_catalogs_are_package_data() -> None:
    # Loaded through importlib.resources, as an installed wheel would load them.
    catalog = resources.files("vault.domain").joinpath("catalog")
    for name in ("purposes.json", "categories.json"):
        data = json.loads(catalog.joinpath(name).read_text("utf-8"))
        assert data
    raw = json.loads(catalog.joinpath("purposes.json").read_text("utf-8"))
    assert set(raw["purposes"]) == set(purposes())


def test_catalog_is_loaded_once() -> None:
    assert purposes() is purposes()
