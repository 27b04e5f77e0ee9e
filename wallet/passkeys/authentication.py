"""Using a passkey (WebAuthn L3 §7.2): signing in, and signing approvals.

Both run the same checks: the credential is registered (and, for approvals, is the
citizen's own), the client data is a `webauthn.get` over the expected challenge from
one of the vault's origins, the authenticator answered for our RP ID with user presence
and user verification, the signature verifies (py_webauthn) under the stored COSE key,
and the signature counter goes up. The counter is then stored with a compare-and-set,
so two uses racing with the same counter cannot both pass.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlmodel import Session, col
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from ledger.entry import utc_now
from vault.services.approvals import ApprovalProof
from vault.storage.tables import PasskeyRow
from wallet.errors import PasskeyRejected
from wallet.passkeys.challenges import CHALLENGE_TTL, new_challenge
from wallet.passkeys.offline import (
    AssertionRejected,
    b64url_decode,
    b64url_encode,
    check_authenticator_data,
    check_client_data,
    parse_authenticator_data,
)
from wallet.passkeys.registration import user_handle
from wallet.passkeys.relying_party import RelyingParty

__all__ = [
    "PasskeyApprovalVerifier",
    "approval_options",
    "authentication_options",
    "proof_from_browser",
    "verify_sign_in",
]

_TIMEOUT_MS = int(CHALLENGE_TTL.total_seconds() * 1000)


def authentication_options(rp: RelyingParty) -> tuple[dict[str, Any], bytes]:
    """Options for a username-less sign in (no allowed credentials: the device offers
    its discoverable passkeys for this site) and their challenge."""
    challenge = new_challenge()
    options = generate_authentication_options(
        rp_id=rp.rp_id, challenge=challenge, timeout=_TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json_dict(options), challenge


def approval_options(rp: RelyingParty, *, challenge: bytes, allow: list[str]) -> dict[str, Any]:
    """Options asking one of the citizen's passkeys (`allow`, base64url credential ids)
    to sign `challenge`: a grant's terms hash, or an action challenge."""
    options = generate_authentication_options(
        rp_id=rp.rp_id, challenge=challenge, timeout=_TIMEOUT_MS,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=b64url_decode(c, what="a credential id"))
            for c in allow],
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json_dict(options)


@dataclass(frozen=True, slots=True)
class _Assertion:
    credential_id: str
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes
    user_handle: bytes | None

    def to_json(self) -> dict[str, Any]:
        response = {"clientDataJSON": b64url_encode(self.client_data_json),
                    "authenticatorData": b64url_encode(self.authenticator_data),
                    "signature": b64url_encode(self.signature)}
        return {"id": self.credential_id, "rawId": self.credential_id,
                "type": "public-key", "response": response}


def _from_browser(credential: Mapping[str, Any]) -> _Assertion:
    """The assertion in the JSON shape the browser sends (PublicKeyCredential.toJSON)."""
    try:
        if not isinstance(credential, Mapping) or credential.get("type") != "public-key":
            raise AssertionRejected("malformed", "the passkey response is not a public-key "
                                    "credential")
        response = credential.get("response")
        if not isinstance(response, Mapping):
            raise AssertionRejected("malformed", "the passkey response has no response part")
        cred_id = credential.get("id")
        raw = b64url_decode(credential.get("rawId"), what="the credential's rawId")
        if cred_id != b64url_encode(raw):
            raise AssertionRejected("malformed", "the credential's id and rawId differ")
        handle = response.get("userHandle")
        return _Assertion(
            credential_id=cred_id,
            authenticator_data=b64url_decode(response.get("authenticatorData"),
                                             what="authenticator data"),
            client_data_json=b64url_decode(response.get("clientDataJSON"), what="client data"),
            signature=b64url_decode(response.get("signature"), what="the signature"),
            user_handle=None if handle is None else b64url_decode(handle, what="userHandle"))
    except AssertionRejected as exc:
        raise PasskeyRejected(exc.reason, str(exc)) from None


def proof_from_browser(credential: Mapping[str, Any]) -> ApprovalProof:
    """An approval proof from the assertion JSON a browser sent (PublicKeyCredential
    .toJSON); `PasskeyRejected` if it is not one. The checks come after, in the vault."""
    a = _from_browser(credential)
    return ApprovalProof(credential_id=a.credential_id,
                         authenticator_data=b64url_encode(a.authenticator_data),
                         client_data_json=b64url_encode(a.client_data_json),
                         signature=b64url_encode(a.signature))


def _from_proof(proof: ApprovalProof) -> _Assertion:
    try:
        b64url_decode(proof.credential_id, what="the credential id")
        return _Assertion(
            credential_id=proof.credential_id,
            authenticator_data=b64url_decode(proof.authenticator_data,
                                             what="authenticator data"),
            client_data_json=b64url_decode(proof.client_data_json, what="client data"),
            signature=b64url_decode(proof.signature, what="the signature"),
            user_handle=None)
    except AssertionRejected as exc:
        raise PasskeyRejected(exc.reason, str(exc)) from None


