"""One way to run vault work in the background: a daemon thread on a timer, with a nudge."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Periodic"]

log = logging.getLogger(__name__)


class Periodic:
    """Runs `task` every `interval` seconds, and at once when `nudge()` is called.

    A failing run is logged and the next one goes ahead (a database that was away may be
    back). `stop()` wakes the thread and waits for it; it never runs `task` again.
    """

    def __init__(self, task: Callable[[], object], *, name: str, interval: float,
                 min_gap: float = 0.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._task = task
        self._name = name
        self._interval = interval
        self._min_gap = min_gap
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._task()
            except Exception:
                log.exception("%s failed; trying again later", self._name)
            if self._min_gap > 0:
                self._stop.wait(self._min_gap)  # nudges meanwhile are coalesced
