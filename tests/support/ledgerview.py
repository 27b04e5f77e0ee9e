"""The vault's ledger as tests read it: every entry with its full body.

The vault writes sealed entries (ledger v2): their bytes hold only the public part, and
the rest is in the entry's opening. Tests that look at what an entry says read it here,
opened and checked (`ledger.sealing.full_body`), so they read v1 and v2 ledgers alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection

from ledger.entry import Entry, parse_entry
from ledger.sealing import full_body, parse_opening
from ledger.sqlstore import SqlLedger

__all__ = ["full_entries", "opened_entries", "read_export"]


def opened_entries(conn: Connection, start: int = 0) -> list[Entry]:
    """Every entry from `start`, parsed, with `body` its full body (public + private)."""
    out = []
    for _, data, opening in SqlLedger(conn).iter_opened(start):
        entry = parse_entry(data)
        body = full_body(entry, parse_opening(opening) if opening is not None else None)
        out.append(entry._replace(body=body))
    return out


def full_entries(conn: Connection, start: int = 0) -> list[dict[str, Any]]:
    """Every entry from `start` as JSON, a sealed one with its full body under "body" (as
    a v1 entry has it) beside its "public" and "sealed"."""
    out = []
    for _, data, opening in SqlLedger(conn).iter_opened(start):
        e = orjson.loads(data)
        if opening is not None:
            entry = parse_entry(data)
            e["body"] = dict(full_body(entry, parse_opening(opening)))
        out.append(e)
    return out


def read_export(entries: Path, openings: Path | None = None) -> list[dict[str, Any]]:
    """`vault ledger export --out ENTRIES [--openings OPENINGS]` read back as `full_entries`
    gives them (a sealed entry's "body" only when its opening was exported)."""
    opened = {}
    if openings is not None:
        opened = {o.seq: o for o in map(parse_opening, openings.read_bytes().splitlines())}
    out = []
    for data in entries.read_bytes().splitlines():
        e = orjson.loads(data)
        if e["seq"] in opened:
            e["body"] = dict(full_body(parse_entry(data), opened[e["seq"]]))
        out.append(e)
    return out
