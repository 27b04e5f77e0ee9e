"""The witness over HTTP (C2SP tlog-witness): ``POST /add-checkpoint`` and the monitoring
``GET /<origin hash>/checkpoint``; ``GET /healthz`` for launchers.

The only module of the ledger package that imports a web framework (Starlette); the vault
never imports it. Refusals the spec gives a body for (409) answer that body; the others
answer RFC 9457 problem details, since the spec names only their status.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ledger.witness.errors import BadRequest, SizeConflict, WitnessError
from ledger.witness.request import MAX_BODY
from ledger.witness.witness import Witness

__all__ = ["TLOG_SIZE", "create_witness_app"]

#: The content type of a 409 answer's body, the size the witness holds (tlog-witness).
TLOG_SIZE = "text/x.tlog.size"
log = logging.getLogger("ledger.witness")

_TITLES = {400: "Bad request", 403: "Checkpoint not signed by the log",
           404: "Unknown log", 409: "Old size conflict", 422: "Checkpoint not consistent"}


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": _TITLES.get(status, "Error"),
                         "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json")


def create_witness_app(witness: Witness) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _problem(400, str(BadRequest(f"body is larger than {MAX_BODY} bytes")))
        try:
            # SQLite and fsync block: off the event loop.
            cosigned = await run_in_threadpool(witness.add_checkpoint, body)
        except SizeConflict as e:
            return PlainTextResponse(f"{e.size}\n", status_code=409, media_type=TLOG_SIZE)
        except WitnessError as e:
            if e.status == 422:
                log.warning("refused an inconsistent checkpoint: %s", e)
            return _problem(e.status, str(e))
        log.info("cosigned %s at size %d", cosigned.origin, cosigned.size)
        return PlainTextResponse(cosigned.lines)

    async def checkpoint(request: Request) -> Response:
        note = await run_in_threadpool(witness.checkpoint, request.path_params["origin_hash"])
        if note is None:
            return _problem(404, "this witness has cosigned no checkpoint of that log")
        return PlainTextResponse(note, headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(routes=[
        Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/{origin_hash:str}/checkpoint", checkpoint, methods=["GET"]),
    ])
