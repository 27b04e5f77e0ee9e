"""Stateful property test of grants through the real use cases, database and passkeys.

A deliberately simple model (the state table of ARCHITECTURE §3, written out here, not
imported, and the limit of five requests waiting per service and citizen) predicts every
outcome. After each step: every grant's state matches the
model, every transition left exactly one ledger entry, the ledger verifies, and no read
succeeded outside an approved, unpaused, unexpired, unexhausted grant's scope.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from support.ledgerview import full_entries
from support.vaultworld import Clock, add_passkey, ask, world

from ledger.audit import audit_log
from ledger.sqlstore import SqlLedger
from vault.domain.errors import AccessDenied, AskingRefused, IllegalTransition
from vault.domain.grants import Access, GrantAction
from vault.services import access, grants
from vault.services.context import VaultContext
from vault.services.sweeper import sweep
from vault.storage.database import read_only

# ARCHITECTURE §3, written out independently of vault.domain.grants.
LEGAL = {
    "requested": {"approve": "approved", "deny": "denied", "cancel": "cancelled",
                  "lapse": "lapsed"},
    "approved": {"pause": "paused", "revoke": "revoked", "expire": "expired",
                 "exhaust": "exhausted"},
    "paused": {"resume": "approved", "revoke": "revoked", "expire": "expired"},
}
MAX_READS = 3
DAYS = 10
#: Requests one service may have waiting for one citizen (issue 11).
MAX_WAITING = 5


@dataclass
class Model:
    state: str
    requested_at: datetime
    expires_at: datetime
    reads: int = 0
    transitions: int = 1  # grant.requested


class GrantMachine(RuleBasedStateMachine):
    ids = Bundle("grants")

    def __init__(self, ctx: VaultContext, clock: Clock) -> None:
        super().__init__()
        self.ctx, self.clock = ctx, clock
        self.w = world(ctx)
        self.device = add_passkey(ctx, self.w.citizen_id)
        self.model: dict[str, Model] = {}
        with read_only(ctx.engine).begin() as conn:
            self.start = SqlLedger(conn).size()  # this run's entries come after

    # -- the operations --------------------------------------------------------------

    def _ask(self) -> str | None:
        """A new request; None if refused, which only too many waiting may cause."""
        waiting = sum(m.state == "requested" for m in self.model.values())
        try:
            g = ask(self.ctx, self.w, access=Access("periodic", max_reads=MAX_READS),
                    duration=timedelta(days=DAYS))
        except AskingRefused as exc:
            assert exc.reason == "too_many_waiting" and waiting >= MAX_WAITING
            return None
        assert waiting < MAX_WAITING, f"a request allowed with {waiting} waiting"
        now = self.clock()
        self.model[g.id] = Model("requested", now, now.replace(microsecond=0)
                                 + timedelta(days=DAYS))
        return g.id

    @rule(target=ids)
    def request(self) -> object:
        gid = self._ask()
        return multiple() if gid is None else gid

    @initialize(target=ids)
    def start_with_an_approved_grant(self) -> str:
        """Most interesting states start from an approved grant: begin with one."""
        gid = self._ask()
        assert gid is not None
        self.approve(gid)
        return gid

    @initialize(target=ids)
    def start_with_a_pending_request(self) -> str:
        gid = self._ask()
        assert gid is not None
        return gid

    def _act(self, gid: str, action: str, call: object) -> None:
        m = self.model[gid]
        legal = action in LEGAL.get(m.state, {})
        try:
            call()  # type: ignore[operator]
        except IllegalTransition:
            assert not legal, f"{action} refused from {m.state}"
            return
        assert legal, f"{action} allowed from {m.state}"
        m.state = LEGAL[m.state][action]
        m.transitions += 1

    def _signed(self, gid: str, action: GrantAction) -> object:
        return self.device.proof(challenge=grants.signing_challenge(
            self.ctx, gid, citizen_id=self.w.citizen_id, action=action))

    def approve(self, gid: str) -> None:
        self._act(gid, "approve", lambda: grants.approve_grant(
            self.ctx, gid, citizen_id=self.w.citizen_id,
            proof=self._signed(gid, GrantAction.APPROVE)))

    @rule(gid=ids, action=st.sampled_from(["approve", "deny", "cancel", "pause", "resume",
                                           "revoke"]))
    def act(self, gid: str, action: str) -> None:
        """Any answer or action, by the citizen or the service, on any grant."""
        citizen, service = self.w.citizen_id, self.w.service_id
        signed = {"pause": grants.pause_grant, "resume": grants.resume_grant,
                  "revoke": grants.revoke_grant}
        if action == "approve":
            self.approve(gid)
        elif action == "deny":
            self._act(gid, action, lambda: grants.deny_grant(self.ctx, gid, citizen_id=citizen))
        elif action == "cancel":
            self._act(gid, action,
                      lambda: grants.cancel_grant(self.ctx, gid, service_id=service))
        else:
            do, kind = signed[action], GrantAction(action)
            self._act(gid, action, lambda: do(self.ctx, gid, citizen_id=citizen,
                                              proof=self._signed(gid, kind)))

    @rule()
    def services_read(self) -> None:
        """The service tries every grant: whatever state each is in gets probed."""
        for gid, m in self.model.items():
            allowed = (m.state == "approved" and self.clock() < m.expires_at
                       and m.reads < MAX_READS)
            try:
                r = access.read_under_grant(self.ctx, service_id=self.w.service_id,
                                            grant_id=gid)
            except AccessDenied:
                assert not allowed, f"read refused in {m.state} with {m.reads} reads"
                continue
            assert allowed, f"read allowed in {m.state}, reads {m.reads}, at {self.clock()}"
            assert set(r.data) <= {"address.home"} and set(r.derived) <= {"age_over_65"}
            m.reads += 1
            if m.reads == MAX_READS:
                m.state, m.transitions = "exhausted", m.transitions + 1

    @rule(hours=st.integers(min_value=1, max_value=72))
    def time_passes(self, hours: int) -> None:
        # Examples share the database, so the sweep may also end grants of earlier
        # examples; the invariant checks this machine's grants one by one.
        self.clock.advance(hours=hours)
        sweep(self.ctx)
        now = self.clock()
        for m in self.model.values():
            if m.state == "requested" and now >= min(m.expires_at,
                                                     m.requested_at + timedelta(days=7)):
                m.state, m.transitions = "lapsed", m.transitions + 1
            elif m.state in ("approved", "paused") and now >= m.expires_at:
                m.state, m.transitions = "expired", m.transitions + 1

    # -- what must always hold ---------------------------------------------------------

    @invariant()
    def states_and_entries_match_the_model(self) -> None:
        with read_only(self.ctx.engine).begin() as conn:
            rows = full_entries(conn, self.start)
        per_grant = Counter(e["body"]["grant_id"] for e in rows
                            if e["kind"].startswith("grant."))
        reads = Counter(e["body"]["grant_id"] for e in rows if e["kind"] == "data.accessed")
        for gid, m in self.model.items():
            assert grants.get_grant(self.ctx, gid).state.value == m.state
            assert per_grant[gid] == m.transitions, gid
            assert reads[gid] == m.reads

    def teardown(self) -> None:
        with read_only(self.ctx.engine).begin() as conn:
            audit_log((d, h) for _, h, d in SqlLedger(conn).iter_entries())


def test_grant_machine(ctx: VaultContext, clock: Clock) -> None:
    run_state_machine_as_test(
        lambda: GrantMachine(ctx, clock),
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]))
