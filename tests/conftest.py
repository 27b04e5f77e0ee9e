"""Shared fixtures: strict mode, a throwaway PostgreSQL server, and per-test databases.

With VAULT_TEST_STRICT=1 a missing external dependency (PostgreSQL binaries, a server
that will not start) fails the tests that need it; otherwise they are skipped, and the
reason shows in the `-ra` summary.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STRICT = os.environ.get("VAULT_TEST_STRICT") == "1"

_PG_GLOB_ROOT = Path("/usr/lib/postgresql")
_PG_USER = "vault"
_PG_DB = "vault"


def require(condition: bool, reason: str) -> None:
    """Go on if `condition` holds; otherwise skip (or fail under VAULT_TEST_STRICT=1)."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"{reason} (VAULT_TEST_STRICT=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


# -- PostgreSQL -------------------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.name)) or (0,)


def find_pg_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then the newest Debian layout."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        a, b = Path(initdb).resolve().parent, Path(pg_ctl).resolve().parent
        if a == b:
            return a
    if _PG_GLOB_ROOT.is_dir():
        versions = sorted(_PG_GLOB_ROOT.iterdir(), key=_version_key, reverse=True)
        for v in versions:
            bindir = v / "bin"
            if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
                return bindir
    return None


def _server_user() -> str | None:
    """The unprivileged user to run the server as when we are root (None: run as is)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty server log)"


@dataclass
class PgServer:
    bindir: Path
    base: Path
    user: str | None
    port: int = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.user is not None:
            runuser = shutil.which("runuser")
            if runuser:
                cmd = [runuser, "-u", self.user, "--", *cmd]
            else:
                cmd = ["su", self.user, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        proc = subprocess.run(
            cmd, cwd=self.base, capture_output=True, text=True, timeout=120, check=False
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed with exit code {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
                f"server log tail:\n{_tail(self.log)}"
            )
        return proc

    def init(self) -> None:
        self.run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", _PG_USER,
            "-E", "UTF8", "--no-locale", "--no-sync",
        )

    def start(self) -> None:
        """Start on a free loopback port (a few tries, in case another process takes it)."""
        last = ""
        for _ in range(3):
            self.port = _free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.base} -c max_connections=200"
            )
            proc = self.run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-w", "-t", "60", "-o", opts, "start", check=False,
            )
            if proc.returncode == 0:
                return
            last = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        raise RuntimeError(
            f"pg_ctl start failed 3 times\n{last}\nserver log tail:\n{_tail(self.log)}"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                     "stop", check=False)

    def url(self, dbname: str) -> str:
        return f"postgresql://{_PG_USER}@127.0.0.1:{self.port}/{dbname}"


def _admin_sql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session; the URL of its `vault` database."""
    bindir = find_pg_bindir()
    require(bindir is not None,
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
            f"{_PG_GLOB_ROOT}/*/bin")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require(False, "the psycopg driver is not installed")
    assert bindir is not None
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="vault-pg-"))
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)
    server = PgServer(bindir, base, user)
    try:
        try:
            server.init()
            server.start()
            _admin_sql(server.url("postgres"), f"CREATE DATABASE {_PG_DB}")
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            require(False, f"could not start a throwaway PostgreSQL server: {exc}")
        yield server.url(_PG_DB)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    _admin_sql(postgres_url, f"CREATE DATABASE {name}")
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        # FORCE ends connections a test left behind (e.g. of a killed child process).
        _admin_sql(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vault.db'}"
    return str(request.getfixturevalue("pg_database_url"))


def _give_schemathesis_items_their_own_ids(item: pytest.Item) -> None:
    """schemathesis names each operation's item `test[GET /path]`, but on pytest 9.2 its
    node id stays the bare test name, so every operation has the same id, and
    pytest-xdist, which schedules by id, would run one operation and drop the rest."""
    label = getattr(item, "operation_label", None)
    node_id = getattr(item, "_id", None)
    if label and node_id is not None and "[" not in item.nodeid and item.parent is not None:
        item._id = item.parent.id.child(item.originalname).with_params(label)  # type: ignore[attr-defined]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _give_schemathesis_items_their_own_ids(item)
        names = getattr(item, "fixturenames", ())
        if "postgres_url" in names or "pg_database_url" in names:
            item.add_marker(pytest.mark.postgres)
