"""Publishing signed checkpoints so that every commit is covered within a second."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import update
from sqlalchemy.engine import Engine

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Signer
from ledger.sqlstore import SqlLedger, checkpoints_table
from vault.services.background import Periodic
from vault.services.witnessing import NotWitnessed, Witnessing
from vault.storage.database import read_only

__all__ = ["CheckpointPublisher", "Published", "publish_checkpoint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    size: int
    note: str
    new: bool


def publish_checkpoint(engine: Engine, signer: Signer,
                       witnessing: Witnessing | None = None) -> Published:
    """Sign the current tree head unless the latest published checkpoint already covers it.

    Safe to run from several processes at once: Ed25519 signatures are deterministic,
    so two publishers produce the same note and the second insert is ignored.

    With witnesses, a checkpoint is published (saved, served, given to receipts) only
    with its quorum of cosignatures, the log's note followed by every cosignature line
    received. Until then the latest published one stays latest; NotWitnessed if none is.
    With a quorum of 0 the checkpoint is published at once and its cosignatures are
    added as they come, so no witness can delay the promise that commits are covered.
    """
    with read_only(engine).begin() as conn:
        ledger = SqlLedger(conn)
        head = ledger.tree_head()
        latest = ledger.latest_checkpoint()
    if latest is not None and latest[0] >= head.size:
        return Published(latest[0], latest[1], new=False)
    note = sign_checkpoint(Checkpoint(signer.name, head.size, head.root), signer)
    if witnessing is None or not witnessing.endpoints:
        _save(engine, head.size, head.root, note)
        return Published(head.size, note, new=True)
    if witnessing.quorum == 0:
        _save(engine, head.size, head.root, note)
    lines = witnessing.cosign(note, head.size, partial(_consistency_proof, engine))
    if witnessing.quorum == 0:
        if lines:
            with engine.begin() as conn:
                conn.execute(update(checkpoints_table)
                             .where(checkpoints_table.c.size == head.size)
                             .values(note=note + "".join(lines)))
        return Published(head.size, note + "".join(lines), new=True)
    if len(lines) < witnessing.quorum:
        log.debug("checkpoint at size %d has %d of its %d cosignatures: not published yet",
                    head.size, len(lines), witnessing.quorum)
        if latest is None:
            raise NotWitnessed("no checkpoint has its quorum of witness cosignatures yet")
        return Published(latest[0], latest[1], new=False)
    _save(engine, head.size, head.root, note + "".join(lines))
    return Published(head.size, note + "".join(lines), new=True)


def _save(engine: Engine, size: int, root: bytes, note: str) -> None:
    with engine.begin() as conn:
        SqlLedger(conn).save_checkpoint(size, root, note)


def _consistency_proof(engine: Engine, first: int, second: int) -> list[bytes]:
    with read_only(engine).begin() as conn:
        return SqlLedger(conn).consistency_proof(first, second)


class CheckpointPublisher(Periodic):
    """A background thread that publishes a checkpoint whenever the ledger grows.

    It polls every `interval` seconds (so commits by other processes are covered too)
    and wakes at once when `nudge()` is called after a local commit. While a checkpoint
    waits for its witnesses' quorum, each poll asks them again.
    """

    def __init__(self, engine: Engine, signer: Signer, *, interval: float,
                 witnessing: Witnessing | None = None) -> None:
        super().__init__(lambda: _publish_and_log(engine, signer, witnessing),
                         name="checkpoint-publisher", interval=interval, min_gap=interval)
        self._engine = engine
        self._signer = signer
        self.witnessing = witnessing

    def start(self) -> None:
        try:
            publish_checkpoint(self._engine, self._signer, self.witnessing)  # serve one
        except NotWitnessed:
            log.warning("starting without a checkpoint: the witnesses have not cosigned one")
        super().start()

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        if self.witnessing is not None:
            self.witnessing.close()


def _publish_and_log(engine: Engine, signer: Signer, witnessing: Witnessing | None) -> None:
    try:
        published = publish_checkpoint(engine, signer, witnessing)
    except NotWitnessed:
        return  # logged by the witnessing; the next poll asks again
    if published.new:
        log.debug("published checkpoint at size %d", published.size)
