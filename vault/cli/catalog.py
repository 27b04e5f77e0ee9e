"""`vault catalog list`: every purpose, category and derived answer a service can be
registered with, and the words citizens read for each."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from vault.cli.common import Json, out
from vault.domain.codes import Code, category_codes, derived_codes, purpose_codes

catalog_app = typer.Typer(help="The codes services are registered with.", no_args_is_help=True)

_PARTS = (("purposes", "Purposes (--purpose), with their lawful basis", purpose_codes),
          ("categories", "Categories of data (--category; issued by: --issues)",
           category_codes),
          ("derived", "Derived yes/no answers (--derived)", derived_codes))


def _doc(code: Code) -> dict[str, str]:
    return {"code": code.code, "words": code.words, **({"more": code.more} if code.more else {}),
            **({"issued_by": code.issued_by} if code.issued_by else {})}


def _words(code: Code) -> str:
    more = [code.more] if code.more else []
    if code.issued_by:
        more.append(f"Issued by {code.issued_by} (a service registered with --issues).")
    return "\n".join([code.words, *(f"[dim]{m}[/]" for m in more)])


@catalog_app.command("list")
def catalog_list(as_json: Json = False) -> None:
    """Purposes (with their lawful basis), categories and derived answers, with their words.
    Reads the catalogs that come with the vault: no data directory needed."""
    if as_json:
        out.print_json(json.dumps({key: [_doc(c) for c in codes()]
                                   for key, _, codes in _PARTS}))
        return
    for _, title, codes in _PARTS:
        table = Table(title=title, title_justify="left", show_lines=False, expand=False)
        table.add_column("code", style="cyan", no_wrap=True)
        table.add_column("what citizens read")
        for c in codes():
            table.add_row(c.code, _words(c))
        out.print(table)
