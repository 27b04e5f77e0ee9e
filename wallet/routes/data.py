"""My data: see every kind of information the vault can hold, add and change it (checked
against the catalog's schemas), see where each came from, delete it, download it all.
A long list (health readings) is changed a page at a time (`wallet.list_pages`).

A value a service issued is the issuer's to change (ARCHITECTURE §8): it is shown
read-only, labelled with the issuer, with "Tell them this is wrong" (`disputes`). The
citizen may add a value of their own for its category: like any newer version it becomes
the value services read (marked in its provenance as the citizen's; answers that rest
on issued facts, such as `receives:<benefit>`, then say unknown, as they never count the
citizen's own values, and the page says so); deleting deletes only the citizen's own
versions, so the issued one is current again."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vault.domain.categories import Category, categories
from vault.domain.errors import InvalidValue, RecordConflict
from vault.domain.services import contact_link
from vault.errors import InvalidRequest, NotFound
from vault.services import disputes, records
from vault.services.activity import service_names
from vault.services.citizens import get_citizen
from vault.services.context import reading
from vault.services.registry import get_service
from vault.services.sources import held_categories, refuse_held
from wallet.forms import (
    FormError,
    FormReading,
    Problem,
    Shown,
    edit_form,
    explain,
    form_from_value,
    layout_of,
    read_form,
    show_value,
)
from wallet.list_pages import PAGE_FIELDS, ListPage, page_of, posted_page
from wallet.routes.deps import Subject, Wallet, csrf_guard, render
from wallet.routes.series import readings_page, save_readings
from wallet.web import WalletState

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

#: Fixed words for ?done=: the query never puts its own text on the page.
_DONE = {
    "saved": "Saved.",
    "deleted": "Deleted. Every version of it is gone from your vault.",
}
#: Headings for the catalog's kinds of information, by the first part of their code.
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("About you", ("identity", "contact")),
    ("Where you live", ("address",)),
    ("Money and benefits", ("benefits",)),
    ("Health", ("health",)),
    ("School and family", ("education", "household")),
    ("Getting around", ("transport",)),
)
_NOT_FORM_FIELDS = frozenset({"csrf", "action", "own", *PAGE_FIELDS})
#: Fixed words for ?done= on a record's page ({issuer}: the issuer's registered name).
_TOLD = {
    "told": "We told {issuer} that you think this is wrong.",
    "told_before": "You had told {issuer} already, so we did not tell them again.",
}
#: The reasons the citizen may give, in the order offered ("not_given" is no choice).
_REASONS = [(code, words) for code, words in disputes.REASONS.items() if code != "not_given"]
#: Said when a form was not drawn over the issued value that is now the newest.
_ISSUED_SINCE = ("{issuer} issued this after you opened the page, so nothing was saved. "
                 "Their value is shown here: it is theirs to change. If you still want to "
                 "add your own value instead, fill in the form again.")
#: Said when a page of a list was drawn from a version that is no longer the newest.
_STALE = ("This list changed after you opened the page (on another device, or a service "
          "added to it), so nothing was saved. Here it is as it is now: please make your "
          "change again.")
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


@dataclass(frozen=True, slots=True)
class Card:
    """One kind of information on the My data page."""

    code: str
    label: str
    description: str
    shown: Shown | None
    source: str = ""
    added: datetime | None = None
    versions: int = 0
    #: The issuer's name when the value shown is issued (read-only here).
    issued_by: str = ""
    #: The issuer's name when the citizen's own value is shown over an issued one.
    over: str = ""
    #: The issuer's name when its newest version is withdrawn (the category reads as absent).
    withdrawn_by: str = ""
    #: The issuer's name when it holds this category at source: never stored here.
    held_by: str = ""


@dataclass(frozen=True, slots=True)
class Version:
    """One row of a record's history."""

    version: int
    added: datetime
    source: str
    shown: Shown
    #: The issuer's name and id, for a version a service issued.
    issuer: str = ""
    issuer_id: str = ""
    #: When the citizen told the issuer this version is wrong.
    disputed: datetime | None = None
    #: Whether "Tell them this is wrong" is offered (the issuer's newest, not yet told).
    disputable: bool = False
    #: When its issuer withdrew it.
    withdrawn: datetime | None = None


def _issuer_name(source: str, names: Mapping[str, str]) -> str:
    return names.get(source, "a service")


def _source_words(source: str, names: Mapping[str, str], previous: str | None) -> str:
    """Who wrote this version: the citizen added a value (first, or over an issued one)
    or changed their own; a service issued it."""
    if source != "citizen":
        return f"Issued by {_issuer_name(source, names)}"
    return "You changed this" if previous == "citizen" else "You added this"


def _previous(sources: Sequence[str], index: int) -> str | None:
    return sources[index - 1] if index > 0 else None


