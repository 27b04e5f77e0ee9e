"""Servers for the service-load benchmark: uvicorn subprocesses and a throwaway PostgreSQL.

Nothing here is measured. `Uvicorn` serves an app factory the way production does
(`uvicorn <module:factory> --factory --workers 2`), each in its own session so it
can be stopped with everything it started. `create_vault_app` is the vault's factory
as the benchmark serves it. `throwaway_postgres` makes a cluster in a temporary
directory with the PgServer helper of tests/conftest.py, as the tests do.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI

from vault.api.ratelimit import ClientRateLimiter
from vault.api.resource_routes import LIMITER_ATTRIBUTE
from vault.app import create_app
from vault.config import Settings

__all__ = [
    "WORKERS",
    "Uvicorn",
    "create_vault_app",
    "free_port",
    "limit_applied",
    "throwaway_postgres",
    "vault_env",
]

REPO = Path(__file__).resolve().parents[1]
WORKERS = 2
_STARTED = "Application startup complete"  # uvicorn logs it once per worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Uvicorn:
    """`uvicorn <app> --factory --workers 2` on 127.0.0.1:`port`, its output in `log`.

    Started at once; `wait_ready` waits until every worker has started its
    application, so several servers (and the set-up) can start side by side.
    """

    def __init__(self, app: str, *, port: int, env: dict[str, str], log: Path) -> None:
        self.app, self.port, self.log = app, port, log
        cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(WORKERS), "--no-access-log",
               "--log-level", "info", "--timeout-graceful-shutdown", "5"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count(_STARTED) < WORKERS:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.app} did not start:\n{_tail(self.log)}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its workers (Linux /proc; nan elsewhere).

        A machine shared with other work slows every rate down, but hardly changes the
        CPU a request costs: this is the figure to compare across runs.
        """
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        try:
            entries = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return math.nan
        for pid in entries:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            # fields[1] is the parent; [11] and [12] are user and system time (proc(5)).
            if int(pid) == self.proc.pid or int(fields[1]) == self.proc.pid:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()  # the supervisor stops its workers
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
            self.proc.wait()

    def __enter__(self) -> Uvicorn:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def vault_env(settings: Settings) -> dict[str, str]:
    """The VAULT_* variables that give a server process Settings equal to `settings`
    (the fields set explicitly; the rest come from the same environment either way)."""
    env: dict[str, str] = {}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is not None:
            env[f"VAULT_{name.upper()}"] = (str(value).lower() if isinstance(value, bool)
                                            else str(value))
    return env


def limit_applied(app: FastAPI, settings: Settings) -> bool:
    """Whether `app` holds the per-client rate limit `settings` asks for (the setup note
    says so: a bench capped by the limit would measure the limit)."""
    limiter = getattr(app.state, LIMITER_ATTRIBUTE, None)
    return (isinstance(limiter, ClientRateLimiter) and limiter.rate == settings.client_rate_limit
            and limiter.burst == settings.client_rate_burst)


def create_vault_app() -> FastAPI:
    """The vault's uvicorn factory: `vault.app.create_app()` with Settings from VAULT_*."""
    return create_app(Settings())


def _pg_user() -> str | None:
    """Who runs the server when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    return None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[tuple[str | None, str]]:
    """(URL of an empty database, "") on a new cluster in a temporary directory, removed
    afterwards; or (None, why not) when the server binaries or the test helper are
    missing."""
    try:  # by name: the tests' conftest is not a package of the project
        helpers = importlib.import_module("tests.conftest")
    except ImportError as exc:  # run from outside the repository, or without pytest
        yield None, f"cannot import the PgServer helper of tests/conftest.py ({exc})"
        return
    bindir = helpers.find_pg_bindir()
    if bindir is None:
        yield None, "no PostgreSQL server binaries (initdb, pg_ctl) found"
        return
    import psycopg

    user = _pg_user()
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)
    server = helpers.PgServer(bindir, base, user)
    try:
        server.init()
        server.start()
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE vault")
        yield server.url("vault"), ""
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
