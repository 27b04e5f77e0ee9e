"""Schemathesis against /openapi.json (issue 5 §4): no 500, and no answer off its schema.

Every operation the document lists is fuzzed (valid and invalid inputs, coverage cases and
random ones, a fixed seed) against the real app with a little data in it: a service, a
citizen with records, an approved grant. Each generated request is sent as generated
(anonymous, or with whatever credentials schemathesis made up), then again with real
credentials: an access token for /v1/*, the auditor key for /ledger/*, and for
/v1/grants/{grant_id} the token's own grant id, so the fuzzing also reaches the answers
behind authentication. Each answer must not be a 5xx, and its status, content type and
body must be ones the document declares.

Requests go through Starlette's TestClient, which runs the app's lifespan once for the
module, rather than through schemathesis' own ASGI client, which would start a second one.
The schema is loaded at collection time (`schemathesis.pytest.from_fixture` does not run
on pytest 9.2: it sets `Node._nodeid`, which pytest no longer has).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from support.vaultworld import add_passkey, ask, world

from vault.api.resource_routes import RESOURCE_PREFIX, resource_audience
from vault.app import create_app
from vault.config import Settings
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import grants
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
AUDITOR_KEY = "fuzzing-auditor-key"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
#: A handful of examples per operation and a fixed seed: the same requests on every run.
CONFIG = schemathesis.Config.from_dict({
    "seed": 20261122,
    "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
})


def served_document() -> dict[str, Any]:
    """What GET /openapi.json serves. It depends on the routes alone, not on settings or
    data, so an app that never starts (nothing is written) gives it at collection time."""
    return create_app(Settings(data_dir=Path("never-created"))).openapi()


DOCUMENT = served_document()
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)
schema.config.update(base_url=ORIGIN)


@dataclass(frozen=True)
class Fuzzed:
    """The app under test and the credentials that get past its authentication."""

    client: TestClient
    access_token: str
    grant_id: str

    def credentials(self, path: str) -> str | None:
        if path.startswith(RESOURCE_PREFIX + "/"):
            return self.access_token
        if path.startswith("/ledger/"):
            return AUDITOR_KEY
        return None


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "v"
    # The ledger is private (entries and proofs need the auditor key), and the rate limit
    # is high enough that reads under the grant are answered, not refused with 429.
    settings = Settings(data_dir=data_dir, auditor_api_keys=SecretStr(AUDITOR_KEY),
                        client_rate_limit=10_000, client_rate_burst=10_000)
    app = create_app(settings)
    with TestClient(app, base_url=ORIGIN) as client:
        ctx = app.state.vault.ctx
        w = world(ctx)
        device = add_passkey(ctx, w.citizen_id, SoftAuthenticator(origin=ORIGIN))
        grant = ask(ctx, w, access=Access("periodic", max_reads=100_000))
        grants.approve_grant(ctx, grant.id, citizen_id=w.citizen_id,
                             proof=device.proof(challenge=grant.terms_hash))
        now = datetime.now(UTC)
        token, _ = issue_access_token(
            app.state.vault.token_keys.current, issuer=settings.base_url,
            audience=resource_audience(settings.base_url), client_id=w.service_id,
            sub=pairwise_sub(app.state.vault.app_secret, w.service_id, w.citizen_id),
            grant_id=grant.id,
            authorization_details=[{"type": "personal_data", **grant.terms.to_json()}],
            now=now, grant_expires_at=now + timedelta(days=1))
        assert client.get("/openapi.json").json() == DOCUMENT  # what is fuzzed is served
        yield Fuzzed(client, token, grant.id)


def send(client: TestClient, case: schemathesis.Case,
         headers: dict[str, str] | None = None) -> httpx.Response:
    """The request schemathesis would send, encoded by `requests` as it would be, sent
    through the TestClient (so through the lifespan this module started)."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=ORIGIN, headers=headers)
    prepared = requests.Request(
        method=kwargs["method"], url=kwargs["url"], headers=kwargs.get("headers"),
        params=kwargs.get("params"), cookies=kwargs.get("cookies"), data=kwargs.get("data"),
        json=kwargs.get("json"), files=kwargs.get("files")).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    raw_headers = [(name.encode("latin-1"), value.encode("latin-1")
                    if isinstance(value, str) else value)
                   for name, value in prepared.headers.items()]
    return client.request(prepared.method or case.method, prepared.url or "",
                          headers=raw_headers, content=body)


@schema.parametrize()
def test_no_server_error_and_no_answer_off_the_schema(case: schemathesis.Case,
                                                      fuzzed: Fuzzed) -> None:
    case.validate_response(send(fuzzed.client, case), checks=CHECKS)
    secret = fuzzed.credentials(case.path)
    if secret is None or case.method.upper() != case.operation.method.upper():
        return  # nothing behind authentication, or a method the route does not serve
    bearer = {"Authorization": f"Bearer {secret}"}
    case.validate_response(send(fuzzed.client, case, bearer), checks=CHECKS)
    if case.path_parameters and "grant_id" in case.path_parameters:
        case.path_parameters["grant_id"] = fuzzed.grant_id
        case.validate_response(send(fuzzed.client, case, bearer), checks=CHECKS)


def test_the_document_declares_the_errors_the_vault_sends() -> None:
    refs: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(DOCUMENT)
    schemas = DOCUMENT["components"]["schemas"]
    assert {ref.removeprefix("#/components/schemas/") for ref in refs} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if method == "post" and path.startswith("/oauth/"):
                for status in ("400", "401"):
                    assert "application/json" in responses[status]["content"], (path, status)
    invalid = DOCUMENT["paths"]["/ledger/entries"]["get"]["responses"]["400"]
    assert invalid["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
