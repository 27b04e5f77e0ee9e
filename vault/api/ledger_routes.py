"""GET /ledger/*: checkpoint, key, entries, openings and proofs (ARCHITECTURE §2, §10)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from ledger.sqlstore import SqlLedger
from ledger.store import MAX_PAGE
from vault.api.deps import Auditor, AuditorKey, State
from vault.api.errors import problem_response
from vault.errors import InvalidRequest
from vault.services.checkpoints import publish_checkpoint
from vault.storage.database import read_only

router = APIRouter(prefix="/ledger", tags=["ledger"])

# Indices beyond 2**62 cannot exist; bounding them keeps database integers in range.
_MAX_INDEX = 2**62
Index = Annotated[int, Query(ge=0, le=_MAX_INDEX)]
Size = Annotated[int, Query(ge=1, le=_MAX_INDEX)]
NDJSON = "application/x-ndjson"
#: What the auditor-only routes answer without a valid key, unless the ledger is public.
_NO_AUDITOR: dict[int | str, dict[str, Any]] = {
    401: problem_response("No valid auditor API key (the ledger is not public)",
                          {"WWW-Authenticate": "Bearer challenge"})}


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get("/checkpoint", response_class=PlainTextResponse,
            summary="The latest published checkpoint (C2SP signed note, with the witnesses' "
                    "cosignatures)",
            responses={503: problem_response(
                "No checkpoint has its quorum of witness cosignatures yet (not-witnessed)",
                {"Retry-After": "Seconds to wait before asking again"})})
def checkpoint(state: State) -> PlainTextResponse:
    with read_only(state.engine).begin() as conn:
        latest = SqlLedger(conn).latest_checkpoint()
    # The publisher signs one before the app serves; be safe anyway.
    note = latest[1] if latest else \
        publish_checkpoint(state.engine, state.signer, state.ctx.witnessing).note
    return PlainTextResponse(note, headers={"Cache-Control": "no-store"})


@router.get("/key", response_class=PlainTextResponse, summary="The C2SP verifier key")
def key(state: State) -> PlainTextResponse:
    return PlainTextResponse(str(state.signer.verifier()) + "\n")


@router.get("/entries", dependencies=[Auditor], summary="Entries as NDJSON, exact hashed bytes",
            response_class=Response, responses={200: {"content": {NDJSON: {}}}, **_NO_AUDITOR})
def entries(
    state: State,
    start: Annotated[int, Query(ge=0, le=_MAX_INDEX)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    with read_only(state.engine).begin() as conn:
        lines = SqlLedger(conn).entries(start, limit)
    body = b"".join(line + b"\n" for line in lines)
    return Response(body, media_type=NDJSON)


@router.get("/openings", dependencies=[AuditorKey],
            summary="Openings of sealed entries as NDJSON: {seq, salt, private}",
            response_class=Response, responses={200: {"content": {NDJSON: {}}}, 401:
                problem_response("No valid auditor API key (openings always need one)",
                                 {"WWW-Authenticate": "Bearer challenge"})})
def openings(
    state: State,
    start: Annotated[int, Query(ge=0, le=_MAX_INDEX)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """The openings of the sealed entries among [start, start + limit): fewer lines than
    `limit` where entries are v1 (they have none). Always behind an auditor key: an
    opening holds the citizen's pseudonym and passkey, even when the ledger is public."""
    with read_only(state.engine).begin() as conn:
        lines = SqlLedger(conn).openings(start, limit)
    return Response(b"".join(line + b"\n" for line in lines), media_type=NDJSON)


@router.get("/proofs/inclusion", dependencies=[Auditor], summary="RFC 9162 inclusion proof",
            responses=_NO_AUDITOR)
def inclusion(state: State, index: Index, tree_size: Size) -> dict[str, Any]:
    if index >= tree_size:
        raise InvalidRequest(f"index {index} is not inside a tree of size {tree_size}")
    with read_only(state.engine).begin() as conn:
        hashes = SqlLedger(conn).inclusion_proof(index, tree_size)
    return {"index": index, "tree_size": tree_size, "hashes": _b64(hashes)}


@router.get("/proofs/consistency", dependencies=[Auditor],
            summary="RFC 9162 consistency proof", responses=_NO_AUDITOR)
def consistency(
    state: State,
    first: Annotated[int, Query(alias="from", ge=1, le=_MAX_INDEX)],
    second: Annotated[int, Query(alias="to", ge=1, le=_MAX_INDEX)],
) -> dict[str, Any]:
    if first > second:
        raise InvalidRequest(f"from ({first}) must not be greater than to ({second})")
    with read_only(state.engine).begin() as conn:
        hashes = SqlLedger(conn).consistency_proof(first, second)
    return {"from": first, "to": second, "hashes": _b64(hashes)}