# An unknown passkey may never have been registered, or may be gone: removed, or its
# account deleted. The vault cannot tell which without keeping something about deleted
# accounts (it keeps nothing), so the words cover both and say what to do next.
_UNKNOWN_AT_SIGN_IN = (
    "this passkey is not registered with the vault, or is no longer: the account it "
    "was made for may have been deleted, or the passkey removed from it. To start "
    "again, create a new account with a new passkey")
_UNKNOWN_FOR_APPROVAL = (
    "this passkey is not registered with the vault, or is no longer: it may have been "
    "removed from your account. Use another of your passkeys")


def _registered(session: Session, credential_id: str, *, unknown: str) -> PasskeyRow:
    row = session.get(PasskeyRow, credential_id)
    if row is None:
        raise PasskeyRejected("unknown_credential", unknown)
    return row


def _verify(
    session: Session, rp: RelyingParty, row: PasskeyRow, assertion: _Assertion, *,
    challenge: bytes, now: datetime,
) -> None:
    """Every check of §7.2 from the client data on, then the counter compare-and-set."""
    try:
        check_client_data(assertion.client_data_json, expected_type="webauthn.get",
                          expected_challenge=challenge, origins=rp.origins)
        auth = parse_authenticator_data(assertion.authenticator_data)
        check_authenticator_data(auth, rp_id=rp.rp_id)
    except AssertionRejected as exc:
        raise PasskeyRejected(exc.reason, str(exc)) from None
    old, new = row.sign_count, auth.sign_count
    # §7.2 step 22: a counter of 0 on both sides means the device does not count;
    # otherwise it must go strictly up, or this may be a cloned authenticator.
    if (old or new) and new <= old:
        raise PasskeyRejected(
            "counter_regression",
            f"the passkey's use counter went from {old} to {new} instead of up; it may "
            "have been copied, so it was refused")
    try:
        verify_authentication_response(
            credential=assertion.to_json(), expected_challenge=challenge,
            expected_rp_id=rp.rp_id, expected_origin=list(rp.origins),
            credential_public_key=row.public_key, credential_current_sign_count=old,
            require_user_verification=True)
    except WebAuthnException as exc:
        # Everything else was checked above with the same inputs: what is left is the
        # signature itself, or authenticator data that does not parse past its header.
        if "signature" in str(exc).lower():
            raise PasskeyRejected(
                "bad_signature", "the signature does not verify under the registered "
                "passkey") from None
        raise PasskeyRejected("malformed", f"the passkey response is not valid: {exc}") \
            from None
    stmt = (update(PasskeyRow)
            .where(col(PasskeyRow.credential_id) == row.credential_id,
                   col(PasskeyRow.sign_count) == old)
            .values(sign_count=new, last_used_at=now))
    # Core, not the ORM's bulk UPDATE: a third of the cost of a verification otherwise.
    result = cast("CursorResult[Any]", session.connection().execute(stmt))
    if result.rowcount != 1:
        raise PasskeyRejected(
            "counter_regression",
            "this passkey was used for something else at the same moment; try again")


def verify_sign_in(
    session: Session, rp: RelyingParty, *, credential: Mapping[str, Any],
    expected_challenge: bytes, now: datetime,
) -> str:
    """The citizen id a username-less sign in proves, or `PasskeyRejected`.

    `expected_challenge` comes from `ChallengeStore.take`. The sign counter update is
    made in `session`; the caller commits it.
    """
    assertion = _from_browser(credential)
    row = _registered(session, assertion.credential_id, unknown=_UNKNOWN_AT_SIGN_IN)
    # §7.2 step 6: nobody was named before the ceremony, so the authenticator must say
    # whose passkey it is, and that must be the passkey's owner.
    if assertion.user_handle is None or not hmac.compare_digest(
        assertion.user_handle, user_handle(row.citizen_id)
    ):
        raise PasskeyRejected(
            "user_handle_mismatch",
            "the passkey did not name the account it was registered for")
    _verify(session, rp, row, assertion, challenge=expected_challenge, now=now)
    return row.citizen_id


class PasskeyApprovalVerifier:
    """The vault's `ApprovalVerifier`: one of the citizen's own passkeys, user-verified,
    signed exactly this challenge (a terms hash or an action challenge)."""

    def __init__(self, rp: RelyingParty, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.rp = rp
        self._clock = clock

    def verify(
        self, session: Session, *, citizen_id: str, challenge: bytes, proof: ApprovalProof
    ) -> None:
        assertion = _from_proof(proof)
        row = _registered(session, assertion.credential_id, unknown=_UNKNOWN_FOR_APPROVAL)
        if row.citizen_id != citizen_id:
            raise PasskeyRejected("other_citizen",
                                  "this passkey belongs to someone else, not to you")
        _verify(session, self.rp, row, assertion, challenge=challenge, now=self._clock())
