"""Whole-log audits: a good ledger verifies; each kind of tampering is caught at the
right entry (LogInvalid.index)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.audit import LogAuditor, audit_log, read_ndjson
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.entry import parse_entry
from ledger.errors import LogInvalid
from ledger.hasher import EMPTY_ROOT, leaf_hash
from ledger.note import Signer

if TYPE_CHECKING:
    from conftest import BuiltLedger

N = 200
ORIGIN = "example.org/ledger"
PROPS = settings(max_examples=40, deadline=None)
index_st = st.integers(0, N - 1)
Items = list[bytes] | list[tuple[bytes, bytes | None]]


@pytest.fixture(scope="module")
def log(make_ledger: Callable[[int], BuiltLedger]) -> BuiltLedger:
    return make_ledger(N)


def checkpoint(log: BuiltLedger, size: int = N) -> Checkpoint:
    return Checkpoint(ORIGIN, size, log.ledger.root_at(size))


def with_hashes(data: Iterable[bytes], stored: list[bytes]) -> list[tuple[bytes, bytes | None]]:
    return list(zip(data, stored, strict=True))


def invalid_at(entries: Items, cp: Checkpoint | None = None) -> int:
    with pytest.raises(LogInvalid) as info:
        audit_log(entries, checkpoint=cp)
    assert info.value.reason
    return info.value.index


def edit_digit(data: bytes) -> bytes:
    """Change one digit inside a body string: the entry stays canonical, only its hash
    (and what it says) changes."""
    at = data.index(b'"note":"entry ') + len(b'"note":"entry ')
    digit = (data[at] - ord("0") + 1) % 10
    out = data[:at] + bytes([ord("0") + digit]) + data[at + 1:]
    parse_entry(out)  # still a well-formed, canonical entry
    return out


def rewrite(data: bytes, **changes: object) -> bytes:
    """Entry bytes with some fields changed, canonical (RFC 8785) but not re-validated."""
    e = parse_entry(data)._asdict()
    e.update(changes)
    e["prev"] = base64.b64encode(e["prev"]).decode()  # type: ignore[arg-type]
    return rfc8785.dumps({"v": 1, **e})


# --- a good ledger ------------------------------------------------------------------------


def test_good_log_verifies(log: BuiltLedger) -> None:
    head = log.ledger.tree_head()
    stored = [h for _, h, _ in log.ledger.iter_entries()]
    for items in (log.data, with_hashes(log.data, stored), iter(log.data)):
        result = audit_log(items)
        assert result.head == head and result.checkpoint is None and result.uncovered == N
    full = audit_log(log.data, checkpoint=checkpoint(log))
    assert full.head == head and full.uncovered == 0
    part = audit_log(with_hashes(log.data, stored), checkpoint=checkpoint(log, 137))
    assert part.head == head and part.uncovered == N - 137
    assert part.checkpoint == checkpoint(log, 137)
    assert audit_log([], checkpoint=Checkpoint(ORIGIN, 0, EMPTY_ROOT)).head.root == EMPTY_ROOT


def test_signed_checkpoint_round_trip(log: BuiltLedger) -> None:
    signer = Signer.generate(ORIGIN)
    note = sign_checkpoint(checkpoint(log, 150), signer)
    cp = open_checkpoint(note, expected_verifier=signer.verifier())
    assert audit_log(log.data, checkpoint=cp).checkpoint == cp


def test_progress_and_auditor(log: BuiltLedger) -> None:
    seen: list[int] = []
    audit_log(log.data, on_progress=seen.append, progress_every=64)
    assert seen == [64, 128, 192, N]
    auditor = LogAuditor()
    assert [auditor.feed(d) for d in log.data] == [leaf_hash(d) for d in log.data]
    assert auditor.finish().head == log.ledger.tree_head()


def test_read_ndjson(log: BuiltLedger) -> None:
    text = b"\n".join(log.data)
    for blob in (text, text + b"\n"):
        assert list(read_ndjson(io.BytesIO(blob))) == log.data
        assert audit_log(read_ndjson(io.BytesIO(blob))).head == log.ledger.tree_head()
    assert list(read_ndjson(io.BytesIO(b""))) == []


# --- tampering -----------------------------------------------------------------------------


@PROPS
@example(i=0)
@example(i=N - 1)
@given(i=index_st)
def test_edited_body(log: BuiltLedger, i: int) -> None:
    data = list(log.data)
    stored = [h for _, h, _ in log.ledger.iter_entries()]
    data[i] = edit_digit(data[i])
    # With stored leaf hashes the edited entry is caught by its own hash.
    got = invalid_at(with_hashes(data, stored))
    assert got == i
    # From bytes alone: entry i+1's prev link names i; for the last entry, the root.
    got = invalid_at(data, checkpoint(log))
    assert got == i


@PROPS
@example(i=1)
@example(i=N - 1)
@given(i=st.integers(1, N - 1))
def test_edited_prev_link_with_stored_hashes(log: BuiltLedger, i: int) -> None:
    # Entry i's own prev field is rewritten: entry i-1 is intact (it still matches its
    # stored leaf hash) and entry i does not, so the auditor must name i, not i-1.
    data = list(log.data)
    stored = [h for _, h, _ in log.ledger.iter_entries()]
    data[i] = rewrite(data[i], prev=bytes(32))
    got = invalid_at(with_hashes(data, stored))
    assert got == i


def test_first_entry_with_a_prev_link(log: BuiltLedger) -> None:
    # Entry 0 links to nothing: a non-empty prev there is entry 0's fault (not "entry -1").
    data = [rewrite(log.data[0], prev=leaf_hash(b"forged")), *log.data[1:]]
    got = invalid_at(data)
    assert got == 0


@PROPS
@example(i=0)
@example(i=N - 1)
@given(i=index_st)
def test_deleted_entry(log: BuiltLedger, i: int) -> None:
    data = log.data[:i] + log.data[i + 1:]
    stored = [h for _, h, _ in log.ledger.iter_entries()]
    got = invalid_at(data, checkpoint(log))
    assert got == i
    got = invalid_at(with_hashes(data, stored[:i] + stored[i + 1:]), checkpoint(log))
    assert got == i


@PROPS
@example(i=0, j=N - 1)
@given(i=index_st, j=index_st)
def test_swapped_entries(log: BuiltLedger, i: int, j: int) -> None:
    i, j = sorted((i, j))
    if i == j:
        j = i + 1 if i + 1 < N else i - 1
        i, j = sorted((i, j))
    data = list(log.data)
    data[i], data[j] = data[j], data[i]
    got = invalid_at(data)
    assert got == i
    got = invalid_at(data, checkpoint(log))
    assert got == i


@PROPS
@example(i=0)
@example(i=N - 1)
@given(i=index_st)
def test_duplicated_entry(log: BuiltLedger, i: int) -> None:
    data = [*log.data[: i + 1], log.data[i], *log.data[i + 1:]]
    got = invalid_at(data)
    assert got == i + 1


@PROPS
@example(i=0, how="spaces")
@example(i=N - 1, how="reordered")
@given(i=index_st, how=st.sampled_from(["spaces", "reordered", "newline", "escaped"]))
def test_non_canonical_entry(log: BuiltLedger, i: int, how: str) -> None:
    data = list(log.data)
    obj = json.loads(data[i])
    data[i] = {
        "spaces": lambda: json.dumps(obj).encode(),
        "reordered": lambda: json.dumps(dict(reversed(obj.items())), separators=(",", ":"))
        .encode(),
        "newline": lambda: data[i] + b"\n",
        "escaped": lambda: data[i].replace(b"record.written", b"record.writ\\u0074en"),
    }[how]()
    assert json.loads(data[i]) == obj  # same JSON value, other bytes
    got = invalid_at(data)
    assert got == i


@PROPS
@example(i=1)
@given(i=st.integers(1, N - 1))
def test_time_going_backwards(log: BuiltLedger, i: int) -> None:
    data = list(log.data)
    data[i] = rewrite(data[i], time="2000-01-01T00:00:00.000Z")
    got = invalid_at(data)
    assert got == i


@PROPS
@example(k=0)
@given(k=st.integers(0, N - 1))
def test_truncated_log(log: BuiltLedger, k: int) -> None:
    got = invalid_at(log.data[:k], checkpoint(log))
    assert got == k
    got = invalid_at(log.data[:k], checkpoint(log, k + 1))
    assert got == k


@PROPS
@example(size=1, bit=0)
@example(size=N, bit=255)
@given(size=st.integers(1, N), bit=st.integers(0, 255))
def test_wrong_checkpoint_root(log: BuiltLedger, size: int, bit: int) -> None:
    good = checkpoint(log, size)
    root = bytearray(good.root)
    root[bit // 8] ^= 1 << (bit % 8)
    bad = Checkpoint(ORIGIN, size, bytes(root))
    got = invalid_at(log.data, bad)
    assert got == size - 1
    # A root from another size of the same ledger is wrong too.
    other = checkpoint(log, size - 1) if size > 1 else checkpoint(log, 2)
    got = invalid_at(log.data, Checkpoint(ORIGIN, size, other.root))
    assert got == size - 1
