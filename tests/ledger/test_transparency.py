"""Counting transparency atoms from public entries (`ledger.transparency`): v1 and v2
entries count the same, an erasure's sealed ending moves a grant without naming it, and
counting in stretches (as the vault does) equals one count of everything."""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.sealing import split
from ledger.transparency import (
    AccessAtom,
    Figure,
    GrantAtom,
    GrantFacts,
    Tally,
    count_entries,
    grant_figures,
    public_of,
)

SEALED = base64.b64encode(bytes(32)).decode()


def v1(seq: int, time: str, kind: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"v": 1, "seq": seq, "time": time, "kind": kind, "prev": "",
                         "body": body})


def v2(seq: int, time: str, kind: str, body: dict[str, Any]) -> bytes:
    public, _ = split(kind, body)
    return orjson.dumps({"v": 2, "seq": seq, "time": time, "kind": kind, "prev": "",
                         "public": public, "sealed": SEALED})


def requested(gid: str, purpose: str = "eligibility_assessment") -> tuple[str, dict[str, Any]]:
    return "grant.requested", {"grant_id": gid, "service_id": "svc_a", "subject": "sub_x",
                               "terms": {"purpose": purpose}, "terms_hash": "h"}


def step(kind: str, gid: str) -> tuple[str, dict[str, Any]]:
    return kind, {"grant_id": gid, "service_id": "svc_a", "subject": "sub_x"}


def erased(kind: str, gid: str, asked: str, was: str) -> tuple[str, dict[str, Any]]:
    return kind, {"grant_id": gid, "service_id": "svc_a", "subject": "sub_x",
                  "reason": "citizen_erased", "asked": asked, "from": was}


def read(gid: str, categories: list[str]) -> tuple[str, dict[str, Any]]:
    return "data.accessed", {"grant_id": gid, "service_id": "svc_a", "subject": "sub_x",
                             "categories": categories, "derived": [], "commitment": "c"}


STORY = [
    ("2026-10-30T10:00:00.000Z", *requested("g1")),
    ("2026-10-30T10:00:01.000Z", *requested("g2", "service_provision")),
    ("2026-10-30T10:00:02.000Z", *step("grant.approved", "g1")),
    ("2026-10-31T23:59:59.999Z", *read("g1", ["address.home"])),
    ("2026-11-01T00:00:00.000Z", *read("g1", ["address.home"])),
    ("2026-11-01T00:00:01.000Z", *step("grant.paused", "g1")),
    ("2026-11-01T00:00:02.000Z", *step("grant.resumed", "g1")),
    ("2026-11-02T09:00:00.000Z", *requested("g3")),
    # The citizen is erased: their grants end, sealed.
    ("2026-11-03T09:00:00.000Z", *erased("grant.revoked", "g1", "2026-10", "approved")),
    ("2026-11-03T09:00:00.000Z", *erased("grant.denied", "g2", "2026-10", "requested")),
    ("2026-11-03T09:00:00.000Z", *erased("grant.denied", "g3", "2026-11", "requested")),
    ("2026-11-03T09:00:00.000Z", "citizen.erased", {"subject": "sub_x"}),
]
WANT_GRANTS = {GrantAtom("2026-10", "revoked"): 1, GrantAtom("2026-10", "denied"): 1,
               GrantAtom("2026-11", "denied"): 1}
WANT_READS = {
    AccessAtom("2026-10", "svc_a", "eligibility_assessment", frozenset({"address.home"}),
               frozenset()): 1,
    AccessAtom("2026-11", "svc_a", "eligibility_assessment", frozenset({"address.home"}),
               frozenset()): 1,
}


def _nonzero(counts: Counter[Any]) -> dict[Any, int]:
    return {k: n for k, n in counts.items() if n}


def test_v2_entries_count_from_their_public_part_alone() -> None:
    tally = count_entries(v2(i, *e) for i, e in enumerate(STORY))
    assert _nonzero(tally.grants) == WANT_GRANTS
    assert _nonzero(tally.accesses) == WANT_READS
    assert tally.size == len(STORY) and tally.skipped == []
    # The erased grants' facts stay as they were: nothing public names them again.
    assert tally.facts["g1"] == GrantFacts("2026-10", "eligibility_assessment", "approved")


def test_v1_entries_count_the_same_as_v2() -> None:
    as_v1 = count_entries(v1(i, *e) for i, e in enumerate(STORY))
    as_v2 = count_entries(v2(i, *e) for i, e in enumerate(STORY))
    assert (_nonzero(as_v1.grants), _nonzero(as_v1.accesses)) == (
        _nonzero(as_v2.grants), _nonzero(as_v2.accesses))


