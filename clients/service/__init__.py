"""The service SDK: ask citizens for their data, read it under their grant, and check
the vault's webhooks. It speaks only the vault's HTTP contract (OAuth 2.0 with PAR,
PKCE, private_key_jwt, CIBA; the /v1 resource API; Standard Webhooks).

Ask, let the citizen answer in the wallet, read (a vault at localhost:8000 where the
operator registered the service with `key.public_jwk()` and this redirect URI)::

    from clients.service import Access, PersonalData, ServiceKey, VaultClient

    key = ServiceKey.from_file("service-key.pem")
    terms = PersonalData(purpose="eligibility_assessment", categories=["address.home"],
                         derived=["age_over_65"], duration="P30D",
                         access=Access.periodic(max_reads=3), data_life="P30D",
                         justification="To check you can have a Blue Badge.")
    with VaultClient("http://localhost:8000", client_id="svc_...", key=key) as vault:
        pending = vault.start_authorization(terms,
                                            redirect_uri="http://localhost:8001/callback")
        print("Open", pending.url)               # or show pending.qr_svg() to a phone
        callback = input("The URL the wallet sent you back to: ")
        grant = vault.finish_authorization(callback, pending)  # GrantDenied if declined
        print(vault.read(grant).derived)         # {'age_over_65': True}
        print(grant.to_json())                   # store it, again after every call

A web app keeps `pending.to_json()` in the user's session between the redirect and the
callback (`PendingAuthorization.from_json`). Tokens rotate when the client refreshes
them (`on_refresh=` is told), so the stored grant must follow.

A citizen the service already knows (by `grant.sub`) is asked in their wallet instead::

    bc = vault.request_by_subject(grant.sub, terms, binding_message="Blue Badge renewal")
    grant = vault.wait(bc, timeout=300)          # GrantPending after 5 minutes

`AsyncVaultClient` has the same methods, awaited. Errors are `VaultClientError`
subclasses (see `clients.service.errors`); `wait` raises GrantPending when its
`timeout` passes first (wait again with the same `bc`) and GrantExpired once the
request itself has expired unanswered. Network failures are VaultUnavailable.
Webhooks: `verify_webhook("whsec_...", request.headers, body)`; a `record.changed`
delivery comes back as a `RecordChanged` (its grant, categories and ledger index).
"""

from clients.service.aio import AsyncVaultClient
from clients.service.errors import (
    AuthorizationFailed,
    GrantDenied,
    GrantExhausted,
    GrantExpired,
    GrantNotYetValid,
    GrantPaused,
    GrantPending,
    GrantRevoked,
    ProtocolError,
    RateLimited,
    RecordInvalid,
    RecordRefused,
    ServiceSuspended,
    TooSoon,
    VaultClientError,
    VaultUnavailable,
    WebhookInvalid,
)
from clients.service.keys import ServiceKey
from clients.service.records import SignedRecord, verify_record
from clients.service.results import (
    BackchannelRequest,
    BatchProvenance,
    Grant,
    GrantStatus,
    Introspection,
    PendingAuthorization,
    Provenance,
    RecordWritten,
    Release,
    SeriesBatch,
    SeriesPage,
)
from clients.service.sync import VaultClient
from clients.service.terms import Access, PersonalData
from clients.service.webhooks import RecordChanged, RecordDisputed, WebhookEvent, verify_webhook

__all__ = [
    "Access",
    "AsyncVaultClient",
    "AuthorizationFailed",
    "BackchannelRequest",
    "BatchProvenance",
    "Grant",
    "GrantDenied",
    "GrantExhausted",
    "GrantExpired",
    "GrantNotYetValid",
    "GrantPaused",
    "GrantPending",
    "GrantRevoked",
    "GrantStatus",
    "Introspection",
    "PendingAuthorization",
    "PersonalData",
    "ProtocolError",
    "Provenance",
    "RateLimited",
    "RecordChanged",
    "RecordDisputed",
    "RecordInvalid",
    "RecordRefused",
    "RecordWritten",
    "Release",
    "SeriesBatch",
    "SeriesPage",
    "ServiceKey",
    "ServiceSuspended",
    "SignedRecord",
    "TooSoon",
    "VaultClient",
    "VaultClientError",
    "VaultUnavailable",
    "WebhookEvent",
    "WebhookInvalid",
    "verify_record",
    "verify_webhook",
]
