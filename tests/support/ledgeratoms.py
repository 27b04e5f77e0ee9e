"""The transparency report's atoms worked out from the ledger alone, to check the
report's counts (which come from tables) against what the ledger says."""

from __future__ import annotations

from collections import Counter

import orjson
from sqlalchemy.engine import Engine

from ledger.sqlstore import SqlLedger
from vault.services.transparency import AccessAtom, GrantAtom
from vault.storage.database import read_only

Atoms = tuple[dict[GrantAtom, int], dict[AccessAtom, int]]


def ledger_atoms(engine: Engine) -> Atoms:
    """Each grant in the state its last entry says, in the month of its request; each
    `data.accessed` in its month, with the purpose of its grant's terms."""
    with read_only(engine).begin() as conn:
        entries = [orjson.loads(data) for _, _, data in SqlLedger(conn).iter_entries()]
    month: dict[str, str] = {}
    purpose: dict[str, str] = {}
    state: dict[str, str] = {}
    reads: Counter[AccessAtom] = Counter()
    for e in entries:
        kind, body = e["kind"], e["body"]
        if kind == "grant.requested":
            gid = body["grant_id"]
            month[gid], purpose[gid], state[gid] = (
                e["time"][:7], body["terms"]["purpose"], "requested")
        elif kind.startswith("grant."):
            state[body["grant_id"]] = ("approved" if kind == "grant.resumed"
                                       else kind.removeprefix("grant."))
        elif kind == "data.accessed":
            reads[AccessAtom(e["time"][:7], body["service_id"], purpose[body["grant_id"]],
                             frozenset(body["categories"]), frozenset(body["derived"]))] += 1
    return dict(Counter(GrantAtom(month[g], s) for g, s in state.items())), dict(reads)
