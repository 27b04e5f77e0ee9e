"""My data: the overview, forms made from the catalog's schemas, errors in plain words,
history, delete, the JSON download, and that nobody sees anyone else's data."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from support.vaultworld import blue_badge
from support.webwallet import Browser, WebWallet, open_wallet

from vault.domain.categories import categories, validate_value
from vault.domain.errors import InvalidValue
from vault.services import records
from wallet.forms import (
    EXAMPLES,
    PAGE_ITEMS,
    WAS,
    edit_form,
    form_from_value,
    layout_of,
    read_form,
    readable_date,
    value_from_form,
)

SAVED = "/wallet/data?done=saved"


def history(web: WebWallet, b: Browser, code: str) -> list[tuple[int, Any, str]]:
    assert b.citizen_id is not None
    return [(v.version, v.value, v.source)
            for v in records.record_history(web.ctx, b.citizen_id, code)]


def newest(web: WebWallet, b: Browser, code: str) -> Any:
    assert b.citizen_id is not None
    return records.read_records(web.ctx, b.citizen_id)[code].value


def text_of(page: httpx.Response) -> str:
    """The page's words, with tags and extra spaces gone and entities decoded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))


def main_of(page: httpx.Response) -> str:
    found = re.search(r"<main.*</main>", page.text, re.S)
    assert found is not None
    return found.group(0)


