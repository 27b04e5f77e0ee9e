"""The transparency report's atoms worked out naively from the ledger's public entries,
to check the counts the vault keeps (`vault.services.transparency_counts`) against: a
second, simpler implementation than `ledger.transparency`, kept deliberately plain."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from ledger.sealing import split
from ledger.sqlstore import SqlLedger
from ledger.transparency import AccessAtom, GrantAtom
from vault.storage.database import read_only

Atoms = tuple[dict[GrantAtom, int], dict[AccessAtom, int]]


def public(e: dict[str, Any]) -> dict[str, Any]:
    """What anyone sees of an entry: v2's `public`; for v1, the fields v2 would show
    (plus, on an erasure written before v2, its grant id)."""
    if e["v"] == 2:
        return dict(e["public"])
    shown = split(e["kind"], e["body"])[0]
    if shown.get("reason") == "citizen_erased" and "from" not in shown:
        shown["grant_id"] = e["body"]["grant_id"]
    return shown


def ledger_atoms(engine: Engine) -> Atoms:
    """Each grant in the state its last entry says, in the month of its request; each
    `data.accessed` in its month, with the purpose of its grant's terms. A grant ended by
    an erasure (no id in public) moves one grant of its month from its old state."""
    with read_only(engine).begin() as conn:
        entries = [orjson.loads(data) for _, _, data in SqlLedger(conn).iter_entries()]
    month: dict[str, str] = {}
    purpose: dict[str, str] = {}
    state: dict[str, str] = {}
    moved: Counter[GrantAtom] = Counter()
    reads: Counter[AccessAtom] = Counter()
    for e in entries:
        kind, body = e["kind"], public(e)
        new = "approved" if kind == "grant.resumed" else kind.removeprefix("grant.")
        if kind == "grant.requested":
            gid = body["grant_id"]
            month[gid], purpose[gid], state[gid] = (
                e["time"][:7], body["terms"]["purpose"], "requested")
        elif kind.startswith("grant.") and "grant_id" in body:
            state[body["grant_id"]] = new
        elif kind.startswith("grant.") and "from" in body:
            moved[GrantAtom(body["asked"], body["from"])] -= 1
            moved[GrantAtom(body["asked"], new)] += 1
        elif kind == "data.accessed":
            reads[AccessAtom(e["time"][:7], body["service_id"], purpose[body["grant_id"]],
                             frozenset(body["categories"]), frozenset(body["derived"]))] += 1
    grants = Counter(GrantAtom(month[g], s) for g, s in state.items())
    grants.update(moved)
    return {a: n for a, n in grants.items() if n}, dict(reads)
