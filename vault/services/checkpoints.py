"""Publishing signed checkpoints so that every commit is covered within a second."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
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


class CheckpointPublisher:
    """A background thread that publishes a checkpoint whenever the ledger grows.

    It polls every `interval` seconds (so commits by other processes are covered too)
    and wakes at once when `nudge()` is called after a local commit.
    """

    def __init__(self, engine: Engine, signer: Signer, *, interval: float) -> None:
        self._engine = engine
        self._signer = signer
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        publish_checkpoint(self._engine, self._signer)  # never serve without one
        self._thread = threading.Thread(target=self._run, name="checkpoint-publisher",
                                        daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                published = publish_checkpoint(self._engine, self._signer)
                if published.new:
                    log.debug("published checkpoint at size %d", published.size)
            except Exception:  # keep publishing after a transient database error
                log.exception("checkpoint publishing failed; retrying")