class FormFields(HTMLParser):
    """What a browser would post for the form with `action`, left as the page drew it."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action, self.inside = action, False
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside:
            return
        if tag == "input" and ("checked" in a or a.get("type") not in ("checkbox", "radio")):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields[a["name"]] = ""
        elif tag == "select":
            self._select = a["name"]
            self.fields.setdefault(a["name"], "")
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def drawn_fields(page: httpx.Response, action: str) -> dict[str, str]:
    parser = FormFields(action)
    parser.feed(page.text)
    # A browser drops the one newline right after <textarea>: the parser does not.
    return {k: v.removeprefix("\n") for k, v in parser.fields.items() if k != "csrf"}


# --- the overview ---------------------------------------------------------------------------


def test_overview_shows_values_readably_with_where_they_came_from(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    badge_team = blue_badge(web.ctx)
    records.write_record(web.ctx, b.citizen_id, "transport.blue_badge",
                         {"number": "AB12CD", "expires": "2027-03-01"}, source=badge_team)
    records.write_record(web.ctx, b.citizen_id, "education.school",
                         {"name": "Riverside Primary", "urn": "100000"}, source="svc_gone")
    records.write_record(web.ctx, b.citizen_id, "benefits.universal_credit",
                         {"receiving": True, "since": "2024-01-02"})
    records.write_record(web.ctx, b.citizen_id, "health.prescriptions", [
        {"medicine": "Aspirin", "dose": "75 mg", "since": "2024-05-17"},
        {"medicine": "Ramipril", "dose": "5 mg", "since": "2023-11-30"}])
    records.write_record(web.ctx, b.citizen_id, "identity.name",
                         {"given": "Ada", "family": "King"})

    page = b.get("/wallet/data")
    assert page.status_code == 200
    words = text_of(page)
    assert "Ada King" in words                                   # a name, as people write it
    assert "10 December 1950" in words                           # a date
    assert re.search(r"12 St James&#39;s Square<br>London<br>SW1Y 4JH", page.text)  # lines
    assert "Yes" in words and "2 January 2024" in words          # yes/no, a date in an object
    assert re.search(r"<li>Medicine: Aspirin; Dose: 75 mg; Since when: 17 May 2024</li>",
                     page.text)                                  # a list as a list
    assert "Issued by Blue Badge team on" in words               # provenance: a service
    assert "Issued by a service on" in words                     # ... one no longer known
    assert words.count("You added this on") == 4
    assert words.count("You changed this on") == 1               # the name changed once
    assert "2 versions." in words
    assert 'href="/wallet/data/identity.name">Change' in page.text
    assert 'href="/wallet/data/contact.email">Add' in page.text  # not there yet
    assert re.search(r'<a [^>]*href="/wallet/data/export.json"[^>]*>Download all my data '
                     r"\(JSON\)</a>", page.text)
    assert 'href="/wallet/data" aria-current="page"' in page.text
    for cat in categories().values():  # every kind of information has its place
        assert f'href="/wallet/data/{cat.code}"' in page.text
        assert cat.label in words
    assert [h for h in re.findall(r"<h2>([^<]+)</h2>", main_of(page))] == [
        "About you", "Where you live", "Money and benefits", "Health", "School and family",
        "Getting around", "Relationship"]


def test_done_codes_are_fixed_words_and_query_text_is_never_shown(web: WebWallet) -> None:
    b = web.sign_up()
    assert '<div class="notice" role="status">Saved.</div>' in b.get(SAVED).text
    page = b.get("/wallet/data", params={"done": "<b>you were hacked</b>"})
    assert page.status_code == 200
    assert "hacked" not in page.text
    assert 'class="notice"' not in page.text


# --- the edit form: one kind of field at a time -------------------------------------------


def test_change_a_name(web: WebWallet) -> None:
    b = web.sign_up()
    page = b.get("/wallet/data/identity.name")
    assert page.status_code == 200
    assert re.search(r'id="f-given" name="f.given"[^>]*autocomplete="given-name"[^>]*'
                     r'type="text" value="Ada"', page.text)
    assert 'value="Lovelace"' in page.text
    r = b.form("/wallet/data/identity.name", {"f.given": "  Grace ", "f.family": "Hopper"})
    assert (r.status_code, r.headers["location"]) == (303, SAVED)
    assert history(web, b, "identity.name")[-2:] == [
        (1, {"given": "Ada", "family": "Lovelace"}, "citizen"),
        (2, {"given": "Grace", "family": "Hopper"}, "citizen")]
    assert "Grace Hopper" in text_of(b.get("/wallet/data"))


def test_change_an_address_one_line_per_item(web: WebWallet) -> None:
    b = web.sign_up()
    page = b.get("/wallet/data/address.home")
    assert re.search(r'<textarea id="f-lines" name="f.lines"[^>]*autocomplete="street-address"'
                     r"[^>]*>\n12 St James&#39;s Square</textarea>", page.text)
    r = b.form("/wallet/data/address.home", {
        "f.lines": "Flat 2 \r\n\r\n 1 Main Street\r\n", "f.town": "Leeds",
        "f.postcode": "LS1 1AA", "f.local_authority": "Leeds"})
    assert r.status_code == 303
    assert newest(web, b, "address.home") == {
        "lines": ["Flat 2", "1 Main Street"], "town": "Leeds", "postcode": "LS1 1AA",
        "local_authority": "Leeds"}


def test_change_a_date_of_birth(web: WebWallet) -> None:
    b = web.sign_up()
    page = b.get("/wallet/data/identity.date_of_birth")
    assert re.search(r'<input id="f-value" name="value"[^>]*autocomplete="bday"[^>]*'
                     r'type="date" value="1950-12-10"', page.text)
    assert b.form("/wallet/data/identity.date_of_birth",
                  {"value": "2001-07-04"}).status_code == 303
    assert newest(web, b, "identity.date_of_birth") == "2001-07-04"


def test_choose_from_a_list(web: WebWallet) -> None:
    b = web.sign_up()
    page = b.get("/wallet/data/benefits.attendance_allowance")
    assert re.search(r'<select id="f-award" name="f.award"[^>]*>\s*<option value="">Choose one'
                     r'</option>\s*<option value="higher">Higher</option>'
                     r'<option value="lower">Lower</option>', page.text)
    r = b.form("/wallet/data/benefits.attendance_allowance", {
        "f.award": "higher", "f.since": "2024-05-17", "f.awarded_by": "DWP"})
    assert r.status_code == 303
    assert newest(web, b, "benefits.attendance_allowance") == {
        "award": "higher", "since": "2024-05-17", "awarded_by": "DWP"}
    again = b.get("/wallet/data/benefits.attendance_allowance")
    assert '<option value="higher" selected>Higher</option>' in again.text
    # Not one of the choices: refused by the form, nothing written.
    r = b.form("/wallet/data/benefits.attendance_allowance", {
        "f.award": "highest", "f.since": "2024-05-17", "f.awarded_by": "DWP"})
    assert r.status_code == 400
    assert "Rate must be one of the choices in the list." in text_of(r)
    assert len(history(web, b, "benefits.attendance_allowance")) == 1


def test_answer_yes_or_no(web: WebWallet) -> None:
    b = web.sign_up()
    page = b.get("/wallet/data/benefits.universal_credit")
    assert re.search(r"<fieldset>\s*<legend>Do you get Universal Credit now\?</legend>",
                     page.text)
    assert 'type="radio" id="f-receiving-yes" name="f.receiving" value="yes"' in page.text
    assert 'type="radio" id="f-receiving-no" name="f.receiving" value="no"' in page.text
    url = "/wallet/data/benefits.universal_credit"
    assert b.form(url, {"f.receiving": "no", "f.since": ""}).status_code == 303
    assert newest(web, b, "benefits.universal_credit") == {"receiving": False}  # empty: left out
    assert b.form(url, {"f.receiving": "yes", "f.since": "2024-01-02"}).status_code == 303
    assert newest(web, b, "benefits.universal_credit") == {"receiving": True,
                                                           "since": "2024-01-02"}
    assert re.search(r'id="f-receiving-yes" name="f.receiving" value="yes"\s*checked',
                     b.get(url).text)
    # No answer to a question that needs one.
    r = b.form(url, {"f.since": "2024-01-02"})
    assert r.status_code == 400
    assert "Choose Yes or No for “Do you get Universal Credit now?”." in text_of(r)
    assert 'href="#f-receiving-yes"' in r.text
    assert len(history(web, b, "benefits.universal_credit")) == 2


def test_email_and_phone_fields_have_their_input_types(web: WebWallet) -> None:
    b = web.sign_up()
    assert re.search(r'name="value"[^>]*autocomplete="email"[^>]*type="email"',
                     b.get("/wallet/data/contact.email").text)
    assert re.search(r'name="value"[^>]*autocomplete="tel"[^>]*type="tel"',
                     b.get("/wallet/data/contact.phone").text)
    assert b.form("/wallet/data/contact.phone", {"value": "+447700900123"}).status_code == 303
    assert b.form("/wallet/data/contact.email", {"value": "ada@example.org"}).status_code == 303
    assert newest(web, b, "contact.phone") == "+447700900123"
    assert newest(web, b, "contact.email") == "ada@example.org"


def test_a_phone_number_in_uk_national_format_is_stored_in_e164(web: WebWallet) -> None:
    b = web.sign_up()
    url = "/wallet/data/contact.phone"
    assert "such as 07700 900123" in text_of(b.get(url))  # the hint says what to type
    for typed in ("07700 900456", "+44 (0)7700-900-456", "0044 7700 900456"):
        assert b.form(url, {"value": typed}).status_code == 303, typed
        assert newest(web, b, "contact.phone") == "+447700900456"
    assert drawn_fields(b.get(url), url)["value"] == "+447700900456"
    # Something that is not a phone number: said plainly, kept on the page, nothing saved.
    r = b.form(url, {"value": "call me maybe"})
    assert r.status_code == 400
    assert ("Phone number must be a UK phone number such as 07700 900123, or one starting "
            "with + and a country code.") in text_of(r)
    assert drawn_fields(r, url)["value"] == "call me maybe"
    assert len(history(web, b, "contact.phone")) == 3


def test_a_postcode_is_stored_in_capitals_with_one_space(web: WebWallet) -> None:
    b = web.sign_up()
    url = "/wallet/data/address.home"
    sent = {"f.lines": "1 Main Street", "f.town": "London", "f.local_authority": "Westminster"}
    assert b.form(url, {**sent, "f.postcode": " sw1a2aa "}).status_code == 303
    assert newest(web, b, "address.home")["postcode"] == "SW1A 2AA"
    assert "SW1A 2AA" in text_of(b.get("/wallet/data"))
    r = b.form(url, {**sent, "f.postcode": "sw1a"})
    assert r.status_code == 400
    assert "Postcode must be a UK postcode such as SW1A 1AA." in text_of(r)


OBSERVATIONS = "/wallet/data/health.observations"


def reading_rows(page: httpx.Response) -> list[str]:
    return re.findall(r"<li>([^<]+)</li>", main_of(page))


# Readings (a series) are added, never edited: tests/wallet/web/test_readings_page.py.


@pytest.mark.parametrize(("sent", "message", "target"), [
    ({"f.0.kind": "heart_rate", "f.0.value": "72", "f.0.unit": "bpm", "f.0.at": "yesterday"},
     "When it was measured is not a valid date and time.", "f-0-at"),
    ({"f.0.kind": "heart_rate", "f.0.value": "72", "f.0.at": "2024-07-17T10:30"},
     "Unit (measurement 1) is missing. Please fill it in.", "f-0-unit"),
    ({"f.0.kind": "Heart rate!", "f.0.value": "72", "f.0.unit": "bpm",
      "f.0.at": "2024-07-17T10:30"},
     "What was measured (measurement 1) must be a measurement name such as heart_rate, steps "
     "or blood_pressure.", "f-0-kind"),
])
def test_a_wrong_reading_is_explained_at_its_field(
        web: WebWallet, sent: dict[str, str], message: str, target: str) -> None:
    b = web.sign_up()
    r = b.form(OBSERVATIONS, sent)
    assert r.status_code == 400
    assert f'<a href="#{target}">{html.escape(message)}</a>' in r.text
    assert re.search(rf'id="{target}"[^>]*aria-invalid="true"', r.text)
    assert history(web, b, "health.observations") == []


PRESCRIPTIONS = "/wallet/data/health.prescriptions"


def many_prescriptions(n: int) -> list[dict[str, Any]]:
    return [{"medicine": f"Medicine {i}", "dose": f"{i} mg", "since": "2024-05-17"}
            for i in range(n)]


def test_a_long_list_is_changed_a_page_at_a_time(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    stored = many_prescriptions(2 * PAGE_ITEMS + 10)
    records.write_record(web.ctx, b.citizen_id, "health.prescriptions", stored)
    first = b.get(PRESCRIPTIONS)
    assert "page 1 of 3" in text_of(first)
    on_first = drawn_fields(first, PRESCRIPTIONS)
    assert on_first[f"f.{PAGE_ITEMS - 1}.dose"] == f"{PAGE_ITEMS - 1} mg"  # the page's last
    assert on_first[f"f.{PAGE_ITEMS}.dose"] == ""  # then a blank row to add one
    assert re.search(r'<a href="/wallet/data/health.prescriptions\?page=2">Next page',
                     first.text)
    # Page 2: items 26 to 50, numbered as in the whole list, and a blank row to add one.
    url2 = f"{PRESCRIPTIONS}?page=2"
    second = b.get(url2)
    drawn = drawn_fields(second, PRESCRIPTIONS)
    assert drawn["page.start"] == str(PAGE_ITEMS) and drawn["page.version"] == "1"
    assert f"<legend>Prescription {PAGE_ITEMS + 1}</legend>" in second.text
    assert "Previous page" in second.text and "Next page" in second.text
    blank = 2 * PAGE_ITEMS
    assert drawn[f"f.{blank}.medicine"] == ""
    # Change one, remove one, add one: only this page's part of the list changes.
    changed = {**drawn, f"f.{PAGE_ITEMS}.dose": "9999 mg", f"remove.{PAGE_ITEMS + 1}": "yes",
               f"f.{blank}.medicine": "Aspirin", f"f.{blank}.dose": "75 mg",
               f"f.{blank}.since": "2024-07-17"}
    assert b.form(PRESCRIPTIONS, changed).status_code == 303
    new = newest(web, b, "health.prescriptions")
    assert new[:PAGE_ITEMS] == stored[:PAGE_ITEMS]
    assert new[PAGE_ITEMS] == {**stored[PAGE_ITEMS], "dose": "9999 mg"}
    assert new[PAGE_ITEMS + 1:2 * PAGE_ITEMS - 1] == stored[PAGE_ITEMS + 2:2 * PAGE_ITEMS]
    assert new[2 * PAGE_ITEMS - 1] == {"medicine": "Aspirin", "dose": "75 mg",
                                       "since": "2024-07-17"}
    assert new[2 * PAGE_ITEMS:] == stored[2 * PAGE_ITEMS:]
    # The same page posted again is out of date (version 1, now 2): nothing is saved.
    r = b.form(PRESCRIPTIONS, changed)
    assert r.status_code == 409
    assert "This list changed after you opened the page" in text_of(r)
    assert len(history(web, b, "health.prescriptions")) == 2
    # Hidden fields that are not numbers: refused, nothing saved.
    r = b.form(PRESCRIPTIONS, {**changed, "page.start": "x"})
    assert r.status_code == 400
    assert len(history(web, b, "health.prescriptions")) == 2
    # Past the last page: the last page.
    assert "page 3 of 3" in text_of(b.get(f"{PRESCRIPTIONS}?page=99"))
    assert b.get(f"{PRESCRIPTIONS}?page=0").status_code == 400


def test_times_are_on_londons_clock_with_gmt_or_bst(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    winter = datetime(2030, 1, 16, 23, 30, tzinfo=UTC)
    summer = datetime(2030, 7, 17, 23, 30, tzinfo=UTC)  # 00:30 the next day in London
    records.write_record(replace(web.ctx, clock=lambda: winter), b.citizen_id,
                         "transport.blue_badge", {"number": "AB12", "expires": "2031-01-01"})
    records.write_record(replace(web.ctx, clock=lambda: summer), b.citizen_id,
                         "transport.blue_badge", {"number": "AB13", "expires": "2031-01-01"})
    overview = text_of(b.get("/wallet/data"))
    assert "You changed this on 18 July 2030, 00:30 BST." in overview
    versions = text_of(b.get("/wallet/data/transport.blue_badge"))
    assert "You changed this on 18 July 2030, 00:30 BST." in versions
    assert "You added this on 16 January 2030, 23:30 GMT." in versions
    assert "UTC" not in overview + versions


def test_a_short_list_has_a_group_per_item_to_add_change_and_remove(web: WebWallet) -> None:
    b = web.sign_up()
    url = "/wallet/data/household.children"
    page = b.get(url)
    assert "<legend>New child (leave it empty if you have none to add)</legend>" in page.text
    assert 'name="f.0.given"' in page.text and 'name="f.1.given"' not in page.text
    r = b.form(url, {"f.0.given": "Sam", "f.0.date_of_birth": "2015-03-01",
                     "f.0.school_urn": ""})
    assert r.status_code == 303
    assert newest(web, b, "household.children") == [
        {"given": "Sam", "date_of_birth": "2015-03-01"}]
    # "Add another" draws one more group and saves nothing.
    more = b.form(url, {"f.0.given": "Sam", "f.0.date_of_birth": "2015-03-01",
                        "f.1.given": "Kit", "f.1.date_of_birth": "2017-06-30",
                        "action": "more"})
    assert more.status_code == 200
    assert 'name="f.2.given"' in more.text and 'value="Kit"' in more.text
    assert len(history(web, b, "household.children")) == 1
    # Add two, with the empty group left empty.
    page = b.get(url)
    assert "<legend>Child 1</legend>" in page.text
    r = b.form(url, {"f.0.given": "Sam", "f.0.date_of_birth": "2015-03-01",
                     "f.1.given": "Kit", "f.1.date_of_birth": "2017-06-30",
                     "f.1.school_urn": "100000", "f.2.given": "", "f.2.date_of_birth": ""})
    assert r.status_code == 303
    assert newest(web, b, "household.children") == [
        {"given": "Sam", "date_of_birth": "2015-03-01"},
        {"given": "Kit", "date_of_birth": "2017-06-30", "school_urn": "100000"}]
    # Remove the first, change the second.
    r = b.form(url, {"f.0.given": "Sam", "f.0.date_of_birth": "2015-03-01", "remove.0": "yes",
                     "f.1.given": "Kit", "f.1.date_of_birth": "2017-06-29"})
    assert r.status_code == 303
    assert newest(web, b, "household.children") == [{"given": "Kit",
                                                     "date_of_birth": "2017-06-29"}]
    # An error names the group as the page numbers it, and links to its field.
    r = b.form(url, {"f.0.given": "Kit", "f.0.date_of_birth": "2017-06-29",
                     "f.1.given": "Jo", "f.1.date_of_birth": "2020-02-30"})
    assert r.status_code == 400
    assert "Date of birth (child 2) is not a valid date." in text_of(r)
    assert 'href="#f-1-date_of_birth"' in r.text
    assert re.search(r'id="f-1-date_of_birth"[^>]*aria-invalid="true"', r.text)


def test_unknown_category_is_a_not_found_page(web: WebWallet) -> None:
    b = web.sign_up()
    for path in ("/wallet/data/identity.nickname", "/wallet/data/identity.nickname/delete"):
        page = b.get(path)
        assert page.status_code == 404
        assert "<h1>Page not found</h1>" in page.text
    r = b.form("/wallet/data/identity.nickname", {"value": "Ada"})
    assert r.status_code == 404


def test_the_change_page_shows_every_version_newest_first(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    badge_team = blue_badge(web.ctx)
    records.write_record(web.ctx, b.citizen_id, "identity.name",
                         {"given": "Augusta", "family": "Byron"}, source=badge_team)
    b.form("/wallet/data/identity.name", {"f.given": "Ada", "f.family": "King", "own": "2"})
    b.form("/wallet/data/identity.name", {"f.given": "Ada", "f.family": "Byron"})
    rows = re.findall(r'<h3 id="version-\d+">Version (\d+)[^<]*</h3>\s*<p class="muted">'
                      r"([^<]+) on \d+ \w+ \d{4}, \d\d:\d\d (?:GMT|BST).</p>\s*"
                      r"<div>([^<]+)</div>", b.get("/wallet/data/identity.name").text)
    # The citizen adds a value (first, or over an issued one) and changes their own.
    assert rows == [("4", "You changed this", "Ada Byron"),
                    ("3", "You added this", "Ada King"),
                    ("2", "Issued by Blue Badge team", "Augusta Byron"),
                    ("1", "You added this", "Ada Lovelace")]


# --- mistakes: 400, the message at the top and at the field, nothing written ---------------


@pytest.mark.parametrize(("code", "sent", "message", "target"), [
    ("identity.date_of_birth", {"value": "1950-02-30"},
     "Date of birth is not a valid date.", "f-value"),
    ("contact.email", {"value": "ada@"},
     "Email address is not a valid email address.", "f-value"),
    ("identity.name", {"f.given": "", "f.family": "Lovelace-King"},
     "First name is missing. Please fill it in.", "f-given"),
    ("address.home", {"f.lines": "1 Main Street", "f.town": "Leeds", "f.postcode": "LS1",
                      "f.local_authority": "Leeds"},
     "Postcode must be a UK postcode such as SW1A 1AA.", "f-postcode"),
    ("address.home", {"f.lines": "1 Main Street\n" + "x" * 101, "f.town": "Leeds",
                      "f.postcode": "LS1 1AA", "f.local_authority": "Leeds"},
     "Street address (line 2) must be at most 100 characters.", "f-lines"),
    ("identity.date_of_birth", {"value": " "},
     "Date of birth is empty. Please fill it in.", "f-value"),
])
def test_invalid_input_is_explained_and_changes_nothing(
        web: WebWallet, code: str, sent: dict[str, str], message: str, target: str) -> None:
    b = web.sign_up()
    before = history(web, b, code)
    r = b.form(f"/wallet/data/{code}", sent)
    assert r.status_code == 400
    assert history(web, b, code) == before
    assert "<title>Error: " in r.text
    summary = re.search(r'<div class="error" role="alert"[^>]*>(.*?)</div>', r.text, re.S)
    assert summary is not None
    assert f'<a href="#{target}">{html.escape(message)}</a>' in summary.group(1)
    assert re.search(rf'<p class="field-error" id="{target}-error"><span class="visually-hidden">'
                     rf"Error:</span> {re.escape(html.escape(message))}</p>", r.text)
    assert re.search(rf'id="{target}"[^>]*aria-describedby="[^"]*{target}-error"[^>]*'
                     r'aria-invalid="true"', r.text)
    typed = drawn_fields(r, f"/wallet/data/{code}")  # what they typed is still there
    for name, value in sent.items():
        assert typed[name].strip() == value.replace("\r\n", "\n").strip()


# --- delete ---------------------------------------------------------------------------------


def test_delete_asks_first_then_removes_every_version(web: WebWallet) -> None:
    b = web.sign_up()
    b.form("/wallet/data/identity.name", {"f.given": "Ada", "f.family": "King"})
    page = b.get("/wallet/data/identity.name/delete")
    assert page.status_code == 200
    assert "This deletes all 2 versions of your Name" in text_of(page)
    assert re.search(r'<button type="submit" class="button warning">Yes, delete it</button>',
                     page.text)
    r = b.form("/wallet/data/identity.name/delete")
    assert (r.status_code, r.headers["location"]) == (303, "/wallet/data?done=deleted")
    assert history(web, b, "identity.name") == []
    assert "Deleted." in b.get("/wallet/data?done=deleted").text
    assert b.form("/wallet/data/identity.name/delete").status_code == 404
    assert b.get("/wallet/data/identity.name/delete").status_code == 404


# --- the download ---------------------------------------------------------------------------


def test_export_is_an_attachment_with_every_version(tmp_path: Path, database_url: str) -> None:
    with open_wallet(tmp_path, database_url) as web:
        b = web.sign_up()
        b.form("/wallet/data/identity.name", {"f.given": "Ada", "f.family": "King"})
        b.form("/wallet/data/identity.name", {"f.given": "Ada", "f.family": "Byron"})
        r = b.get("/wallet/data/export.json")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["content-disposition"] == 'attachment; filename="my-data.json"'
        assert r.headers["cache-control"] == "no-store"
        doc = r.json()
        assert set(doc) == {"exported_at", "categories"}
        assert doc["exported_at"].endswith("+00:00")
        names = doc["categories"]["identity.name"]
        assert [(v["version"], v["value"]["family"], v["source"]) for v in names] == [
            (1, "Lovelace", "citizen"), (2, "King", "citizen"), (3, "Byron", "citizen")]
        assert doc["categories"]["identity.date_of_birth"][0]["value"] == "1950-12-10"
        assert set(doc["categories"]) == {"identity.name", "identity.date_of_birth",
                                          "address.home"}


# --- who may do what ------------------------------------------------------------------------


def test_a_signed_out_browser_is_sent_to_sign_in(web: WebWallet) -> None:
    stranger = web.browser()
    for path in ("/wallet/data", "/wallet/data/identity.name", "/wallet/data/export.json",
                 "/wallet/data/identity.name/delete"):
        r = stranger.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/wallet/signin?next={path}"
    # A post with the visitor's own valid token still needs a citizen.
    r = stranger.form("/wallet/data/identity.name", {"f.given": "Eve", "f.family": "X"})
    assert r.status_code == 401


def test_without_the_csrf_token_nothing_is_written(web: WebWallet) -> None:
    b = web.sign_up()
    before = history(web, b, "identity.name")
    for token in ("", "0" * 64):
        r = b.form("/wallet/data/identity.name", {"f.given": "Eve", "f.family": "Evil"},
                   csrf=token)
        assert r.status_code == 403
        r = b.form("/wallet/data/identity.name/delete", csrf=token)
        assert r.status_code == 403
    assert history(web, b, "identity.name") == before


def test_one_citizen_never_sees_another_citizens_data(web: WebWallet) -> None:
    a, b = web.sign_up(), web.sign_up("Other phone")
    b.form("/wallet/data/identity.name", {"f.given": "Grace", "f.family": "Hopper"})
    b.form("/wallet/data/contact.phone", {"value": "+447700900999"})
    b.form("/wallet/data/household.children",
           {"f.0.given": "Zebedee", "f.0.date_of_birth": "2016-01-01"})
    secrets_of_b = ("Grace", "Hopper", "447700900999", "Zebedee")
    assert all(s in b.get("/wallet/data").text for s in secrets_of_b[:2])
    pages = [a.get(p) for p in ("/wallet/data", "/wallet/data/identity.name",
                                "/wallet/data/contact.phone", "/wallet/data/household.children",
                                "/wallet/data/export.json")]
    for page in pages:
        assert page.status_code == 200
        assert not any(s in page.text for s in secrets_of_b), page.url
    assert "Ada Lovelace" in text_of(pages[0])
    assert "contact.phone" not in pages[-1].json()["categories"]
    # A's own change leaves B's data as it was.
    a.form("/wallet/data/identity.name", {"f.given": "Ada", "f.family": "King"})
    assert newest(web, b, "identity.name") == {"given": "Grace", "family": "Hopper"}


# --- every category's page shows what is stored, and posting it back changes nothing -------

SAMPLES: dict[str, Any] = {
    "identity.name": {"given": "Zoë", "family": "O'Brien <b>"},
    "identity.date_of_birth": "1950-12-10",
    "contact.email": "ada@example.org",
    "contact.phone": "+447700900123",
    "address.home": {"lines": ["Flat 2 & 3", "1 \"Main\" Street"], "town": "Leeds",
                     "postcode": "LS1 1AA", "local_authority": "Leeds"},
    "benefits.attendance_allowance": {"award": "lower", "since": "2024-02-01",
                                      "awarded_by": "DWP"},
    "benefits.universal_credit": {"receiving": False},
    "health.gp_practice": {"name": "Riverside Health Centre", "ods_code": "A81001"},
    "health.prescriptions": [{"medicine": "Aspirin", "dose": "75 mg", "since": "2024-05-17"}],
    "health.observations": [{"kind": "steps", "value": "lots", "unit": "steps",
                             "at": "2024-05-17T09:30:00Z"}],
    "education.school": {"name": "Riverside Primary", "urn": "100000"},
    "household.children": [{"given": "Sam", "date_of_birth": "2015-03-01",
                            "school_urn": "100000"}],
    "household.universal_credit": {"receiving": True, "since": "2025-09-01"},
    "transport.blue_badge": {"number": "AB12CD", "expires": "2027-03-01"},
    **{f"relationship.{kind}": {"delegate": "psub_" + "A" * 22, "actions": ["view"],
                                "until": "2035-01-31T00:00:00Z"}
       for kind in ("parent", "attorney", "appointee")},
}


def test_every_category_has_a_sample() -> None:
    assert set(SAMPLES) == set(categories())


def test_each_page_is_prefilled_so_saving_unchanged_keeps_the_value(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    for code, value in SAMPLES.items():
        if categories()[code].series:  # a series' page adds readings, it edits none
            continue
        records.write_record(web.ctx, b.citizen_id, code, value)
        url = f"/wallet/data/{code}"
        shown = drawn_fields(b.get(url), url)
        assert b.form(url, shown).status_code == 303, code
        assert [v for _, v, _ in history(web, b, code)[-2:]] == [value, value], code


# --- forms.py: from a value to fields and back --------------------------------------------


def test_layouts_follow_the_schemas() -> None:
    cats = categories()
    assert layout_of(cats["identity.name"].schema) == "object"
    assert layout_of(cats["identity.date_of_birth"].schema) == "single"
    assert layout_of(cats["health.prescriptions"].schema) == "items"
    assert layout_of(cats["household.children"].schema) == "items"
    # Up to 1000 readings: a form of rows, a page at a time.
    assert cats["health.observations"].schema["maxItems"] > PAGE_ITEMS
    assert layout_of(cats["health.observations"].schema) == "items"
    assert layout_of({"type": "object", "properties": {"a": {"type": "string"}}}) == "json"


def test_examples_are_valid() -> None:
    for code, example in EXAMPLES.items():
        validate_value(code, example)


def test_readable_dates() -> None:
    assert readable_date("1950-12-10") == "10 December 1950"
    assert readable_date("2024-02-30") == "2024-02-30"  # not a date: shown as it is


def test_optional_fields_left_empty_are_left_out() -> None:
    schema = categories()["household.children"].schema
    got = read_form(schema, {"f.3.given": "Sam", "f.3.date_of_birth": "2015-03-01",
                             "f.3.school_urn": "  ", "f.7.given": "", "f.9.given": "Kit",
                             "remove.9": "yes"})
    assert got.value == [{"given": "Sam", "date_of_birth": "2015-03-01"}]
    assert got.groups == (3,)


_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30)
_WHOLE = re.compile(r"[+-]?[0-9]+")


def values(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the shapes the catalog uses, as a form can carry them: text without
    surrounding spaces and not empty (an empty field means "not given")."""
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if "anyOf" in schema:
        return st.one_of([values(s) for s in schema["anyOf"]]).filter(
            lambda v: not (isinstance(v, str) and _WHOLE.fullmatch(v)))
    kind = schema.get("type")
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return st.dates(min_value=date(1000, 1, 1)).map(date.isoformat)
        if fmt == "date-time":
            zones = st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])
            return st.datetimes(timezones=zones).map(lambda d: d.isoformat("T", "seconds"))
        if fmt == "email":
            return st.from_regex(r"[a-z0-9.]{1,12}@[a-z]{1,10}\.(org|uk)", fullmatch=True)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).map(str.strip)
        return _TEXT.map(str.strip).filter(bool)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return st.integers(schema.get("minimum", -(2**40)), schema.get("maximum", 2**40))
    if kind == "array":
        # An empty list of lines is an empty box: "not given" (a list of groups may be empty).
        least = 1 if schema["items"].get("type") == "string" else 0
        return st.lists(values(schema["items"]), min_size=max(least, schema.get("minItems", 0)),
                        max_size=min(schema.get("maxItems", 4), 4))
    assert kind == "object", schema
    props, required = schema["properties"], set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {p: values(s) for p, s in props.items() if p in required},
        optional={p: values(s) for p, s in props.items() if p not in required})


