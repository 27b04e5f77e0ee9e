"""`grant_now`: a receipt's grant followed in the ledger after the receipt, over the
ledger's HTTP contract, against a ledger held in memory and served by a mock transport;
whatever the vault serves that is not its signed tree is caught."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.auditor.fetch import LedgerClient
from clients.auditor.live import grant_now
from clients.auditor.receipt import GrantEvent, Problem, ReceiptReport
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import parse_entry
from ledger.hasher import leaf_hash
from ledger.note import Signer
from ledger.store import MemoryLedger

ORIGIN = "localhost/ledger"
GRANT, SUBJECT = "gr_1", "sub_1"


@dataclass
class FakeVault:
    """A ledger and its signer, served over /ledger/*; `serve` can change what is served."""

    signer: Signer = field(default_factory=lambda: Signer.generate(ORIGIN))
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    serve: Callable[[int, bytes], bytes | None] = lambda _, data: data
    note: str | None = None

    def add(self, kind: str, body: dict[str, Any] | None = None, n: int = 1) -> int:
        for _ in range(n):
            self.ledger.append(kind, body or {"note": "someone else's"})
        return self.ledger.tree_head().size - 1

    def checkpoint(self) -> Checkpoint:
        head = self.ledger.tree_head()
        return Checkpoint(ORIGIN, head.size, head.root)

    def handle(self, request: httpx.Request) -> httpx.Response:
        q = {k: int(v) for k, v in request.url.params.items()}
        if request.url.path == "/ledger/checkpoint":
            return httpx.Response(200, text=self.note or sign_checkpoint(self.checkpoint(),
                                                                         self.signer))
        if request.url.path == "/ledger/openings":
            if request.headers.get("authorization") != "Bearer auditor":
                return httpx.Response(401)
            page = self.ledger.openings(q["start"], q["limit"])
            return httpx.Response(200, content=b"".join(d + b"\n" for d in page))
        if request.url.path == "/ledger/entries":
            page = self.ledger.entries(q["start"], q["limit"])
            served = [self.serve(q["start"] + i, d) for i, d in enumerate(page)]
            return httpx.Response(200, content=b"".join(d + b"\n" for d in served if d))
        if request.url.path == "/ledger/proofs/inclusion":
            hashes = self.ledger.inclusion_proof(q["index"], q["tree_size"])
        else:
            hashes = self.ledger.consistency_proof(q["from"], q["to"])
        return httpx.Response(200, json={"hashes": [base64.b64encode(h).decode()
                                                    for h in hashes]})

    def client(self, api_key: str | None = None) -> LedgerClient:
        return LedgerClient("http://vault.test", api_key=api_key,
                            transport=httpx.MockTransport(self.handle))


def grant_entry(kind: str) -> tuple[str, dict[str, Any]]:
    return kind, {"grant_id": GRANT, "subject": SUBJECT}


def receipt_of(vault: FakeVault, indexes: list[int]) -> ReceiptReport:
    """What `verify_receipt` reports of a receipt made now, of the grant's entries."""
    events = []
    for i in indexes:
        [data] = vault.ledger.entries(i, 1)
        e = parse_entry(data)
        events.append(GrantEvent(i, e.kind, e.time, leaf_hash(data)))
    state = {"grant.requested": "requested", "grant.approved": "approved"}[events[-1].kind]
    return ReceiptReport((), record_id=GRANT, status=state, subject=SUBJECT,
                         checkpoint=vault.checkpoint(), key=vault.signer.verifier(),
                         made_at="2026-01-01T00:00:00.000Z", events=tuple(events))


def approved(vault: FakeVault, before: int = 3, after: int = 0) -> ReceiptReport:
    vault.add("test.filler", n=before)
    requested = vault.add(*grant_entry("grant.requested"))
    report = receipt_of(vault, [requested, vault.add(*grant_entry("grant.approved"))])
    vault.add("test.filler", n=after)  # the receipt's checkpoint covers these too
    return replace(report, checkpoint=vault.checkpoint())


def test_nothing_changed() -> None:
    vault = FakeVault()
    receipt = approved(vault, after=2)
    live = grant_now(vault.client(), receipt)
    assert live.ok and live.state == "approved" and not live.changed, live.problems
    assert live.last == receipt.events[-1] and live.entries_read == 2
    assert live.checkpoint == vault.checkpoint()


def test_revoked_after_the_receipt_with_reads_between() -> None:
    vault = FakeVault()
    receipt = approved(vault)
    vault.add("data.accessed", {"grant_id": GRANT, "service_id": "svc_1"}, n=2)
    vault.add("data.accessed", {"grant_id": "gr_other"})
    vault.add(*grant_entry("grant.paused"))
    vault.add(*grant_entry("grant.resumed"))
    revoked = vault.add(*grant_entry("grant.revoked"))
    vault.add("test.filler", n=5)
    live = grant_now(vault.client(), receipt)
    assert live.ok, live.problems
    assert live.state == "revoked" and live.reads == 2 and live.changed
    assert [e.kind for e in live.changes] == ["grant.paused", "grant.resumed", "grant.revoked"]
    assert live.last is not None and live.last.index == revoked


@settings(max_examples=60, deadline=None)
@given(before=st.integers(0, 70), between=st.integers(0, 40), after=st.integers(0, 70))
def test_any_sizes(before: int, between: int, after: int) -> None:
    """The border of every tree size (from the inclusion proof of a tree's last leaf)
    and every growth after it give the signed root."""
    vault = FakeVault()
    receipt = approved(vault, before=before, after=between)
    vault.add("test.filler", n=after)
    vault.add(*grant_entry("grant.revoked"))
    live = grant_now(vault.client(), receipt)
    assert live.ok and live.state == "revoked", live.problems


def served_differently(change: Callable[[int, bytes], bytes | None]) -> list[str]:
    vault = FakeVault()
    receipt = approved(vault)
    vault.add("test.filler", n=3)
    target = vault.add(*grant_entry("grant.revoked"))
    vault.add("test.filler", n=3)
    vault.serve = lambda i, data: change(i, data) if i == target else data
    live = grant_now(vault.client(), receipt)
    return [p.message for p in live.problems]


def test_a_revocation_hidden_or_changed_is_caught() -> None:
    for change in (lambda i, d: d.replace(b"grant.revoked", b"grant.expired"),
                   lambda i, d: d.replace(b"grant.revoked", b"test.filler0")):
        [message] = served_differently(change)
        assert "not the entries the vault signed" in message


def test_an_entry_left_out_is_caught() -> None:
    messages = served_differently(lambda i, d: None)
    assert any("not the entries the vault signed" in m for m in messages)


def test_a_tree_that_does_not_extend_the_receipts_is_caught() -> None:
    vault = FakeVault()
    receipt = approved(vault, after=4)
    fork = FakeVault(signer=vault.signer)  # the same key, another history
    fork.add("test.filler", n=12)
    live = grant_now(fork.client(), receipt)
    assert not live.ok and live.state is None
    assert "is not consistent with the receipt's checkpoint" in live.problems[0].message
    smaller = FakeVault(signer=vault.signer)
    smaller.add("test.filler", n=2)
    assert "fewer than" in grant_now(smaller.client(), receipt).problems[0].message


def test_a_checkpoint_under_another_key_is_caught() -> None:
    vault = FakeVault()
    receipt = approved(vault)
    vault.note = sign_checkpoint(vault.checkpoint(), Signer.generate(ORIGIN))
    live = grant_now(vault.client(), receipt)
    assert live.state is None and "does not verify under" in live.problems[0].message


def test_a_transition_the_state_machine_does_not_allow_is_reported() -> None:
    vault = FakeVault()
    receipt = approved(vault)
    again = vault.add(*grant_entry("grant.approved"))
    live = grant_now(vault.client(), receipt)
    assert [(p.check, p.index) for p in live.problems] == [("live", again)]


def test_only_a_verified_receipt_is_followed() -> None:
    vault = FakeVault()
    receipt = approved(vault)
    with pytest.raises(ValueError, match="verifies"):
        grant_now(vault.client(), replace(receipt, problems=(Problem("claims", "forged"),)))


def test_a_sealed_grant_ended_by_an_erasure_is_found_through_its_opening() -> None:
    """In a sealed ledger an erasure's grant endings name no grant in public: with the
    auditor's key their openings say which; without, they are counted as unknown."""
    vault = FakeVault(ledger=MemoryLedger(version=2))
    receipt = approved(vault)
    vault.add("test.filler", n=2)
    other = {"grant_id": "gr_2", "subject": "sub_2", "service_id": "svc_1",
             "reason": "citizen_erased", "asked": "2026-01", "from": "approved"}
    vault.add("grant.revoked", other)
    ended = vault.add("grant.revoked", {**other, "grant_id": GRANT, "subject": SUBJECT})
    vault.add("citizen.erased", {"subject": SUBJECT})
    assert GRANT.encode() not in vault.ledger.entries(ended, 1)[0]  # sealed
    keyless = grant_now(vault.client(), receipt)
    assert keyless.ok and keyless.state == "approved", keyless.problems
    assert keyless.erased_endings == 2
    live = grant_now(vault.client(api_key="auditor"), receipt)
    assert live.ok and live.state == "revoked" and live.erased_endings == 0, live.problems
    assert live.last is not None and live.last.index == ended
