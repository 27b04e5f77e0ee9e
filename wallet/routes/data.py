"""My data: see every kind of information the vault can hold, add and change it (checked
against the catalog's schemas), see where each came from, delete it, download it all.
A long list (health readings) is changed a page at a time (`wallet.list_pages`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vault.domain.categories import Category, categories
from vault.domain.errors import InvalidValue
from vault.errors import NotFound
from vault.services import records
from vault.services.activity import service_names
from vault.services.citizens import get_citizen
from vault.services.context import reading
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
from wallet.routes.deps import Citizen, Wallet, csrf_guard, render
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
_NOT_FORM_FIELDS = frozenset({"csrf", "action", *PAGE_FIELDS})
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


@dataclass(frozen=True, slots=True)
class Version:
    """One row of a record's history."""

    version: int
    added: datetime
    source: str
    shown: Shown


def _source_words(source: str, names: Mapping[str, str], version: int) -> str:
    """Who wrote this version: the first one was added, a later one changed it."""
    service = names.get(source, "a service")
    if version == 1:
        return "You added this" if source == "citizen" else f"From {service}"
    return "You changed this" if source == "citizen" else f"Updated by {service}"


def _group_of(code: str) -> str:
    head = code.split(".", 1)[0]
    for title, heads in _GROUPS:
        if head in heads:
            return title
    return head.replace("_", " ").capitalize()


def _cards(views: Mapping[str, records.RecordView], names: Mapping[str, str]
           ) -> list[tuple[str, list[Card]]]:
    grouped: dict[str, list[Card]] = {title: [] for title, _ in _GROUPS}
    for code, cat in categories().items():
        view = views.get(code)
        card = Card(code, cat.label, cat.description, None) if view is None else Card(
            code, cat.label, cat.description, show_value(cat, view.value),
            _source_words(view.source, names, view.version), view.created_at,
            # Versions run 1, 2, 3...: deleting removes them all, so the newest is the count.
            view.version)
        grouped.setdefault(_group_of(code), []).append(card)
    return [(title, cards) for title, cards in grouped.items() if cards]


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
def data_page(request: Request, wallet: Wallet, citizen_id: Citizen, done: str = ""
              ) -> Response:
    with reading(wallet.ctx) as session:
        views = records.latest_values(wallet.ctx, session, get_citizen(session, citizen_id))
        names = service_names(session, [v.source for v in views.values()
                                        if v.source != "citizen"])
    return render(request, "data.html", nav="data", groups=_cards(views, names),
                  notice=_DONE.get(done))


