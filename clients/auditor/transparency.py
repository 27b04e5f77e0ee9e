"""`vault-audit transparency`: recount every figure of a vault's transparency report from
its public ledger entries (ARCHITECTURE §10, "transparency from the ledger").

The report says how many entries its figures count (`ledger_size`) and gives the signed
checkpoint of exactly those entries. The check:

1. opens that checkpoint with the ledger's key (pinned with --key, or the vault's own);
2. fetches entries 0 .. checkpoint size - 1 and holds them against it (`LogAuditor`:
   every seq, prev link and the root), so the entries recounted are the signed ones;
3. counts the first `ledger_size` entries' public parts with `ledger.transparency`, the
   code the vault counts with, and suppresses with the report's own threshold;
4. compares every published figure with its recount, and looks for recounted figures
   the report leaves out. A hidden figure's range must be the range the recount gives.

It needs only the public entries (no openings, no auditor key where the ledger is public).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from clients.auditor.fetch import AuditorError, LedgerClient
from ledger.audit import LogAuditor
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import LedgerError
from ledger.note import Verifier
from ledger.transparency import (
    ALL_MONTHS,
    ZERO,
    Figure,
    Key,
    Tally,
    access_figures,
    grant_figures,
)

__all__ = ["Difference", "TransparencyCheck", "WitnessProblem", "check_transparency",
           "fetch_report", "render_text"]

#: Why a checkpoint note lacks its witnesses' quorum, or None if it has it.
WitnessProblem = Callable[[str], str | None]

#: JSON name of each dimension: grants by "state"; reads by service, purpose, ...
_GRANT_DIMENSIONS = {"by_state": "state"}
_ACCESS_DIMENSIONS = {"by_service": "service", "by_purpose": "purpose",
                      "by_category": "category", "by_derived": "derived"}


@dataclass(frozen=True, slots=True)
class Difference:
    """A published figure that its recount does not give."""

    #: Where it is in the JSON, e.g. "grants.months[2026-11].by_state.requested".
    figure: str
    published: str
    recounted: str

    def __str__(self) -> str:
        return f"{self.figure}: published {self.published}, recounted {self.recounted}"


@dataclass(slots=True)
class TransparencyCheck:
    key: Verifier | None = None
    key_pinned: bool = False
    ledger_size: int = 0
    checkpoint: Checkpoint | None = None
    #: Published figures compared with their recount.
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    #: Why the figures could not be recounted at all (a bad checkpoint, entries that do
    #: not match it), or None.
    problem: str | None = None
    #: Entries with nothing countable in their public part (counted as nothing).
    skipped: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "ledger_size": self.ledger_size,
            "checkpoint_size": self.checkpoint.size if self.checkpoint else None,
            "key": str(self.key) if self.key else None, "key_pinned": self.key_pinned,
            "compared": self.compared, "problem": self.problem,
            "differences": [{"figure": d.figure, "published": d.published,
                             "recounted": d.recounted} for d in self.differences],
            "skipped_entries": self.skipped,
        }


def fetch_report(base_url: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0) -> Any:
    """GET /transparency.json; AuditorError if it cannot be had."""
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), transport=transport,
                          timeout=timeout) as http:
            r = http.get("/transparency.json")
    except httpx.HTTPError as exc:
        raise AuditorError(f"cannot reach {base_url}/transparency.json: {exc}") from None
    if r.status_code != 200:
        raise AuditorError(f"GET /transparency.json answered {r.status_code}")
    try:
        return r.json()
    except ValueError:
        raise AuditorError("/transparency.json is not JSON") from None


# -- the published figures ---------------------------------------------------------------------


def _shown(f: Figure | None) -> str:
    if f is None:
        return "something that is not a count"
    if f.value is not None:
        return str(f.value)
    return f"hidden, {f.at_least} to {f.at_most}"


def _figure(value: Any) -> Figure | None:
    """A published count as a Figure; None unless it is one, consistent with itself."""
    if not isinstance(value, Mapping):
        return None
    v, low, high, hidden = (value.get("value"), value.get("at_least"), value.get("at_most"),
                            value.get("suppressed"))
    if type(low) is not int or type(high) is not int or type(hidden) is not bool:
        return None
    if hidden != (v is None) or (v is not None and (type(v) is not int or v != low
                                                     or v != high)):
        return None
    return Figure(v, low, high)


def _published(doc: Mapping[str, Any], part: str,
               dimensions: Mapping[str, str]) -> Iterator[tuple[Key, str, Any]]:
    """(key, JSON path, published count) of every figure of one part of the report."""
    section = doc.get(part)
    if not isinstance(section, Mapping):
        raise AuditorError(f"the report has no {part!r} section")
    months = section.get("months")
    if not isinstance(months, list):
        raise AuditorError(f"the report's {part}.months is not a list")
    groups: list[tuple[str, str, Any]] = [(ALL_MONTHS, part, section)]
    for m in months:
        if not isinstance(m, Mapping) or type(m.get("month")) is not str:
            raise AuditorError(f"a month of the report's {part} has no month")
        groups.append((m["month"], f"{part}.months[{m['month']}]", m))
    for month, path, group in groups:
        yield (month, "total", ""), f"{path}.total", group.get("total")
        for name, dimension in dimensions.items():
            figures = group.get(name)
            if not isinstance(figures, Mapping):
                raise AuditorError(f"the report's {path}.{name} is not an object")
            for code, value in figures.items():
                yield (month, dimension, code), f"{path}.{name}.{code}", value


def _path(part: str, key: Key, dimensions: Mapping[str, str]) -> str:
    month, dimension, code = key
    where = part if month == ALL_MONTHS else f"{part}.months[{month}]"
    if dimension == "total":
        return f"{where}.total"
    name = next(n for n, d in dimensions.items() if d == dimension)
    return f"{where}.{name}.{code}"


def _compare(doc: Mapping[str, Any], part: str, dimensions: Mapping[str, str],
             recount: Mapping[Key, Figure], check: TransparencyCheck) -> None:
    seen: set[Key] = set()
    for key, path, value in _published(doc, part, dimensions):
        seen.add(key)
        check.compared += 1
        published, want = _figure(value), recount.get(key, ZERO)
        if published != want:
            check.differences.append(Difference(path, _shown(published), _shown(want)))
    for key in sorted(recount.keys() - seen):
        check.differences.append(Difference(_path(part, key, dimensions), "nothing",
                                            _shown(recount[key])))


# -- the check ---------------------------------------------------------------------------------


def _checkpoint(client: LedgerClient, doc: Mapping[str, Any], key: Verifier,
                check: TransparencyCheck, witness_problem: WitnessProblem | None,
                ) -> Checkpoint | None:
    """The signed checkpoint the figures are held against: the report's own (of exactly
    `ledger_size` entries), else the vault's latest, if it covers them."""
    given = doc.get("checkpoint")
    note = given.get("note") if isinstance(given, Mapping) else None
    text = note if type(note) is str else client.checkpoint()
    try:
        cp = open_checkpoint(text, expected_verifier=key)
    except LedgerError as exc:
        check.problem = f"the checkpoint does not verify with the ledger's key: {exc}"
        return None
    if witness_problem is not None and (why := witness_problem(text)) is not None:
        check.problem = why  # without its witnesses, the checkpoint may be a split view
        return None
    if note is not None and cp.size != check.ledger_size:
        check.differences.append(Difference("checkpoint.size", str(cp.size),
                                            f"{check.ledger_size} (ledger_size)"))
    if cp.size < check.ledger_size:
        check.problem = (f"the report counts {check.ledger_size} entries but the signed "
                         f"checkpoint covers only {cp.size}: try again in a second")
        return None
    return cp


