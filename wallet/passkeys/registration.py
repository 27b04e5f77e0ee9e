"""Creating a passkey (WebAuthn L3 §7.1) and recording it, on the ledger too.

Every passkey is discoverable (sign in needs no user name) and user-verified; the vault
accepts ES256 (P-256), EdDSA (Ed25519) and RS256 (RSA 2048 to 4096 bits, the one some
Windows Hello TPMs make) keys and asks for no attestation: it needs to know the key,
not the maker of the device. Each registration appends
`passkey.registered` with the credential id and COSE public key, so every later
approval can be checked against it from the ledger alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from webauthn import generate_registration_options, verify_registration_response
from webauthn.helpers import options_to_json_dict, parse_cbor, parse_registration_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from vault.crypto import envelope
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, unit_of_work
from vault.services.records import data_key
from vault.storage.tables import PasskeyRow
from wallet.errors import InvalidLabel, PasskeyRejected
from wallet.passkeys.challenges import CHALLENGE_TTL, new_challenge
from wallet.passkeys.offline import (
    AssertionRejected,
    b64url_decode,
    b64url_encode,
    check_authenticator_data,
    check_client_data,
    load_public_key,
    parse_authenticator_data,
)
from wallet.passkeys.relying_party import RelyingParty

__all__ = [
    "LABEL_CATEGORY",
    "MAX_LABEL_LENGTH",
    "add_passkey",
    "check_label",
    "label_ad",
    "register_passkey",
    "registration_options",
    "user_handle",
]

MAX_LABEL_LENGTH = 60
#: The "category" in the associated data of a sealed passkey label.
LABEL_CATEGORY = "passkey.label"
# WebAuthn L3 §5.4.3 (user.id at most 64 bytes), §6.1 (credential id at most 1023 bytes).
_MAX_USER_HANDLE = 64
_MAX_CREDENTIAL_ID = 1023
# In order of preference (WebAuthn L3 §5.4, pubKeyCredParams): ES256, which every
# platform makes; EdDSA; then RS256 for authenticators that can do nothing else.
# RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257), not PSS (-37): offline.py
# checks it so, and refuses any other algorithm in a stored key.
_ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA,
               COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256]


def user_handle(citizen_id: str) -> bytes:
    """The WebAuthn user handle of a citizen's passkeys: the random citizen id.

    Sign-in checks that the handle an authenticator returns is its owner's.
    """
    handle = citizen_id.encode("utf-8")
    if not 0 < len(handle) <= _MAX_USER_HANDLE:
        raise ValueError("a WebAuthn user handle is 1 to 64 bytes")
    return handle


def registration_options(
    rp: RelyingParty, *, user_id: bytes, user_name: str, exclude: list[str]
) -> tuple[dict[str, Any], bytes]:
    """Options for `navigator.credentials.create()` (JSON-ready) and their challenge.

    `user_id` is the citizen's `user_handle`; `user_name` is what the device shows in
    its list of passkeys; `exclude` lists the citizen's credential ids (base64url) so
    one device does not register twice. Keep the challenge with `ChallengeStore.put`.
    """
    challenge = new_challenge()
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.rp_name,
        user_id=user_id,
        user_name=user_name,
        user_display_name=user_name,
        challenge=challenge,
        timeout=int(CHALLENGE_TTL.total_seconds() * 1000),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=b64url_decode(c, what="an excluded credential id"))
            for c in exclude
        ],
        supported_pub_key_algs=list(_ALGORITHMS),
    )
    return options_to_json_dict(options), challenge


def check_label(label: str) -> str | None:
    """A passkey's name as kept: trimmed, at most 60 characters, no control characters;
    None for no name."""
    label = label.strip()
    if not label:
        return None
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidLabel(f"a passkey name can be at most {MAX_LABEL_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in label):
        raise InvalidLabel("a passkey name cannot hold control or invisible characters")
    return label


def label_ad(*, citizen_id: str, credential_id: str) -> bytes:
    """Associated data binding a sealed label to its citizen and passkey."""
    return envelope.record_ad(citizen_id=citizen_id, record_id=credential_id,
                              category=LABEL_CATEGORY, version=1)


def _rejected(exc: AssertionRejected) -> PasskeyRejected:
    return PasskeyRejected(exc.reason, str(exc))


def _parse(credential: Mapping[str, Any]) -> RegistrationCredential:
    if not isinstance(credential, Mapping):
        raise PasskeyRejected("malformed", "the passkey response is not a JSON object")
    try:
        return parse_registration_credential_json(dict(credential))
    except WebAuthnException as exc:
        raise PasskeyRejected("malformed", f"the passkey response is not valid: {exc}") from None


def _check_parts(rp: RelyingParty, parsed: RegistrationCredential, challenge: bytes) -> None:
    """Our own checks first, for a precise message (py_webauthn repeats them)."""
    try:
        check_client_data(parsed.response.client_data_json, expected_type="webauthn.create",
                          expected_challenge=challenge, origins=rp.origins)
        try:
            auth_data = parse_cbor(parsed.response.attestation_object)["authData"]
        except Exception:  # untrusted CBOR: any failure is a malformed response
            raise AssertionRejected("malformed", "the attestation object is not valid CBOR")\
                from None
        if not isinstance(auth_data, bytes):
            raise AssertionRejected("malformed", "the attestation object has no authData")
        check_authenticator_data(parse_authenticator_data(auth_data), rp_id=rp.rp_id)
    except AssertionRejected as exc:
        raise _rejected(exc) from None


def register_passkey(
    work: Work,
    rp: RelyingParty,
    *,
    citizen_id: str,
    credential: Mapping[str, Any],
    expected_challenge: bytes,
    label: str,
    data_key: bytes,
) -> PasskeyRow:
    """Verify a `navigator.credentials.create()` response and keep the new passkey.

    `expected_challenge` comes from `ChallengeStore.take`; `data_key` is the citizen's
    (unwrapped) key, which seals the label. Raises `PasskeyRejected`, `InvalidLabel`
    or `vault.errors.NotFound` (no such citizen). The ledger entry holds the citizen's
    pseudonym, the credential id, the public key and its algorithm: no label, no name.
    """
    kept_label = check_label(label)
    citizen = get_citizen(work.session, citizen_id)
    parsed = _parse(credential)
    _check_parts(rp, parsed, expected_challenge)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=expected_challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
            supported_pub_key_algs=list(_ALGORITHMS),
        )
    except WebAuthnException as exc:
        unsupported = str(exc).startswith("Unsupported credential public key alg")
        reason = "unsupported_algorithm" if unsupported else "malformed"
        raise PasskeyRejected(reason, f"the new passkey was refused: {exc}") from None
    try:
        alg, _ = load_public_key(verified.credential_public_key)
    except AssertionRejected as exc:
        raise _rejected(exc) from None
    if len(verified.credential_id) > _MAX_CREDENTIAL_ID:
        raise PasskeyRejected("malformed", "the credential id is longer than 1023 bytes")
    credential_id = b64url_encode(verified.credential_id)
    if work.session.get(PasskeyRow, credential_id) is not None:
        raise PasskeyRejected("already_registered", "this passkey is registered already")
    transports = list(dict.fromkeys(t.value for t in parsed.response.transports or []))
    sealed = None if kept_label is None else envelope.seal(
        data_key, kept_label.encode("utf-8"),
        ad=label_ad(citizen_id=citizen_id, credential_id=credential_id))
    row = PasskeyRow(
        credential_id=credential_id, citizen_id=citizen_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        label_sealed=sealed, transports=transports, created_at=work.now, last_used_at=None)
    work.session.add(row)
    work.session.flush()
    work.ledger.append("passkey.registered", {
        "subject": citizen.subject, "credential_id": credential_id,
        "public_key": b64url_encode(verified.credential_public_key), "alg": alg})
    return row


def add_passkey(
    ctx: VaultContext,
    rp: RelyingParty,
    *,
    citizen_id: str,
    credential: Mapping[str, Any],
    expected_challenge: bytes,
    label: str,
) -> PasskeyRow:
    """`register_passkey` in a transaction of its own, unwrapping the citizen's key."""
    with unit_of_work(ctx) as work:
        key = data_key(ctx, get_citizen(work.session, citizen_id))
        return register_passkey(work, rp, citizen_id=citizen_id, credential=credential,
                                expected_challenge=expected_challenge, label=label,
                                data_key=key)
