"""The public/private table of ledger v2 and the commitment to the private part."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.errors import EncodingError
from ledger.sealing import ERASED, PUBLIC_FIELDS, SALT_SIZE, commitment, split

_PER_CITIZEN = {"subject", "actor", "record_id", "version", "versions", "credential_id",
                "public_key", "authenticator_data", "client_data_json", "signature",
                "user_handle", "commitment", "assertion"}


def test_nothing_per_citizen_is_ever_public() -> None:
    for kind, shown in PUBLIC_FIELDS.items():
        if shown is not None:
            assert not shown & _PER_CITIZEN, kind


def test_a_grant_request_shows_its_terms_and_seals_its_subject() -> None:
    body = {"grant_id": "gr_1", "service_id": "svc_1", "subject": "sub_1",
            "terms": {"purpose": "p"}, "terms_hash": "h"}
    public, private = split("grant.requested", body)
    assert private == {"subject": "sub_1"}
    assert public == {k: v for k, v in body.items() if k != "subject"}


def test_an_erasure_seals_the_grant_and_service_it_ended() -> None:
    body = {"grant_id": "gr_1", "service_id": "svc_1", "subject": "sub_1",
            "reason": ERASED, "asked": "2026-11", "from": "approved"}
    public, private = split("grant.revoked", body)
    assert public == {"reason": ERASED, "asked": "2026-11", "from": "approved"}
    assert private == {"grant_id": "gr_1", "service_id": "svc_1", "subject": "sub_1"}


def test_service_entries_are_wholly_public_and_unknown_kinds_wholly_private() -> None:
    body = {"service_id": "svc_1", "name": "Roads"}
    assert split("service.registered", body) == (body, {})
    assert split("something.new", body) == ({}, body)


@given(st.dictionaries(st.sampled_from(sorted(_PER_CITIZEN | {"grant_id", "service_id",
                                                                 "category", "reason"})),
                       st.text(max_size=8)),
       st.sampled_from([*sorted(PUBLIC_FIELDS), "other.kind"]))
def test_split_loses_and_duplicates_nothing(body: dict[str, str], kind: str) -> None:
    public, private = split(kind, body)
    assert not public.keys() & private.keys()
    assert {**public, **private} == body


def test_the_commitment_is_sha256_of_salt_and_canonical_json() -> None:
    salt = bytes(range(SALT_SIZE))
    private = {"subject": "sub_1", "b": [1, 2]}
    assert commitment(salt, private) == hashlib.sha256(
        salt + b'{"b":[1,2],"subject":"sub_1"}').digest()
    assert canonical_json(private) == b'{"b":[1,2],"subject":"sub_1"}'
    assert commitment(bytes(SALT_SIZE), private) != commitment(salt, private)
    with pytest.raises(EncodingError):
        commitment(b"short", private)


def test_every_grant_step_the_vault_writes_shows_its_grant() -> None:
    """A grant step missing from the table would be wholly sealed, and transparency could
    not count it (grant.lapsed once was: lapsed grants stayed "requested" in the counts)."""
    from vault.domain.grants import ENTRY_KIND

    for kind in ENTRY_KIND.values():
        assert PUBLIC_FIELDS.get(kind) is not None and "grant_id" in PUBLIC_FIELDS[kind], kind