# Before /data/{code}: "export.json" is not a category.
@router.get("/data/export.json")
def export(wallet: Wallet, citizen_id: Citizen) -> Response:
    body = {"exported_at": wallet.ctx.clock().isoformat(),
            "categories": records.export_all(wallet.ctx, citizen_id)}
    return Response(json.dumps(body, ensure_ascii=False, indent=2),
                    media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-data.json"'})


def _history(wallet: WalletState, views: Sequence[records.RecordView], category: Category
             ) -> list[Version]:
    with reading(wallet.ctx) as session:
        names = service_names(session, [v.source for v in views if v.source != "citizen"])
    return [Version(v.version, v.created_at, _source_words(v.source, names, v.version),
                    show_value(category, v.value)) for v in reversed(views)]


def _stored_list(views: Sequence[records.RecordView]) -> list[Any] | None:
    return views[-1].value if views and isinstance(views[-1].value, list) else None


def _page(category: Category, views: Sequence[records.RecordView], number: int
          ) -> ListPage | None:
    """Page `number` of a stored list too long for one form (None: the whole value)."""
    stored = _stored_list(views)
    if stored is None or layout_of(category.schema) != "items":
        return None
    return page_of(len(stored), views[-1].version, number)


def _fields(category: Category, views: Sequence[records.RecordView], page: ListPage | None
            ) -> dict[str, str]:
    if not views:
        return {}
    if page is None:
        return form_from_value(category.schema, views[-1].value)
    return form_from_value(category.schema, views[-1].value, start=page.start, stop=page.stop)


def _edit_page(request: Request, wallet: WalletState, citizen_id: str, category: Category,
               fields: Mapping[str, str], *, problem: Problem | None = None, more: int = 0,
               status_code: int = 200, page: ListPage | None = None) -> Response:
    views = records.record_history(wallet.ctx, citizen_id, category.code)
    if page is not None:  # a posted page does not say how long the list is: look
        stored = _stored_list(views)
        page = replace(page, total=len(stored) if stored is not None else page.stop)
    return render(request, "data_edit.html", status_code=status_code, nav="data",
                  title=category.label, category=category, have=bool(views), page=page,
                  form=edit_form(category, fields, problem=problem, more=more,
                                 start=page.start if page is not None else 0),
                  history=_history(wallet, views, category))


def _drawn_again(request: Request, wallet: WalletState, citizen_id: str, category: Category,
                 number: int, status_code: int) -> Response:
    """The page drawn afresh from the newest version, saying why nothing was saved."""
    views = records.record_history(wallet.ctx, citizen_id, category.code)
    page = _page(category, views, number)
    return _edit_page(request, wallet, citizen_id, category, _fields(category, views, page),
                      problem=Problem("", _STALE), more=1, status_code=status_code, page=page)


@router.get("/data/{code}", response_class=HTMLResponse)
def edit_page(request: Request, wallet: Wallet, citizen_id: Citizen, code: str,
              page: PageNumber = 1) -> Response:
    category = _category(code)
    views = records.record_history(wallet.ctx, citizen_id, code)
    shown = _page(category, views, page)
    return _edit_page(request, wallet, citizen_id, category, _fields(category, views, shown),
                      more=1, page=shown)


@router.post("/data/{code}", response_class=HTMLResponse)
def save(request: Request, wallet: Wallet, citizen_id: Citizen, code: str, posted: Posted
         ) -> Response:
    category = _category(code)
    fields = {k: v for k, v in posted.items() if k not in _NOT_FORM_FIELDS}
    try:
        page = posted_page(posted)
    except ValueError:
        return _drawn_again(request, wallet, citizen_id, category, 1, 400)
    if posted.get("action") == "more":  # "Add another": the same form, one more group
        return _edit_page(request, wallet, citizen_id, category, fields, more=1, page=page)
    stored: list[Any] = []
    if page is not None:
        views = records.record_history(wallet.ctx, citizen_id, code)
        found = _stored_list(views)
        if found is None or not page.still_fits(views[-1].version, len(found)):
            return _drawn_again(request, wallet, citizen_id, category, page.number, 409)
        stored = found
    got: FormReading | None = None
    try:
        got = read_form(category.schema, fields, start=page.start if page is not None else 0)
        value = got.value if page is None else page.merge(stored, got.value)
        records.write_record(wallet.ctx, citizen_id, code, value)
    except (FormError, InvalidValue) as exc:
        return _edit_page(request, wallet, citizen_id, category, fields,
                          problem=explain(category, exc, got), status_code=400, page=page)
    return RedirectResponse("/wallet/data?done=saved", 303)


@router.get("/data/{code}/delete", response_class=HTMLResponse)
def delete_page(request: Request, wallet: Wallet, citizen_id: Citizen, code: str
                ) -> Response:
    category = _category(code)
    views = records.record_history(wallet.ctx, citizen_id, code)
    if not views:
        raise NotFound(f"you have no {category.label} to delete")
    return render(request, "data_delete.html", nav="data", title=f"Delete {category.label}",
                  category=category, versions=len(views))


@router.post("/data/{code}/delete")
def delete(wallet: Wallet, citizen_id: Citizen, code: str) -> Response:
    category = _category(code)
    try:
        records.delete_records(wallet.ctx, citizen_id, code)
    except NotFound:
        raise NotFound(f"you have no {category.label} to delete") from None
    return RedirectResponse("/wallet/data?done=deleted", 303)
