"""A series in the wallet (health readings): the latest as a table in words and a chart per
measure, never JSON; readings typed in are added as one batch of the citizen's own and
nothing already there changes."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx
from support.webwallet import WebWallet

from vault.domain.categories import categories
from vault.services import records, series
from wallet.series_view import series_view

URL = "/wallet/data/health.observations"
OBS = "health.observations"


def text_of(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))


def rows(page: httpx.Response) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", page.text, re.S)
    assert body is not None, "no table of readings"
    return [[html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", r)]
            for r in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def test_readings_are_a_table_in_words_and_a_chart_per_measure(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    assert "You have no readings yet." in text_of(b.get(URL))
    # From a device: a code the catalog has no words for, an offset and a fraction.
    series.append_own(web.ctx, b.citizen_id, OBS, [
        {"kind": "heart_rate", "value": 72, "unit": "bpm", "at": "2024-07-17T09:30:00Z"},
        {"kind": "heart_rate", "value": 140, "unit": "bpm", "at": "2024-07-17T10:30:00Z"},
        {"kind": "body_fat", "value": 21, "unit": "%", "at": "2024-05-17T09:31:00.250+05:30"},
        {"kind": "blood_pressure", "value": "120/80", "unit": "mmHg",
         "at": "2024-01-17T10:30:00Z"}])
    page = b.get(URL)
    assert page.status_code == 200
    assert "Readings were added once, most recently on" in text_of(page)
    assert rows(page) == [  # newest first, on London's clock
        ["Heart rate", "140", "bpm", "17 July 2024, 11:30 BST"],
        ["Heart rate", "72", "bpm", "17 July 2024, 10:30 BST"],
        ["Body fat", "21", "%", "17 May 2024, 05:01 BST"],
        ["Blood pressure", "120/80", "mmHg", "17 January 2024, 10:30 GMT"]]
    words = text_of(page)
    assert "heart_rate" not in words and '"kind"' not in page.text  # no codes, no JSON
    # A chart for each measure with whole numbers (not "120/80"), named for a screen reader.
    charts = re.findall(r'<svg class="series-chart" role="img"[^>]*>.*?</svg>', page.text, re.S)
    assert len(charts) == 2
    assert "<title id=\"chart-1-t\">Heart rate (bpm)</title>" in page.text
    assert "2 readings of heart rate in bpm" in page.text and "highest 140" in page.text
    assert "<script" not in "".join(charts) and "style=" not in "".join(charts)


def test_readings_typed_in_are_added_as_one_batch(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    series.append_own(web.ctx, b.citizen_id, OBS, [
        {"kind": "steps", "value": 6000, "unit": "steps", "at": "2024-07-16T20:00:00Z"}])
    # "Add another" draws one more row and saves nothing.
    one = {"f.0.kind": "heart_rate", "f.0.value": "72", "f.0.unit": "bpm",
           "f.0.at": "2024-07-17T10:30"}
    more = b.form(URL, {**one, "action": "more"})
    assert more.status_code == 200 and 'name="f.1.kind"' in more.text
    r = b.form(URL, {**one, "f.1.kind": "blood_pressure", "f.1.value": "120/80",
                     "f.1.unit": "mmHg", "f.1.at": "2024-01-17T10:30"})
    assert r.status_code == 303 and r.headers["location"] == "/wallet/data?done=saved"
    versions = records.record_history(web.ctx, b.citizen_id, OBS)
    assert [(v.version, v.source) for v in versions] == [(1, "citizen"), (2, "citizen")]
    assert versions[0].value == [  # what was there is unchanged
        {"kind": "steps", "value": 6000, "unit": "steps", "at": "2024-07-16T20:00:00Z"}]
    assert versions[1].value == [
        {"kind": "heart_rate", "value": 72, "unit": "bpm", "at": "2024-07-17T09:30:00Z"},
        {"kind": "blood_pressure", "value": "120/80", "unit": "mmHg",
         "at": "2024-01-17T10:30:00Z"}]
    assert len(rows(b.get(URL))) == 3


def test_nothing_typed_or_a_bad_row_adds_nothing(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    empty = b.form(URL, {"f.0.kind": "", "f.0.value": "", "f.0.unit": "", "f.0.at": ""})
    assert empty.status_code == 400
    assert "Fill in at least one measurement to add" in text_of(empty)
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    bad = b.form(URL, {"f.0.kind": "heart_rate", "f.0.value": "72", "f.0.unit": "bpm",
                       "f.0.at": "2024-07-17T10:30",
                       "f.1.kind": "heart_rate", "f.1.value": "72", "f.1.unit": "bpm",
                       "f.1.at": later.strftime("%Y-%m-%dT%H:%M")})
    assert bad.status_code == 400
    assert "(measurement 2) is in the future" in text_of(bad)
    assert records.record_history(web.ctx, b.citizen_id, OBS) == []


def test_the_table_keeps_the_newest_and_leaves_out_what_it_cannot_read() -> None:
    cat = categories()[OBS]
    items = [{"kind": "steps", "value": i, "unit": "steps",
              "at": f"2024-05-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"} for i in range(60)]
    view = series_view(cat, [*items, {"kind": "steps"}, "junk", {"at": "2024-05-01"}])
    assert len(view.readings) == 50 and view.more == 10
    assert view.readings[0].value == "59" and view.readings[-1].value == "10"
    assert [c.count for c in view.charts] == [50]
