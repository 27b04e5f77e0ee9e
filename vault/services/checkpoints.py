"""Publishing signed checkpoints so that every commit is covered within a second."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.services.background import Periodic
from vault.storage.database import read_only

__all__ = ["CheckpointPublisher", "publish_checkpoint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    size: int
    note: str
    new: bool


def publish_checkpoint(engine: Engine, signer: Signer) -> Published:
    """Sign the current tree head unless the latest checkpoint already covers it.

    Safe to run from several processes at once: Ed25519 signatures are deterministic,
    so two publishers produce the same note and the second insert is ignored.
    """
    with read_only(engine).begin() as conn:
        ledger = SqlLedger(conn)
        head = ledger.tree_head()
        latest = ledger.latest_checkpoint()
    if latest is not None and latest[0] >= head.size:
        return Published(latest[0], latest[1], new=False)
    note = sign_checkpoint(Checkpoint(signer.name, head.size, head.root), signer)
    with engine.begin() as conn:
        SqlLedger(conn).save_checkpoint(head.size, head.root, note)
    return Published(head.size, note, new=True)


class CheckpointPublisher(Periodic):
    """A background thread that publishes a checkpoint whenever the ledger grows.

    It polls every `interval` seconds (so commits by other processes are covered too)
    and wakes at once when `nudge()` is called after a local commit.
    """

    def __init__(self, engine: Engine, signer: Signer, *, interval: float) -> None:
        super().__init__(lambda: _publish_and_log(engine, signer),
                         name="checkpoint-publisher", interval=interval, min_gap=interval)
        self._engine = engine
        self._signer = signer

    def start(self) -> None:
        publish_checkpoint(self._engine, self._signer)  # never serve without one
        super().start()


def _publish_and_log(engine: Engine, signer: Signer) -> None:
    published = publish_checkpoint(engine, signer)
    if published.new:
        log.debug("published checkpoint at size %d", published.size)
