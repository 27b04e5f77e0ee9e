"""What access tokens cost in process: issuing one, and verifying one on every request.

Measured: `vault.oauth.issue_access_token` (claims, JSON, ES256 signature by python-jose
over `cryptography`), goal >= 1,000 tokens/s; `verify_access_token` as `/v1/data` calls
it (strict parse of the compact JWS, key by kid, python-jose ES256 verification, every
claim checked), goal <= 0.1 ms. The keys are a file-managed `TokenKeys` loaded from a
data directory with `load_token_keys`, as the app loads them, so the per-call look-up
(the file's stat, the public JWK) is paid as in the server; the same verification with
a plain `{kid: jwk}` mapping is given in a note. The token carries the authorization
details the resource tests use (one personal_data object), about 900 bytes.

Floors: bare `cryptography` ECDSA P-256 / SHA-256 on the same JWS signing input, sign
for issuance and verify (DER signature prepared outside the loop) for verification.
Ours and the floor alternate, best of the repeats.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.report import Goal, Result, best, spread
from vault.crypto.token_key import load_token_keys
from vault.oauth import issue_access_token, verify_access_token
from vault.oauth._jws import parse_jws
from vault.oauth.errors import InvalidTokenError

__all__ = ["bench_tokens"]

_ISSUER = "http://localhost:8000"
_AUDIENCE = _ISSUER + "/v1"
_DETAILS = [{
    "type": "personal_data", "grant_id": "gr_0123456789abcdefghijkl",
    "service_id": "svc_0123456789abcdefghijkl", "purpose": "eligibility_assessment",
    "categories": ["address.home"], "derived": ["age_over_65"],
    "not_before": "2026-11-22T09:00:00Z", "expires_at": "2027-11-22T09:00:00Z",
    "access": {"mode": "periodic", "max_reads": 1_000_000, "min_interval": None},
    "data_life": "P1D", "justification": "To check you can have a Blue Badge.",
}]


def _per_second(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def bench_tokens(workdir: Path, *, n: int, repeats: int) -> list[Result]:
    keys = load_token_keys(workdir / "token-keys", secret=None, production=False)
    key = keys.current
    # The floor signs with the very same key.
    private = serialization.load_pem_private_key(key.to_pem().encode("ascii"), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = private.public_key()
    ecdsa = ec.ECDSA(hashes.SHA256())

    def issue() -> tuple[str, Any]:
        return issue_access_token(
            key, issuer=_ISSUER, audience=_AUDIENCE, client_id="svc_0123456789abcdefghijkl",
            sub="psub_0123456789abcdefghijkl", grant_id="gr_0123456789abcdefghijkl",
            authorization_details=_DETAILS, now=datetime.now(UTC),
            grant_expires_at=datetime.now(UTC) + timedelta(days=30))

    token, _ = issue()
    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    parsed = parse_jws(token, InvalidTokenError, "token")
    sig = _raw_signature(token)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, signing_input, ecdsa)  # the floor checks what we issued
    plain = keys.verification_keys()

    def verify_with(mapping: Any) -> Callable[[], object]:
        def verify() -> object:
            return verify_access_token(token, keys=mapping, issuer=_ISSUER,
                                       audience=_AUDIENCE, now=datetime.now(UTC))
        return verify

    verify, verify_plain = verify_with(keys), verify_with(plain)
    claims = verify()
    if getattr(claims, "grant_id", None) != parsed.claims["grant_id"]:
        raise RuntimeError("the issued token did not verify to its own claims")

    issue_rates: list[float] = []
    sign_rates: list[float] = []
    verify_us: list[float] = []
    floor_us: list[float] = []
    plain_us: list[float] = []
    for fn in (issue, verify, verify_plain):  # warm-up
        _per_second(fn, min(n, 200))
    for _ in range(repeats):
        sign_rates.append(_per_second(lambda: private.sign(signing_input, ecdsa), n))
        issue_rates.append(_per_second(issue, n))
        floor_us.append(1e6 / _per_second(lambda: public.verify(der, signing_input, ecdsa), n))
        verify_us.append(1e6 / _per_second(verify, n))
        plain_us.append(1e6 / _per_second(verify_plain, n))
    stat = f"best of {repeats} x {n:,}"
    return [
        Result("issue access token (ES256, in process)", "/s",
               best(issue_rates, higher_is_better=True), best(sign_rates, higher_is_better=True),
               "bare ECDSA P-256 sign", Goal(">=", 1000.0), stat, spread(issue_rates),
               [f"token of {len(token)} bytes: claims + JSON + python-jose sign"]),
        Result("verify access token (ES256, python-jose, in process)", "us",
               best(verify_us, higher_is_better=False), best(floor_us, higher_is_better=False),
               "bare ECDSA P-256 verify", Goal("<=", 100.0), stat, spread(verify_us),
               [f"keys as the app holds them (file-managed TokenKeys); with a plain "
                f"{{kid: jwk}} dict {best(plain_us, higher_is_better=False):.1f} us"]),
    ]


def _raw_signature(token: str) -> bytes:
    """The JWS signature: r || s, 32 bytes each (RFC 7518 §3.4)."""
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