def check_transparency(client: LedgerClient, doc: Any, *,
                       expected_key: Verifier | None = None,
                       witness_problem: WitnessProblem | None = None) -> TransparencyCheck:
    """Recount every figure of `doc` (the vault's /transparency.json) from the entries
    `client` serves. `witness_problem` (e.g. `WitnessPolicy.problem`) says why a
    checkpoint note lacks its witnesses' quorum, if it does: then nothing is recounted.
    AuditorError if the report or the vault cannot be read."""
    if not isinstance(doc, Mapping):
        raise AuditorError("the transparency report is not a JSON object")
    size, suppression = doc.get("ledger_size"), doc.get("suppression")
    threshold = suppression.get("threshold") if isinstance(suppression, Mapping) else None
    if type(size) is not int or size < 0:
        raise AuditorError("the report does not say how many entries it counts "
                           "(ledger_size): it predates counting from the ledger")
    if type(threshold) is not int or threshold < 2:
        raise AuditorError("the report gives no suppression threshold")
    key = expected_key or Verifier.parse(client.key())
    check = TransparencyCheck(key=key, key_pinned=expected_key is not None, ledger_size=size)
    cp = check.checkpoint = _checkpoint(client, doc, key, check, witness_problem)
    if cp is None:
        return check
    log, tally = LogAuditor(cp), Tally()
    try:
        for seq, data in enumerate(client.iter_entries(0, cp.size)):
            log.feed(data)
            if seq < size:
                tally.feed_bytes(seq, data)
        log.finish()
    except LedgerError as exc:
        check.problem = f"the entries do not match the signed checkpoint: {exc}"
        return check
    check.skipped = tally.skipped
    grants = {a: n for a, n in tally.grants.items() if n}
    if any(n < 0 for n in grants.values()):
        check.problem = ("the public entries end more grants than were asked for: "
                         + ", ".join(f"{a.month} {a.state}" for a, n in grants.items() if n < 0))
        return check
    reads = Counter({a: n for a, n in tally.accesses.items() if n})
    _compare(doc, "grants", _GRANT_DIMENSIONS,
             grant_figures(grants, threshold=threshold), check)
    _compare(doc, "accesses", _ACCESS_DIMENSIONS,
             access_figures(reads, threshold=threshold), check)
    return check


def render_text(check: TransparencyCheck) -> list[tuple[str, str]]:
    """(style, line) pairs for a terminal."""
    lines: list[tuple[str, str]] = []
    if check.key is not None and not check.key_pinned:
        lines.append(("yellow", f"key {check.key} taken from the vault itself: pin it with "
                                "--key to check against a key you trust"))
    if check.problem is not None:
        lines.append(("red", f"FAILED: {check.problem}"))
        return lines
    lines.append(("", f"recounted {check.compared} published figures from entries "
                      f"0..{check.ledger_size - 1}, signed by checkpoint "
                      f"{check.checkpoint.size if check.checkpoint else '?'}"))
    if check.skipped:
        lines.append(("yellow", f"{len(check.skipped)} entries had nothing countable in "
                                f"their public part (first: {check.skipped[0]})"))
    for d in check.differences:
        lines.append(("red", f"DIFFERS {d}"))
    lines.append(("green", "OK: every published figure is what the public ledger gives")
                 if check.ok else
                 ("red", f"FAILED: {len(check.differences)} figures differ from the recount"))
    return lines
