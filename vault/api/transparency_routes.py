"""GET /transparency (a page for everyone) and /transparency.json (the same, for machines).

Public: registered services, counts of grants and reads with small numbers hidden
(`vault.services.transparency`), and the latest checkpoint with how to check it. The
counts come from the public ledger, counted in the background as it grows; the report
only reads them, at most four times a second per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel, Field

from vault.api.deps import AppState, State
from vault.api.svg_charts import Bar, column_chart, row_chart
from vault.domain.durations import describe_duration
from vault.services import transparency as tr

__all__ = [
    "CACHE_SECONDS",
    "CONTENT_SECURITY_POLICY",
    "PAGE_MONTHS",
    "ReportCache",
    "TransparencyReport",
    "figure_text",
    "report_json",
    "router",
]

#: How long a computed report is served before the next one is computed. The report only
#: reads the counted atoms (a few hundred rows), and counts must show within a second of
#: a commit (issue 13 §4), so this is short.
CACHE_SECONDS = 0.25
#: Months the page shows (the JSON has every month).
PAGE_MONTHS = 12
#: Nothing runs on the page; only its own stylesheet loads.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=1",
}
_HERE = Path(__file__).parent
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: What each state means, for people.
STATE_TEXT: Mapping[str, str] = {
    "requested": "Asked for, waiting for the citizen's answer",
    "approved": "Approved by the citizen and in use",
    "paused": "Paused by the citizen",
    "denied": "Declined by the citizen",
    "cancelled": "Withdrawn by the service before an answer",
    "lapsed": "Not answered in time",
    "revoked": "Ended early by the citizen",
    "expired": "Reached its end date",
    "exhausted": "Used as many times as agreed",
}

router = APIRouter(tags=["transparency"])


# -- the JSON (its schema is in /openapi.json) ---------------------------------------------


class Count(BaseModel):
    """A published count. Hidden (suppressed) counts have `value` null and the range the
    true number lies in; exact ones have at_least == at_most == value."""

    value: int | None = Field(description="The count, or null when it is hidden")
    suppressed: bool
    at_least: int
    at_most: int


class Suppression(BaseModel):
    threshold: int = Field(description="Counts from 1 to threshold - 1 are never published")
    rule: str
    why: str


class PurposeOut(BaseModel):
    code: str
    text: str
    lawful_basis: str
    lawful_basis_text: str


class NamedOut(BaseModel):
    code: str
    label: str


class ServiceOut(BaseModel):
    id: str
    name: str
    description: str
    purposes: list[PurposeOut]
    categories: list[NamedOut]
    derived: list[NamedOut]
    max_days: int = Field(description="The longest grant the service may ask for, in days")
    max_duration: str
    privacy_notice_url: str
    dpia_url: str | None
    status: Literal["active", "suspended"]
    registered_at: datetime


class GrantMonthOut(BaseModel):
    month: str = Field(description="Calendar month (UTC) the grants were asked for: YYYY-MM")
    total: Count
    by_state: dict[str, Count]


class GrantsOut(BaseModel):
    total: Count
    by_state: dict[str, Count] = Field(description="Every grant by the state it is in now")
    months: list[GrantMonthOut]


class AccessMonthOut(BaseModel):
    month: str = Field(description="Calendar month (UTC) of the reads: YYYY-MM")
    total: Count
    by_service: dict[str, Count]
    by_purpose: dict[str, Count]
    by_category: dict[str, Count]
    by_derived: dict[str, Count]


class AccessesOut(BaseModel):
    total: Count
    by_service: dict[str, Count]
    by_purpose: dict[str, Count]
    by_category: dict[str, Count] = Field(
        description="Reads that released each category (one read may release several)")
    by_derived: dict[str, Count]
    months: list[AccessMonthOut]


class CheckpointOut(BaseModel):
    size: int
    root: str = Field(description="Merkle tree root, base64")
    note: str = Field(description="The signed note, as GET /ledger/checkpoint serves it")


class LedgerOut(BaseModel):
    checkpoint: CheckpointOut | None
    checkpoint_url: str
    verifier_key: str = Field(description="C2SP verifier key of the ledger's signer")
    verify_command: str
    watch_command: str
    transparency_command: str = Field(
        description="Recounts every figure here from the public ledger entries")


class TransparencyReport(BaseModel):
    generated_at: datetime
    suppression: Suppression
    services: list[ServiceOut]
    purposes: list[PurposeOut]
    categories: list[NamedOut]
    derived: list[NamedOut]
    grants: GrantsOut
    accesses: AccessesOut
    ledger: LedgerOut
    ledger_size: int = Field(
        description="The figures count ledger entries 0 to ledger_size - 1 (their public "
                    "parts), which anyone can recount")
    checkpoint: CheckpointOut | None = Field(
        description="The signed checkpoint of exactly ledger_size entries: the ledger the "
                    "figures agree with")


def _checkpoint(cp: tr.CheckpointInfo | None) -> CheckpointOut | None:
    return CheckpointOut(size=cp.size, root=cp.root, note=cp.note) if cp else None


def _count(f: tr.Figure) -> Count:
    return Count(value=f.value, suppressed=f.suppressed, at_least=f.at_least,
                 at_most=f.at_most)


def _counts(figures: Mapping[str, tr.Figure]) -> dict[str, Count]:
    return {k: _count(f) for k, f in figures.items()}


def _named(items: Sequence[tr.Named]) -> list[NamedOut]:
    return [NamedOut(code=n.code, label=n.label) for n in items]


def _purposes(items: Sequence[tr.PurposeInfo]) -> list[PurposeOut]:
    return [PurposeOut(code=p.code, text=p.text, lawful_basis=p.lawful_basis,
                       lawful_basis_text=p.lawful_basis_text) for p in items]


def _service(s: tr.ServiceInfo) -> ServiceOut:
    return ServiceOut(
        id=s.id, name=s.name, description=s.description, purposes=_purposes(s.purposes),
        categories=_named(s.categories), derived=_named(s.derived), max_days=s.max_days,
        max_duration=describe_duration(timedelta(days=s.max_days)),
        privacy_notice_url=s.privacy_notice_url, dpia_url=s.dpia_url,
        status="active" if s.active else "suspended", registered_at=s.registered_at)


def _access_month(m: tr.AccessMonth) -> AccessMonthOut:
    return AccessMonthOut(month=m.month, total=_count(m.total),
                          by_service=_counts(m.by_service), by_purpose=_counts(m.by_purpose),
                          by_category=_counts(m.by_category), by_derived=_counts(m.by_derived))


def report_json(report: tr.Report, *, base_url: str, verifier_key: str) -> TransparencyReport:
    """The report as its JSON model; `base_url` and the key make the audit commands."""
    a, g, cp = report.accesses, report.grants, report.checkpoint
    return TransparencyReport(
        generated_at=report.generated_at,
        suppression=Suppression(
            threshold=report.threshold,
            rule=tr.SUPPRESSION_RULE.format(low=report.threshold - 1,
                                            threshold=report.threshold),
            why=tr.SUPPRESSION_WHY),
        services=[_service(s) for s in report.services],
        purposes=_purposes(report.purposes), categories=_named(report.categories),
        derived=_named(report.derived),
        grants=GrantsOut(
            total=_count(g.total), by_state=_counts(g.by_state),
            months=[GrantMonthOut(month=m.month, total=_count(m.total),
                                  by_state=_counts(m.by_state)) for m in g.months]),
        accesses=AccessesOut(
            total=_count(a.total), by_service=_counts(a.by_service),
            by_purpose=_counts(a.by_purpose), by_category=_counts(a.by_category),
            by_derived=_counts(a.by_derived), months=[_access_month(m) for m in a.months]),
        ledger=LedgerOut(
            checkpoint=_checkpoint(cp),
            checkpoint_url=f"{base_url}/ledger/checkpoint", verifier_key=verifier_key,
            verify_command=f"vault-audit verify {base_url} --key {verifier_key}",
            watch_command=(f"vault-audit watch {base_url} --key {verifier_key} "
                           "--state ./vault-audit-state"),
            transparency_command=f"vault-audit transparency {base_url} --key {verifier_key}"),
        ledger_size=report.ledger_size, checkpoint=_checkpoint(report.counted_checkpoint))


# -- the cache -----------------------------------------------------------------------------

T = TypeVar("T")


class ReportCache(Generic[T]):
    """The last computed value for `ttl` seconds. Only one caller computes at a time;
    while it does, the others get the previous value (or wait, if there is none yet),
    so a burst of visitors costs one set of queries and waits for none of them."""

    def __init__(self, compute: Callable[[], T], *, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._compute = compute
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: tuple[T, float] | None = None

    def _fresh(self) -> T | None:
        cached = self._value
        if cached is not None and self._clock() - cached[1] < self._ttl:
            return cached[0]
        return None

    def get(self) -> T:
        if (fresh := self._fresh()) is not None:
            return fresh
        stale = self._value
        if not self._lock.acquire(blocking=stale is None):
            assert stale is not None  # only a non-blocking acquire can fail
            return stale[0]  # another caller is computing: the last value will do
        try:
            if (fresh := self._fresh()) is not None:  # computed while we waited
                return fresh
            value = self._compute()
            self._value = (value, self._clock())
            return value
        finally:
            self._lock.release()


@dataclass(frozen=True, slots=True)
class Published:
    report: tr.Report
    json: TransparencyReport


def _publish(state: AppState) -> Published:
    report = tr.transparency_report(state.ctx)
    return Published(report, report_json(report, base_url=state.settings.base_url,
                                          verifier_key=str(state.signer.verifier())))


_INSTALL = threading.Lock()


def _published(request: Request, state: AppState) -> Published:
    app_state = request.app.state
    cache: ReportCache[Published] | None = getattr(app_state, "transparency", None)
    if cache is None:
        with _INSTALL:
            cache = getattr(app_state, "transparency", None)
            if cache is None:
                cache = ReportCache(lambda: _publish(state))
                app_state.transparency = cache
    return cache.get()


# -- the page --------------------------------------------------------------------------------


def figure_text(f: tr.Figure | Count, threshold: int) -> str:
    """A count as people read it: "1,203", "fewer than 10", "201 to 218"."""
    if f.value is not None:
        return f"{f.value:,}"
    if f.at_most < threshold:
        return f"fewer than {threshold}"
    return f"{f.at_least:,} to {f.at_most:,}"


def month_label(month: str) -> str:
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]} {year}"


def _chart(draw: Callable[..., Markup], items: Sequence[tuple[str, tr.Figure]], *,
           chart_id: str, title: str, threshold: int) -> Markup:
    """A chart whose description also reads out every number, for screen readers."""
    bars = [Bar(label, f.at_least, f.at_most, figure_text(f, threshold)) for label, f in items]
    numbers = "; ".join(f"{b.label}: {b.text}" for b in bars) or "nothing yet"
    return draw(bars, chart_id=chart_id, title=title,
                description=f"{numbers}. The same numbers are in the table below.")


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=_HERE / "templates")
    templates.env.autoescape = True  # every template, whatever its file name
    templates.env.filters["month"] = month_label
    templates.env.globals["figure"] = figure_text
    return templates


_TEMPLATES = _templates()


def page_context(report: tr.Report, doc: TransparencyReport) -> dict[str, Any]:
    """Everything the template shows, worked out here so the template only lays it out."""
    t = report.threshold
    months = report.accesses.months[-PAGE_MONTHS:]
    grant_months = report.grants.months[-PAGE_MONTHS:]
    names = {s.id: s.name for s in report.services}
    purpose_text = {p.code: p.text for p in report.purposes}
    a, g = report.accesses, report.grants
    charts = {
        "grants": _chart(row_chart, [(s.capitalize(), f) for s, f in g.by_state.items()],
                         chart_id="chart-grants", title="Grants by the state they are in now",
                         threshold=t),
        "months": _chart(column_chart, [(month_label(m.month), m.total) for m in months],
                         chart_id="chart-months", title="Data accesses per month",
                         threshold=t),
        "services": _chart(row_chart, [(names.get(k, k), f) for k, f in a.by_service.items()],
                           chart_id="chart-services",
                           title="Data accesses by service, all time", threshold=t),
        "purposes": _chart(row_chart,
                           [(purpose_text.get(k, k), f) for k, f in a.by_purpose.items()],
                           chart_id="chart-purposes",
                           title="Data accesses by purpose, all time", threshold=t),
    }
    return {
        "report": report, "doc": doc, "threshold": t, "months": months,
        "grant_months": grant_months, "names": names, "purpose_text": purpose_text,
        "category_labels": {c.code: c.label for c in report.categories},
        "derived_labels": {d.code: d.label for d in report.derived},
        "state_text": STATE_TEXT, "charts": charts,
        "rule": doc.suppression.rule, "why": doc.suppression.why,
        "older_months": len(report.accesses.months) > PAGE_MONTHS,
    }


@router.get("/transparency.json", response_model=TransparencyReport,
            summary="Transparency report: services, counts with small numbers hidden, "
                    "the latest checkpoint")
def transparency_json(request: Request, response: Response, state: State) -> TransparencyReport:
    response.headers["Cache-Control"] = _HEADERS["Cache-Control"]
    # Public data with no credentials involved: anyone may build on it.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return _published(request, state).json


@router.get("/transparency", response_class=HTMLResponse,
            summary="Transparency page for everyone (HTML)")
def transparency_page(request: Request, state: State) -> HTMLResponse:
    published = _published(request, state)
    context = page_context(published.report, published.json)
    page: HTMLResponse = _TEMPLATES.TemplateResponse(request, "transparency.html", context,
                                                    headers=_HEADERS)
    return page


@router.get("/transparency.css", include_in_schema=False)
def transparency_css() -> FileResponse:
    return FileResponse(_HERE / "static" / "transparency.css", media_type="text/css",
                        headers={**_HEADERS, "Cache-Control": "public, max-age=3600"})

