"""What every `vault` command shares: settings, clean failures, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.errors import LedgerError
from vault.config import Settings
from vault.errors import VaultError

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