def _group_of(code: str) -> str:
    head = code.split(".", 1)[0]
    for title, heads in _GROUPS:
        if head in heads:
            return title
    return head.replace("_", " ").capitalize()


def _card(cat: Category, view: records.RecordView | None, sources: Sequence[str],
          names: Mapping[str, str]) -> Card:
    if view is None:
        withdrawn = bool(sources) and sources[-1] != "citizen"
        return Card(cat.code, cat.label, cat.description, None, versions=len(sources),
                    withdrawn_by=_issuer_name(sources[-1], names) if withdrawn else "")
    issued = [s for s in sources if s != "citizen"]
    return Card(
        cat.code, cat.label, cat.description, show_value(cat, view.value),
        _source_words(view.source, names, _previous(sources, len(sources) - 1)),
        view.created_at, len(sources),
        issued_by=_issuer_name(view.source, names) if view.source != "citizen" else "",
        over=_issuer_name(issued[-1], names) if issued and view.source == "citizen" else "")


def _cards(views: Mapping[str, records.RecordView], sources: Mapping[str, Sequence[str]],
           names: Mapping[str, str], held: Mapping[str, str]) -> list[tuple[str, list[Card]]]:
    grouped: dict[str, list[Card]] = {title: [] for title, _ in _GROUPS}
    for code, cat in categories().items():
        card = (Card(cat.code, cat.label, cat.description, None, held_by=held[code])
                if code in held else _card(cat, views.get(code), sources.get(code, ()), names))
        grouped.setdefault(_group_of(code), []).append(card)
    return [(title, cards) for title, cards in grouped.items() if cards]


def _not_held(wallet: WalletState, code: str) -> None:
    """HeldAtSource (a 400 page saying who holds it) for a category held at source:
    there is no value here to show or change (ARCHITECTURE §8)."""
    with reading(wallet.ctx) as session:
        refuse_held(session, code)


def _category(code: str) -> Category:
    found = categories().get(code)
    if found is None:
        raise NotFound("there is no such kind of information")
    return found


