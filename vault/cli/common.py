"""What every `vault` command shares: settings, finding the vault, clean failures,
progress bars."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ledger.errors import LedgerError
from vault.config import Settings
from vault.errors import VaultError
from vault.storage.database import make_engine
from vault.storage.schema import current_revision

out = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Keys and the SQLite file.")]
Database = Annotated[str | None, typer.Option("--database", help="Database URL.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        err.print(f"[red]error:[/] {'.'.join(map(str, first['loc']))}: {first['msg']}")
        raise typer.Exit(2) from None


def redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


_POINT_ELSEWHERE = (
    "Run the command where the vault keeps its data, or say where that is with "
    "--data-dir DIR (or VAULT_DATA_DIR), or --database URL (or VAULT_DATABASE_URL). "
    "`vault serve` and `vault db upgrade` make a new vault.")


def _no_vault(where: str) -> typer.Exit:
    err.print(f"[red]error:[/] no vault {where}.\n{_POINT_ELSEWHERE}", soft_wrap=True)
    return typer.Exit(2)


def _sqlite_revision(path: Path) -> str | None:
    """The schema revision of an existing SQLite file, opened read-only: nothing is
    created or changed (not even the -wal and -shm files a read-write open makes)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def require_vault(cfg: Settings) -> None:
    """Exit 2, creating nothing, unless `cfg` names an existing vault's database.

    Every command but `serve` and `db upgrade` starts with this: run from the wrong
    folder, `vault service list` once made an empty vault there and printed nothing.
    """
    try:
        url = make_url(cfg.database)
    except ArgumentError:
        err.print(f"[red]error:[/] the database URL is not valid: {redact(cfg.database)}")
        raise typer.Exit(2) from None
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").absolute()
        if not path.is_file():
            data = cfg.data_dir.absolute()
            raise _no_vault(f"at {data} (there is no database {path})" if path.parent == data
                            else f"at {path} (there is no such database file)")
        if _sqlite_revision(path) is None:
            raise _no_vault(f"in {path} (the file holds no vault schema)")
        return
    engine = make_engine(cfg.database)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's error, when there is one
        err.print(f"[red]error:[/] cannot open the database {redact(cfg.database)}: "
                  f"{(str(cause).strip().splitlines() or [type(cause).__name__])[0]}",
                  soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if revision is None:
        raise _no_vault(f"in the database {redact(cfg.database)} (it holds no vault schema)")


@contextmanager
def fail_cleanly() -> Iterator[None]:
    """Vault and ledger errors end the command with their message and exit code 2."""
    try:
        yield
    except (VaultError, LedgerError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def progress(total: int, label: str, *, threshold: int = 50_000) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True,
                    disable=total < threshold or not err.is_terminal)
