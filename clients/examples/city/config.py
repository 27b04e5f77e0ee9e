"""The city's example services: who they are, and what each is told when it starts.

Each service is registered with the vault as an operator would (`clients.examples.demo`
runs `vault service add` with `Spec.vault_args`) and leaves three files under
`<data-dir>/city/<slug>/`: its private key (0600), the public JWKS it registered, and
`client.json` (0600: client_id, webhook secret, the URLs it was registered with). The
apps only read them (`load_configs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.service import ServiceKey

__all__ = [
    "AGENCY",
    "CLIENT_FILE",
    "COUNCIL_TAX",
    "GP",
    "JWKS_FILE",
    "KEY_FILE",
    "REGISTER",
    "SCHOOL",
    "SPECS",
    "WEARABLE",
    "CityConfig",
    "CityError",
    "NotRegistered",
    "Spec",
    "load_configs",
    "service_dir",
    "service_urls",
]

KEY_FILE = "service-key.pem"
JWKS_FILE = "jwks.json"
CLIENT_FILE = "client.json"


class CityError(Exception):
    """Base of the city examples' own errors.

    CityError
    └── NotRegistered   no key or client.json for a service under the data dir yet
    """


class NotRegistered(CityError):
    """A service has not been registered with the vault (run the launcher first)."""


@dataclass(frozen=True)
class Spec:
    """One city service as the operator registers it, and where it listens
    (`port_offset` after the first city port)."""

    slug: str
    name: str
    description: str
    purpose: str
    port_offset: int
    categories: tuple[str, ...] = ()
    derived: tuple[str, ...] = ()
    issues: tuple[str, ...] = ()
    max_days: int = 365
    #: Where, under its URL, it answers the vault for the `issues` it holds at source
    #: (`--source-url`); None: the vault keeps what it issues.
    source_path: str | None = None

    def vault_args(self, app_url: str) -> list[str]:
        """`vault service add` arguments (but --jwks-file and --json) for this service
        served at `app_url`."""
        args = ["--name", self.name, "--description", self.description,
                "--redirect-uri", f"{app_url}/callback", "--purpose", self.purpose,
                "--webhook-url", f"{app_url}/webhooks/vault", "--max-days", str(self.max_days)]
        for flag, names in (("--category", self.categories), ("--derived", self.derived),
                            ("--issues", self.issues)):
            for name in names:
                args += [flag, name]
        if self.source_path is not None:
            args += ["--source-url", f"{app_url}{self.source_path}"]
        return args


REGISTER = Spec(
    "register", "Electoral register (example app)",
    "Riverside's electoral register: it keeps your address itself and answers your vault "
    "each time a service you chose needs it. Your vault keeps no copy. This is an "
    "example service.", "identity_verification", 1, categories=("identity.name",),
    issues=("address.home",), source_path="/source")
AGENCY = Spec(
    "agency", "Benefits Agency (example app)",
    "Awards Attendance Allowance and Universal Credit, and adds the award to your vault "
    "(or, for your household's Universal Credit, to your child's vault), signed, so the "
    "services you choose can rely on it. This is an example service.",
    "service_provision", 0,
    issues=("benefits.attendance_allowance", "household.universal_credit"))
COUNCIL_TAX = Spec(
    "counciltax", "Council Tax team (example app)",
    "Reduces your council tax while you get Attendance Allowance, and is told when your "
    "award changes. This is an example service.",
    "eligibility_assessment", 2, categories=("benefits.attendance_allowance",),
    derived=("resident_in:Riverside",), max_days=365)
WEARABLE = Spec(
    "wearable", "Heart monitor (example app)",
    "A wearable heart monitor that adds its readings to your vault. This is an example "
    "service.", "health_monitoring", 3, issues=("health.observations",))
GP = Spec(
    "gp", "Riverside GP practice (example app)",
    "Your GP practice: told only whether a reading was outside its usual range, never "
    "the readings. This is an example service.",
    "health_monitoring", 4,
    derived=("observations_of_concern", "observations_of_concern:heart_rate"), max_days=180)
SCHOOL = Spec(
    "school", "Riverside Primary School (example app)",
    "Your child's school: gives free school meals when your child can have them. Told "
    "only yes or no by your child's vault, and told again when that changes. This is an "
    "example service.", "free_school_meals", 5,
    derived=("eligible_free_school_meals",), max_days=365)
#: In port order.
SPECS: tuple[Spec, ...] = (AGENCY, REGISTER, COUNCIL_TAX, WEARABLE, GP, SCHOOL)


@dataclass(frozen=True)
class CityConfig:
    """Everything one service is told; built once and passed to its `create_app`."""

    vault_url: str
    client_id: str
    key: ServiceKey
    #: `whsec_...`, from `vault service add --json` / `vault service webhook-secret`.
    webhook_secret: str | None
    #: Where citizens' browsers reach this app; the redirect URI is `<public_url>/callback`.
    public_url: str
    #: The other city services' client_ids by slug (the council tax team trusts the
    #: agency's signature on an award, and nobody else's).
    peers: Mapping[str, str] = field(default_factory=dict)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/callback"


def service_dir(data_dir: Path, slug: str) -> Path:
    return data_dir / "city" / slug


def service_urls(first_port: int, host: str = "localhost") -> dict[str, str]:
    """Each service's public URL by slug, for services listening from `first_port`."""
    return {s.slug: f"http://{host}:{first_port + s.port_offset}" for s in SPECS}


def _registration(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotRegistered(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("client_id"), str):
        raise NotRegistered(f"{path} has no client_id")
    return doc


def load_configs(data_dir: Path, *, vault_url: str, urls: Mapping[str, str]
                 ) -> dict[str, CityConfig]:
    """Each service's configuration (by slug, for the slugs in `urls`: its public URL)
    from the files the launcher wrote."""
    hint = "run `python -m clients.examples.demo` (or `make run`) first"
    docs: dict[str, dict[str, Any]] = {}
    for slug in urls:
        folder = service_dir(data_dir, slug)
        if not (folder / KEY_FILE).is_file() or not (folder / CLIENT_FILE).is_file():
            raise NotRegistered(f"no registration under {folder}: {hint}")
        docs[slug] = _registration(folder / CLIENT_FILE)
    peers = {slug: str(doc["client_id"]) for slug, doc in docs.items()}
    configs = {}
    for slug, doc in docs.items():
        secret = doc.get("webhook_secret")
        configs[slug] = CityConfig(
            vault_url=vault_url.rstrip("/"), client_id=peers[slug],
            key=ServiceKey.from_file(service_dir(data_dir, slug) / KEY_FILE),
            webhook_secret=secret if isinstance(secret, str) else None,
            public_url=urls[slug].rstrip("/"), peers=peers)
    return configs
