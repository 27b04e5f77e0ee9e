"""`vault-audit receipt FILE`: a consent receipt downloaded from the wallet verifies
offline through the CLI; a changed byte does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.vaultworld import ask
from support.webwallet import open_wallet
from typer.testing import CliRunner

from clients.auditor.cli import app
from ledger.note import Signer

runner = CliRunner()


@dataclass(frozen=True)
class Downloaded:
    data: bytes  # the file exactly as the wallet served it
    key: str
    rp_id: str
    origins: tuple[str, ...]
    workdir: Path

    def pins(self) -> list[str]:
        return ["--key", self.key, "--rp-id", self.rp_id,
                *[a for o in self.origins for a in ("--origin", o)]]


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Downloaded]:
    """Sign up, approve a grant with a passkey, download its receipt from the grant page."""
    tmp = tmp_path_factory.mktemp("receipt-cli")
    with open_wallet(tmp / "vault") as web:
        b = web.sign_up()
        grant = ask(web.ctx, web.world_for(b))
        assert b.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200
        r = b.client.get(f"/wallet/grants/{grant.id}/receipt.json",
                         headers={"accept": "application/json"})
        assert r.status_code == 200, r.text
        yield Downloaded(r.content, str(web.state.signer.verifier()), web.state.rp.rp_id,
                         tuple(web.state.rp.origins), tmp)


def check(d: Downloaded, data: bytes, *args: str, name: str = "receipt.json"
          ) -> tuple[int, dict[str, Any]]:
    path = d.workdir / name
    path.write_bytes(data)
    r = runner.invoke(app, ["receipt", str(path), "--json", *args])
    return r.exit_code, json.loads(r.stdout)


def test_a_downloaded_receipt_verifies_with_everything_pinned(downloaded: Downloaded) -> None:
    code, doc = check(downloaded, downloaded.data, *downloaded.pins())
    assert code == 0, doc
    assert doc["ok"] and doc["problems"] == [] and doc["status"] == "approved"
    assert doc["key_pinned"] and doc["rp_pinned"] and doc["key"] == downloaded.key
    assert (doc["entries_included"], doc["signatures_verified"]) == (3, 1)
    assert doc["checkpoint"]["origin"] == downloaded.key.split("+")[0]
    path = downloaded.workdir / "receipt.json"
    human = runner.invoke(app, ["receipt", str(path), *downloaded.pins()])
    assert human.exit_code == 0
    assert "verifies" in human.stdout and "pinned with --key" in human.stdout
    assert "3 proved included" in human.stdout and "1 verified" in human.stdout


def test_without_pins_it_says_what_it_took_from_the_receipt(downloaded: Downloaded) -> None:
    code, doc = check(downloaded, downloaded.data)
    assert code == 0 and not doc["key_pinned"] and not doc["rp_pinned"], doc
    assert (doc["rp_id"], doc["origins"]) == (downloaded.rp_id, list(downloaded.origins))
    human = runner.invoke(app, ["receipt", str(downloaded.workdir / "receipt.json")])
    assert human.exit_code == 0
    assert human.stdout.count("taken from the receipt itself") == 2


def test_another_key_or_relying_party_is_refused(downloaded: Downloaded) -> None:
    other = str(Signer.generate(downloaded.key.split("+")[0]).verifier())
    code, doc = check(downloaded, downloaded.data, "--key", other)
    assert code == 1 and {p["check"] for p in doc["problems"]} >= {"checkpoint"}, doc
    code, doc = check(downloaded, downloaded.data, "--origin", "https://evil.example")
    assert code == 1 and doc["rp_id"] == "evil.example", doc
    assert "approval" in {p["check"] for p in doc["problems"]}


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["receipt", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "error" in r.output  # could not run: not a verdict
    (tmp_path / "junk.json").write_bytes(b"\xff{")
    r = runner.invoke(app, ["receipt", str(tmp_path / "junk.json"), "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["problems"][0]["check"] == "format"


# -- any changed byte --------------------------------------------------------------------

#: Fields no check covers. None since receipts carry the vault's signature over every
#: field: the ledger evidence and the grant's claims are also checked one by one, and the
#: catalog's words, constants, the receipt's own id and time are bound by the signature.
UNPROVEN: frozenset[tuple[str, ...]] = frozenset()

Path_ = tuple[str | int, ...]


def layout(value: Any, path: Path_ = ()) -> tuple[bytes, list[tuple[int, int, Path_]]]:
    """`value` serialised as the wallet's JSONResponse does (compact, UTF-8), with the
    byte span of every member (its key included) and element."""
    if not isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode(), []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out, spans = bytearray(b"{" if isinstance(value, dict) else b"["), []
    for n, (k, v) in enumerate(items):
        out += b"," if n else b""
        start = len(out)
        if isinstance(value, dict):
            out += json.dumps(k, ensure_ascii=False).encode() + b":"
        inner, sub = layout(v, (*path, k))
        spans += [(s + len(out), e + len(out), p) for s, e, p in sub]
        out += inner
        spans.append((start, len(out), (*path, k)))
    out += b"}" if isinstance(value, dict) else b"]"
    return bytes(out), spans


def unproven(spans: list[tuple[int, int, Path_]], pos: int) -> bool:
    """Whether the byte at `pos` lies in (or under) one of the UNPROVEN fields."""
    for start, end, path in spans:
        if start <= pos < end:
            shape = tuple("*" if isinstance(x, int) else x for x in path)
            if any(shape[:len(u)] == u for u in UNPROVEN):
                return True
    return False


def test_the_layout_is_the_downloaded_bytes(downloaded: Downloaded) -> None:
    assert layout(json.loads(downloaded.data))[0] == downloaded.data


@pytest.fixture(scope="module")
def proven(downloaded: Downloaded) -> list[int]:
    """Every byte position of the receipt outside the UNPROVEN fields."""
    _, spans = layout(json.loads(downloaded.data))
    return [i for i in range(len(downloaded.data)) if not unproven(spans, i)]


_SOME = settings(max_examples=50, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SOME
@given(n=st.integers(0, 2**32), flip=st.integers(1, 255))
def test_any_changed_byte_is_refused(
    downloaded: Downloaded, proven: list[int], n: int, flip: int,
) -> None:
    data = downloaded.data
    pos = proven[n % len(proven)]
    assert len(proven) > len(data) // 2  # the evidence is most of the file
    changed = data[:pos] + bytes([data[pos] ^ flip]) + data[pos + 1:]
    code, doc = check(downloaded, changed, name="changed.json")
    assert code == 1 and doc["problems"], (pos, data[max(pos - 30, 0):pos + 10])


@_SOME
@given(n=st.integers(0, 2**32), flip=st.integers(1, 255))
def test_with_pins_any_changed_byte_of_the_ledger_evidence_is_refused(
    downloaded: Downloaded, n: int, flip: int,
) -> None:
    """The receipt's own key and relying party must agree with the pinned ones too."""
    data = downloaded.data
    start = data.index(b'"ledger_evidence":')
    pos = start + n % (len(data) - start - 1)  # not the closing brace
    changed = data[:pos] + bytes([data[pos] ^ flip]) + data[pos + 1:]
    code, doc = check(downloaded, changed, *downloaded.pins(), name="changed.json")
    assert code == 1 and doc["problems"], (pos, data[max(pos - 30, 0):pos + 10])