def test_a_v1_erasure_from_before_v2_moves_its_grant_by_id() -> None:
    """Written before ledger v2: no "asked" or "from", but the (unsealed) grant id."""
    old = [*STORY[:8],
           ("2026-11-03T09:00:00.000Z", "grant.revoked",
            {"grant_id": "g1", "service_id": "svc_a", "subject": "sub_x",
             "reason": "citizen_erased"})]
    assert public_of(orjson.loads(v1(8, *old[8])))["grant_id"] == "g1"
    tally = count_entries(v1(i, *e) for i, e in enumerate(old))
    assert _nonzero(tally.grants) == {GrantAtom("2026-10", "revoked"): 1,
                                      GrantAtom("2026-10", "requested"): 1,
                                      GrantAtom("2026-11", "requested"): 1}


def test_entries_that_say_nothing_countable_are_skipped_not_guessed() -> None:
    entries = [b"not json", v2(1, "2026-11-03T09:00:00.000Z", *step("grant.approved", "unknown")),
               v2(2, "2026-11-03T09:00:00.000Z", "grant.revoked",
                  {"reason": "citizen_erased"})]
    tally = count_entries(entries)
    assert tally.skipped == [0, 1, 2] and tally.size == 3
    assert _nonzero(tally.grants) == {} and _nonzero(tally.accesses) == {}


def test_grant_figures_suppress_small_atoms() -> None:
    figures = grant_figures({GrantAtom("2026-10", "denied"): 12,
                             GrantAtom("2026-10", "revoked"): 1})
    assert figures["2026-10", "state", "denied"] == Figure.exact(12)
    assert figures["", "total", ""] == Figure(None, 13, 21)


# -- any stretches: the vault counts a stretch at a time -------------------------------------

GIDS = [f"g{i}" for i in range(6)]
STEPS = ["grant.approved", "grant.denied", "grant.paused", "grant.resumed", "grant.revoked",
         "grant.expired", "grant.cancelled", "grant.exhausted"]
ops = st.lists(st.tuples(st.sampled_from(["ask", "step", "read", "erase"]),
                         st.sampled_from(GIDS), st.sampled_from(STEPS),
                         st.integers(0, 3)), max_size=40)


def _ledger(plan: list[tuple[str, str, str, int]]) -> list[bytes]:
    """Entries of a plausible ledger: every grant asked for before anything else."""
    asked: dict[str, tuple[str, str]] = {}  # gid -> (month, state)
    out: list[bytes] = []
    for op, gid, kind, day in plan:
        time = f"2026-{10 + day % 3:02d}-0{1 + day}T10:00:00.000Z"
        seq = len(out)
        if op == "ask" and gid not in asked:
            asked[gid] = (time[:7], "requested")
            out.append(v2(seq, time, *requested(gid, f"p{day % 2}")))
        elif op == "step" and gid in asked:
            new = "approved" if kind == "grant.resumed" else kind.removeprefix("grant.")
            asked[gid] = (asked[gid][0], new)
            out.append(v2(seq, time, *step(kind, gid)))
        elif op == "read" and gid in asked:
            out.append(v2(seq, time, *read(gid, ["c" + str(day)])))
        elif op == "erase" and gid in asked:
            month, was = asked.pop(gid)
            out.append(v2(seq, time, *erased("grant.revoked", gid, month, was)))
    return out


@settings(max_examples=200, deadline=None)
@given(plan=ops, cuts=st.lists(st.integers(0, 40), max_size=8))
def test_counting_in_any_stretches_equals_one_count(
        plan: list[tuple[str, str, str, int]], cuts: list[int]) -> None:
    entries = _ledger(plan)
    whole = count_entries(entries)
    bounds = sorted({0, len(entries), *(c for c in cuts if c < len(entries))})
    facts: dict[str, GrantFacts] = {}
    grants: Counter[GrantAtom] = Counter()
    reads: Counter[AccessAtom] = Counter()
    for start, end in itertools.pairwise(bounds):
        # As the vault does: the facts kept so far, a tally of the stretch, then both saved.
        tally = Tally(known=dict(facts))
        for seq in range(start, end):
            tally.feed_bytes(seq, entries[seq])
        grants.update(tally.grants)
        reads.update(tally.accesses)
        facts.update(tally.facts)
    assert _nonzero(grants) == _nonzero(whole.grants)
    assert _nonzero(reads) == _nonzero(whole.accesses)
    assert all(n >= 0 for n in grants.values())
    assert facts == whole.facts