async def posted_fields(request: Request) -> dict[str, str]:
    """The text fields of a posted form (csrf_guard has read and cached it already)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Posted = Annotated[dict[str, str], Depends(posted_fields)]


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, wallet: Wallet, acting: Subject, done: str = ""
              ) -> Response:
    citizen_id = acting.subject_id
    with reading(wallet.ctx) as session:
        views = records.latest_values(wallet.ctx, session, get_citizen(session, citizen_id))
        sources = records.version_sources(session, citizen_id)
        names = service_names(session, [s for each in sources.values() for s in each
                                        if s != "citizen"])
        held = {code: h.service_name for code, h in held_categories(session).items()}
    return render(request, "data.html", nav="data",
                  groups=_cards(views, sources, names, held),
                  notice=_DONE.get(done))


# Before /data/{code}: "export.json" is not a category.
@router.get("/data/export.json")
def export(wallet: Wallet, acting: Subject) -> Response:
    citizen_id = acting.subject_id
    body = {"exported_at": wallet.ctx.clock().isoformat(),
            "categories": records.export_all(wallet.ctx, citizen_id)}
    return Response(json.dumps(body, ensure_ascii=False, indent=2),
                    media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-data.json"'})


def _names(wallet: WalletState, views: Sequence[records.RecordView]) -> dict[str, str]:
    with reading(wallet.ctx) as session:
        return service_names(session, [v.source for v in views if v.source != "citizen"])


def _history(wallet: WalletState, citizen_id: str, views: Sequence[records.RecordView],
             category: Category) -> list[Version]:
    """Every version, newest first, with who wrote it and any dispute of it."""
    names = _names(wallet, views)
    told = disputes.disputes_of(wallet.ctx, citizen_id, category.code)
    newest_of = {v.source: v.version for v in views}  # each writer's newest version
    sources = [v.source for v in views]
    out = []
    for i, v in enumerate(views):
        dispute = told.get(v.version)
        issued = v.source != "citizen"
        out.append(Version(
            v.version, v.created_at, _source_words(v.source, names, _previous(sources, i)),
            show_value(category, v.value),
            issuer=_issuer_name(v.source, names) if issued else "",
            issuer_id=v.source if issued else "",
            disputed=dispute.at if dispute is not None else None,
            # Only what the issuer says now can be disputed, once, and only to a service
            # the vault knows (a value written for an unregistered one has nobody to tell).
            disputable=(issued and dispute is None and newest_of[v.source] == v.version
                        and v.source in names),
            withdrawn=v.withdrawn_at))
    return out[::-1]


def _issued_now(views: Sequence[records.RecordView]) -> bool:
    """Whether the newest version is one a service issued (shown read-only)."""
    return bool(views) and views[-1].source != "citizen"


def _stored_list(views: Sequence[records.RecordView]) -> list[Any] | None:
    return views[-1].value if views and isinstance(views[-1].value, list) else None


def _page(category: Category, views: Sequence[records.RecordView], number: int
          ) -> ListPage | None:
    """Page `number` of a stored list too long for one form (None: the whole value, or
    an issued one, which is never changed a page at a time)."""
    stored = _stored_list(views)
    if stored is None or layout_of(category.schema) != "items" or _issued_now(views):
        return None
    return page_of(len(stored), views[-1].version, number)


def _fields(category: Category, views: Sequence[records.RecordView], page: ListPage | None
            ) -> dict[str, str]:
    if not views or _issued_now(views):  # the citizen's own value starts empty
        return {}
    if page is None:
        return form_from_value(category.schema, views[-1].value)
    return form_from_value(category.schema, views[-1].value, start=page.start, stop=page.stop)


def _edit_page(request: Request, wallet: WalletState, citizen_id: str, category: Category,
               fields: Mapping[str, str], *, problem: Problem | None = None, more: int = 0,
               status_code: int = 200, page: ListPage | None = None, done: str = ""
               ) -> Response:
    views = records.record_history(wallet.ctx, citizen_id, category.code)
    if page is not None:  # a posted page does not say how long the list is: look
        stored = _stored_list(views)
        page = replace(page, total=len(stored) if stored is not None else page.stop)
    history = _history(wallet, citizen_id, views, category)
    issued = history[0] if _issued_now(views) else None
    told = next((v.issuer for v in history if v.issuer and v.disputed), "")
    return render(request, "data_edit.html", status_code=status_code, nav="data",
                  title=category.label, category=category, have=bool(views), page=page,
                  form=edit_form(category, fields, problem=problem, more=more,
                                 start=page.start if page is not None else 0),
                  history=history, issued=issued,
                  # The version the "add your own" form was drawn over (see `save`).
                  own=views[-1].version if issued is not None else None,
                  own_versions=sum(v.source == "citizen" for v in views),
                  label=_lower(category.label),
                  notice=_TOLD[done].format(issuer=told) if done in _TOLD and told else None)


def _drawn_again(request: Request, wallet: WalletState, citizen_id: str, category: Category,
                 number: int, status_code: int) -> Response:
    """The page drawn afresh from the newest version, saying why nothing was saved."""
    views = records.record_history(wallet.ctx, citizen_id, category.code)
    page = _page(category, views, number)
    return _edit_page(request, wallet, citizen_id, category, _fields(category, views, page),
                      problem=Problem("", _STALE), more=1, status_code=status_code, page=page)


@router.get("/data/{code}", response_class=HTMLResponse)
def edit_page(request: Request, wallet: Wallet, acting: Subject, code: str,
              page: PageNumber = 1, done: str = "") -> Response:
    citizen_id = acting.subject_id
    category = _category(code)
    _not_held(wallet, code)
    if category.series:  # readings: a table and charts, and a form to add some
        return readings_page(request, wallet, citizen_id, category)
    views = records.record_history(wallet.ctx, citizen_id, code)
    shown = _page(category, views, page)
    return _edit_page(request, wallet, citizen_id, category, _fields(category, views, shown),
                      more=1, page=shown, done=done)


@router.post("/data/{code}", response_class=HTMLResponse)
def save(request: Request, wallet: Wallet, acting: Subject, code: str, posted: Posted
         ) -> Response:
    citizen_id = acting.subject_id
    category = _category(code)
    _not_held(wallet, code)
    fields = {k: v for k, v in posted.items() if k not in _NOT_FORM_FIELDS}
    if category.series:  # added as a batch of the citizen's own; nothing stored changes
        return save_readings(request, wallet, citizen_id, category, fields,
                             posted.get("action"), actor_id=acting.actor_id)
    try:
        page = posted_page(posted)
    except ValueError:
        return _drawn_again(request, wallet, citizen_id, category, 1, 400)
    if posted.get("action") == "more":  # "Add another": the same form, one more group
        return _edit_page(request, wallet, citizen_id, category, fields, more=1, page=page)
    views = records.record_history(wallet.ctx, citizen_id, code)
    # Over an issued value, only a form drawn as "add your own instead" over that very
    # version saves: never a page of the issued list (that would edit the issuer's
    # value), nor a form opened before the service issued it.
    if _issued_now(views) and (page is not None or posted.get("own") != str(views[-1].version)):
        issuer = _issuer_name(views[-1].source, _names(wallet, views))
        return _edit_page(request, wallet, citizen_id, category,
                          fields if page is None else {}, status_code=409,
                          problem=Problem("", _ISSUED_SINCE.format(issuer=issuer)))
    stored: list[Any] = []
    if page is not None:
        found = _stored_list(views)
        if found is None or not page.still_fits(views[-1].version, len(found)):
            return _drawn_again(request, wallet, citizen_id, category, page.number, 409)
        stored = found
    got: FormReading | None = None
    try:
        got = read_form(category.schema, fields, start=page.start if page is not None else 0)
        value = got.value if page is None else page.merge(stored, got.value)
        records.write_record(wallet.ctx, citizen_id, code, value, actor_id=acting.actor_id)
    except (FormError, InvalidValue) as exc:
        return _edit_page(request, wallet, citizen_id, category, fields,
                          problem=explain(category, exc, got), status_code=400, page=page)
    return RedirectResponse("/wallet/data?done=saved", 303)


def _lower(label: str) -> str:
    """A label inside a sentence: "date of birth", but "Attendance Allowance", "GP practice"."""
    first, *rest = label.split(" ")
    if (len(first) > 1 and first.isupper()) or any(w[:1].isupper() for w in rest):
        return label
    return label[:1].lower() + label[1:]


def _only_the_issuer(wallet: WalletState, views: Sequence[records.RecordView],
                     category: Category) -> RecordConflict:
    issued = [v for v in views if v.source != "citizen"]
    issuer = _issuer_name(issued[-1].source, _names(wallet, issued)) if issued else "A service"
    return RecordConflict(f"{issuer} issued your {_lower(category.label)}: only they can "
                          "change or withdraw it. If it is wrong, you can tell them on its "
                          "page.")


@router.get("/data/{code}/delete", response_class=HTMLResponse)
def delete_page(request: Request, wallet: Wallet, acting: Subject, code: str
                ) -> Response:
    citizen_id = acting.subject_id
    category = _category(code)
    views = records.record_history(wallet.ctx, citizen_id, code)
    if not views:
        raise NotFound(f"you have no {category.label} to delete")
    own = sum(v.source == "citizen" for v in views)
    if own == 0:
        raise _only_the_issuer(wallet, views, category)
    return render(request, "data_delete.html", nav="data", title=f"Delete {category.label}",
                  category=category, versions=own, kept=len(views) - own)


@router.post("/data/{code}/delete")
def delete(wallet: Wallet, acting: Subject, code: str) -> Response:
    citizen_id = acting.subject_id
    category = _category(code)
    try:
        records.delete_records(wallet.ctx, citizen_id, code, actor_id=acting.actor_id)
    except NotFound:
        raise NotFound(f"you have no {category.label} to delete") from None
    except RecordConflict:
        views = records.record_history(wallet.ctx, citizen_id, code)
        raise _only_the_issuer(wallet, views, category) from None
    return RedirectResponse("/wallet/data?done=deleted", 303)


def _disputed_version(wallet: WalletState, citizen_id: str, category: Category
                      ) -> Version:
    """The version "Tell them this is wrong" is about: the newest issued one not yet told."""
    views = records.record_history(wallet.ctx, citizen_id, category.code)
    for v in _history(wallet, citizen_id, views, category):
        if v.issuer and (v.disputable or v.disputed):
            return v
    raise NotFound(f"no service issued your {_lower(category.label)}, so there is nobody "
                   "to tell")


@router.get("/data/{code}/wrong", response_class=HTMLResponse)
def wrong_page(request: Request, wallet: Wallet, acting: Subject, code: str
               ) -> Response:
    citizen_id = acting.subject_id
    category = _category(code)
    version = _disputed_version(wallet, citizen_id, category)
    with reading(wallet.ctx) as session:
        issuer = get_service(session, version.issuer_id)
    return render(request, "data_wrong.html", nav="data",
                  title=f"Tell {version.issuer} this is wrong", category=category,
                  version=version, reasons=_REASONS, label=_lower(category.label),
                  contact=issuer.contact,
                  contact_href=contact_link(issuer.contact) if issuer.contact else "",
                  privacy_notice_url=issuer.privacy_notice_url)


def _posted_version(posted: Mapping[str, str]) -> int:
    text = posted.get("version", "")
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise InvalidRequest("the form did not say which version is wrong")
    return int(text)


@router.post("/data/{code}/wrong")
def tell_wrong(wallet: Wallet, acting: Subject, code: str, posted: Posted) -> Response:
    citizen_id = acting.subject_id
    category = _category(code)
    told = disputes.dispute_record(wallet.ctx, citizen_id, category.code,
                                   version=_posted_version(posted),
                                   reason=posted.get("reason") or "not_given",
                                   actor_id=acting.actor_id)
    done = "told" if told.new else "told_before"
    return RedirectResponse(f"/wallet/data/{category.code}?done={done}", 303)
