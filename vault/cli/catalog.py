"""`vault catalog list`: every purpose, category and derived answer a service can be
registered with, and the words citizens read for each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlmodel import Session

from vault.cli.common import Database, DataDir, Json, out, require_vault, settings
from vault.domain.codes import Code, category_codes, derived_codes, purpose_codes

catalog_app = typer.Typer(help="The codes services are registered with.", no_args_is_help=True)

_PARTS = (("purposes", "Purposes (--purpose), with their lawful basis", purpose_codes),
          ("categories", "Categories of data (--category; issued by: --issues)",
           category_codes),
          ("derived", "Derived yes/no answers (--derived)", derived_codes))


def _doc(code: Code, held: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {"code": code.code, "words": code.words, **({"more": code.more} if code.more else {}),
            **({"issued_by": code.issued_by} if code.issued_by else {}),
            **({"issued_only": True} if code.issued_only else {}),
            **({"held_at_source": held[code.code]} if code.code in held else {})}


def _words(code: Code, held: dict[str, dict[str, str]]) -> str:
    more = [code.more] if code.more else []
    if code.issued_by:
        more.append(f"Issued by {code.issued_by} (a service registered with --issues).")
    if code.code in held:
        h = held[code.code]
        more.append(f"Held at source by {h['name']} ({h['client_id']}): never stored here.")
    return "\n".join([code.words, *(f"[dim]{m}[/]" for m in more)])


def _held(database: str | None, data_dir: Path | None) -> dict[str, dict[str, str]]:
    """The categories the named vault holds at source; none named, none looked for."""
    if database is None and data_dir is None:
        return {}
    from vault.services.sources import held_categories
    from vault.storage.database import make_engine

    cfg = settings(database_url=database, data_dir=data_dir)
    require_vault(cfg)
    engine = make_engine(cfg.database)
    try:
        with Session(engine) as session:
            return {c: {"client_id": h.service_id, "name": h.service_name}
                    for c, h in held_categories(session).items()}
    finally:
        engine.dispose()


@catalog_app.command("list")
def catalog_list(as_json: Json = False, database: Database = None,
                 data_dir: DataDir = None) -> None:
    """Purposes (with their lawful basis), categories and derived answers, with their words.
    Reads the catalogs that come with the vault: no data directory needed. With
    --data-dir or --database it also says which categories that vault holds at source."""
    held = _held(database, data_dir)
    if as_json:
        out.print_json(json.dumps({key: [_doc(c, held) for c in codes()]
                                   for key, _, codes in _PARTS}))
        return
    for _, title, codes in _PARTS:
        table = Table(title=title, title_justify="left", show_lines=False, expand=False)
        table.add_column("code", style="cyan", no_wrap=True)
        table.add_column("what citizens read")
        for c in codes():
            table.add_row(c.code, _words(c, held))
        out.print(table)
