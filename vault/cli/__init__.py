"""`vault`: run the vault and look after it (ARCHITECTURE §7)."""

from __future__ import annotations

import typer

from vault.cli.admin import citizen_app, db_app, keys_app, service_app
from vault.cli.catalog import catalog_app
from vault.cli.ledger import ledger_app
from vault.cli.serve import serve

__all__ = ["app", "main"]

app = typer.Typer(
    help="Citizen Data Vault: encrypted personal data, grants and a verifiable ledger.",
    no_args_is_help=True, add_completion=False,
)
app.command()(serve)
app.add_typer(ledger_app, name="ledger")
app.add_typer(service_app, name="service")
app.add_typer(citizen_app, name="citizen")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")


def main() -> None:
    app()