#: Shapes the catalog does not use yet, which the forms still handle.
EXTRA_SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "additionalProperties": False, "required": ["count"], "properties": {
        "count": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "level": {"enum": [1, 2, 3]}, "agreed": {"type": "boolean"},
        "reading": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "more": {"type": "object", "properties": {"x": {"type": "string"}}}}},
    {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
    {"type": "array", "maxItems": 5, "items": {
        "type": "object", "additionalProperties": False, "required": ["n"],
        "properties": {"n": {"type": "integer"}, "on": {"type": "boolean"},
                       "lines": {"type": "array", "items": {"type": "string"}}}}},
]


def valid(schema: Mapping[str, Any], code: str | None, value: Any) -> bool:
    if code is not None:
        try:
            validate_value(code, value)
        except InvalidValue:
            return False
        return True
    return bool(Draft202012Validator(dict(schema)).is_valid(value))


_SHAPES = [(code, cat.schema) for code, cat in sorted(categories().items())] + [
    (None, s) for s in EXTRA_SCHEMAS]


@pytest.mark.parametrize(("code", "schema"), _SHAPES,
                         ids=[c or f"extra{i}" for i, (c, _) in enumerate(_SHAPES)])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_form_round_trip(code: str | None, schema: Mapping[str, Any], data: st.DataObject
                         ) -> None:
    value = data.draw(values(schema))
    if not valid(schema, code, value):
        reject()
    fields = form_from_value(schema, value)
    assert value_from_form(schema, fields) == value
    if code is not None:  # and the form draws those fields without losing any
        form = edit_form(categories()[code], fields)
        drawn = {f.name: f.text for f in form.all_fields if f.text}
        drawn |= {f.name + WAS: f.was for f in form.all_fields if f.was}
        assert drawn == {k: v for k, v in fields.items() if v}
