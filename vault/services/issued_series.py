"""An issuer appends a batch to a series (`POST /v1/records/{category}/items`, ARCHITECTURE §8).

The steps of `vault.services.issued.write_issued`, with a batch's own rules
(`vault.services.series`): the write grant, locked and live; the JWS (up to
`MAX_BATCH_JWS_BYTES`, one signature for the batch); the jti (the same JWS again gets the
same answer and writes nothing); every item checked, none from the future (one bad item
and nothing is written); the batch stored as the series' next version with its JWS, and
`record.written` with `"items": N`; the jti remembered. A batch that loses a race for its
version (or jti) to another grant's write is made again, as a single record is
(`issued.unless_raced`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from vault.domain.errors import InvalidValue
from vault.oauth.record_jws import verify_record
from vault.services.context import VaultContext, unit_of_work
from vault.services.issued import (
    RecordInvalidValue,
    Written,
    remember_jti,
    seen_jti,
    store_issued,
    unless_raced,
    writer_in,
)
from vault.services.series import MAX_BATCH_JWS_BYTES, NotASeries, batch_items, is_series

__all__ = ["append_issued"]


def append_issued(ctx: VaultContext, *, service_id: str, grant_id: str,
                  token_family: str | None, category: str, record: Any) -> Written:
    """`POST /v1/records/{category}/items`: an issuer's batch, one version of the series
    (see the module docstring). The same JWS again gets the same answer, writing nothing."""
    if not is_series(category):
        raise NotASeries(f"{category} is not a series: write its value with "
                         f"PUT /v1/records/{category}")
    return unless_raced(partial(_append_once, ctx, service_id=service_id, grant_id=grant_id,
                                token_family=token_family, category=category,
                                record=record))


def _append_once(ctx: VaultContext, *, service_id: str, grant_id: str,
                 token_family: str | None, category: str, record: Any) -> Written:
    with unit_of_work(ctx) as work:
        grant = writer_in(work, service_id=service_id, grant_id=grant_id,
                          token_family=token_family, category=category)
        verified = verify_record(record, expected_issuer=grant.service_id, jwks=grant.jwks,
                                 expected_category=category, now=work.now,
                                 max_bytes=MAX_BATCH_JWS_BYTES)
        before = seen_jti(work, grant, verified)
        if before is not None:
            return Written.from_answer(before)
        try:
            items, _ = batch_items(category, verified.value, work.now)
        except InvalidValue as exc:
            raise RecordInvalidValue(str(exc)) from None
        written = store_issued(ctx, work, grant, verified, items,
                               entry={"items": len(items)})
        remember_jti(work, grant, verified, written.answer())
        return written
