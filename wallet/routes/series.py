"""The page of a series (health readings): the latest as a table and a chart per measure,
and a form to add readings, which become one batch of the citizen's own
(`vault.services.series.append_own`). `wallet.routes.data` hands a series' GET and POST
here; nothing of a stored reading is edited (a series only grows: a device's batches are
its issuer's, and each of the citizen's is kept as it was added)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vault.domain.categories import Category
from vault.domain.errors import InvalidValue
from vault.services import series
from wallet.forms import FormError, FormReading, Problem, edit_form, explain, read_form
from wallet.routes.deps import render
from wallet.series_view import series_view
from wallet.web import WalletState

__all__ = ["readings_page", "save_readings"]

_NOTHING_TO_ADD = "Fill in at least one measurement to add, or go back to your data."


def readings_page(request: Request, wallet: WalletState, citizen_id: str, category: Category,
                  fields: Mapping[str, str] | None = None, *, problem: Problem | None = None,
                  more: int = 1, status_code: int = 200) -> HTMLResponse:
    recent = series.recent_items(wallet.ctx, citizen_id, category.code)
    return render(request, "data_series.html", status_code=status_code, nav="data",
                  title=category.label, category=category, recent=recent,
                  view=series_view(category, recent.items),
                  form=edit_form(category, dict(fields or {}), problem=problem, more=more))


def save_readings(request: Request, wallet: WalletState, citizen_id: str, category: Category,
                  fields: Mapping[str, str], action: str | None, *, actor_id: str
                  ) -> Response:
    """"Add another": the same form with one more row; "Save": the rows typed, as one
    batch (a problem in any of them, and nothing is added). `actor_id`: who is signed
    in (someone acting for the citizen needs `edit`)."""
    if action == "more":
        return readings_page(request, wallet, citizen_id, category, fields)
    got: FormReading | None = None
    try:
        got = read_form(category.schema, fields)
        if not got.value:
            first = edit_form(category, {}, more=1).all_fields[0]
            return readings_page(request, wallet, citizen_id, category, fields,
                                 problem=Problem(first.name, _NOTHING_TO_ADD),
                                 status_code=400, more=0 if fields else 1)
        series.append_own(wallet.ctx, citizen_id, category.code, got.value,
                          actor_id=actor_id)
    except (FormError, InvalidValue) as exc:
        return readings_page(request, wallet, citizen_id, category, fields,
                             problem=explain(category, exc, got), status_code=400, more=0)
    return RedirectResponse("/wallet/data?done=saved", 303)  # as every data page does
