"""Acting for others, checked from the ledger alone (ARCHITECTURE §9).

A delegation lets a *delegate* act in a *principal's* vault (the principal is the
entry's `subject`). `delegation.granted` carries its terms and both people's passkey
assertions over their hash; `delegation.revoked` and `delegation.expired` end it. Every
other entry whose `actor` is not its `subject` is an action a delegate took, and names
the delegation it took it under (`delegation_id`). `DelegationChecks` is fed those
entries by `StoryChecker`, which checks the passkey assertions itself (the grant
approvals' checks: same relying party, user verification, the signer's passkeys at that
point) through the `verify` callback, and keeps every delegation ever granted: who, what,
until when, and where it ended. It re-implements the vault's rules
(`vault.domain.relationships`) without importing the vault: tests compare the two.

Rules (`Failure.rule`), in the words the report uses:

======================  ==============================================================
delegation.id           a delegation id granted a second time
delegation.parties      a principal or delegate who is not a live enrolled subject, or
                        the same person on both sides
delegation.terms        an unknown kind; actions that are not a sorted set of view,
                        edit, approve and revoke containing view; an `until` that is
                        not a time, or not after the entry's time
delegation.too_long     a helper's delegation running more than one day
delegation.issuer       an issuer that is not a registered service issuing
                        `relationship.<kind>`
delegation.terms_hash   `terms_hash` is not SHA-256(JCS(terms)) of the terms rebuilt
                        from the entry
delegation.unsigned     no delegate's assertion; no principal's assertion although the
                        principal had a passkey then (only a child's vault has none)
delegation.credential   signed with a credential that is not a registered passkey of
                        that person (principal or delegate) at that point
delegation.signature    an assertion that does not verify over the terms hash (the
                        detail starts with why: bad_signature, challenge_mismatch, ...)
delegation.end          an ending of a delegation never granted, of another subject,
                        ended already, or by someone other than who it says; an ending
                        as citizen_erased not followed at once by either person's erasure
delegation.early        `delegation.expired` before the delegation's `until`
delegation.acting       an entry whose `actor` is not its `subject`, naming no
                        delegation (no `delegation_id`, or one never granted)
delegation.who          ... naming a delegation of another principal or delegate
delegation.ended        ... after that delegation ended (revoked, expired, erased)
delegation.until        ... at or after that delegation's `until`
delegation.action       ... an action the delegation does not allow (`NEEDS`)
======================  ==============================================================

An erasure ends every delegation of the erased person, on either side: the vault writes
their `delegation.revoked` (by "citizen_erased") in the erasure's transaction, and any
still live when `citizen.erased` comes are ended by it all the same.

Times: entry times have milliseconds, `until` whole seconds; `until` is re-spelt with
".000" once, so the two compare as text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from clients.auditor._body import Malformed, text
from clients.auditor.grants import b64_strict, time_ms
from ledger.canonical import canonical_json
from ledger.errors import EncodingError

__all__ = ["ENDED_BY", "KINDS", "NEEDS", "DelegationChecks", "Verify"]

#: The kinds of relationship, and the longest each may run in ms (None: no limit).
KINDS: Mapping[str, int | None] = {"parent": None, "attorney": None, "appointee": None,
                                   "helper": 86_400_000}
#: What a delegate may do; `view` is in every delegation.
DELEGATED = frozenset({"view", "edit", "approve", "revoke"})
#: The delegated action each kind of entry a delegate writes needs. Any other kind
#: written by a delegate needs a live delegation between the two (`view`, always held).
NEEDS: Mapping[str, str] = {
    "grant.approved": "approve", "grant.denied": "approve", "grant.resumed": "approve",
    "grant.revoked": "revoke", "grant.paused": "revoke",
    "record.written": "edit", "record.deleted": "edit", "record.disputed": "edit",
    "record.withdrawn": "edit",
}
#: Who may end a delegation (`delegation.revoked`'s `by`).
ENDED_BY = frozenset({"principal", "delegate", "issuer", "handover", "citizen_erased"})
CITIZEN_ERASED = "citizen_erased"

#: Checks a passkey assertion (index, the assertion as the entry holds it, whose passkey
#: it must be, the challenge, "principal" or "delegate"): True if it verified (or was
#: handed on to be verified), else False, the failure reported.
Verify = Callable[[int, Any, str, bytes, str], bool]


def _until(value: str) -> str | None:
    """`until` (2026-03-01T09:00:00Z) spelt as entry times are, or None if not a time."""
    if len(value) != 20 or value[10] != "T" or value[-1] != "Z":
        return None
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return value[:-1] + ".000Z"


class _Delegation:
    __slots__ = ("actions", "delegate", "ended", "granted", "principal", "until")

    def __init__(self, principal: str, delegate: str, actions: frozenset[str], until: str,
                 granted: int, ended: int | None = None) -> None:
        self.principal, self.delegate, self.actions = principal, delegate, actions
        self.until, self.granted, self.ended = until, granted, ended

    def to_json(self) -> list[Any]:
        return [self.principal, self.delegate, sorted(self.actions), self.until,
                self.granted, self.ended]

    @classmethod
    def from_json(cls, v: list[Any]) -> _Delegation:
        return cls(v[0], v[1], frozenset(v[2]), v[3], int(v[4]),
                   None if v[5] is None else int(v[5]))


class DelegationChecks:
    """Delegations granted and ended, and the actions taken under them.

    `passkeys_of(subject)` is how many passkeys a live subject has now (None: not a live
    subject); `issues_of(service)` the categories a registered service issues (None: not
    registered); `verify` checks an assertion (`Verify`); `fail(index, rule, detail)`
    reports a failure."""

    def __init__(self, *, passkeys_of: Callable[[str], int | None],
                 issues_of: Callable[[str], frozenset[str] | None], verify: Verify,
                 fail: Callable[[int | None, str, str], None]) -> None:
        self._passkeys_of, self._issues_of = passkeys_of, issues_of
        self._verify, self._fail = verify, fail
        self._all: dict[str, _Delegation] = {}  # every delegation granted, ended or not
        self._live_of: dict[str, set[str]] = {}  # person -> their live delegations
        #: Delegations ended as citizen_erased whose erasure has not come yet.
        self._erasing: list[tuple[int, str]] = []

    # -- granted ---------------------------------------------------------------------------

    def granted_entry(self, index: int, time: str, body: Mapping[str, Any]) -> None:
        did, principal = text(body, "delegation_id"), text(body, "subject")
        delegate, kind = text(body, "delegate"), text(body, "relationship")
        until_text, issuer = text(body, "until"), body.get("issuer")
        actions: Any = body.get("actions")
        if issuer is not None and type(issuer) is not str:
            raise Malformed("issuer must be text or null")
        if type(actions) is not list or not all(type(a) is str for a in actions):
            raise Malformed("actions must be a list of text")
        if did in self._all:
            self._fail(index, "delegation.id", f"delegation {did} is granted a second time "
                                               f"(first at entry {self._all[did].granted})")
            return
        self._parties(index, principal, delegate)
        until = self._terms(index, time, kind, actions, until_text)
        if issuer is not None:
            issues = self._issues_of(issuer)
            if issues is None or f"relationship.{kind}" not in issues:
                self._fail(index, "delegation.issuer", (
                    f"issuer {issuer} is not a registered service issuing "
                    f"relationship.{kind}"))
        terms = {"delegation_id": did, "principal": principal, "delegate": delegate,
                 "kind": kind, "actions": actions, "until": until_text, "issuer": issuer}
        try:
            computed = hashlib.sha256(canonical_json(terms)).digest()
        except EncodingError as exc:
            self._fail(index, "delegation.terms_hash", f"the terms cannot be "
                                                       f"canonicalised: {exc}")
            computed = b""
        if computed and b64_strict(body.get("terms_hash")) != computed:
            self._fail(index, "delegation.terms_hash", (
                f"the terms hash to {base64.b64encode(computed).decode()}, not to the "
                f"recorded terms_hash {str(body.get('terms_hash'))[:60]}"))
        if computed:
            self._signatures(index, body, principal, delegate, computed)
        d = _Delegation(principal, delegate, frozenset(actions), until or "", index)
        self._all[did] = d
        for person in (principal, delegate):
            self._live_of.setdefault(person, set()).add(did)

    def _parties(self, index: int, principal: str, delegate: str) -> None:
        for role, person in (("principal", principal), ("delegate", delegate)):
            if self._passkeys_of(person) is None:
                self._fail(index, "delegation.parties", f"the {role} {person} is not a "
                                                        "live enrolled subject")
        if principal == delegate:
            self._fail(index, "delegation.parties", f"{principal} cannot act for themself")

    def _terms(self, index: int, time: str, kind: str, actions: list[str],
               until_text: str) -> str | None:
        """The delegation's `until` as an entry time (None if it is not a time), after
        checking the kind, the actions and the dates."""
        if kind not in KINDS:
            self._fail(index, "delegation.terms", f"{kind[:60]} is not a kind of "
                                                  "relationship (parent, attorney, "
                                                  "appointee, helper)")
        if not set(actions) <= DELEGATED or "view" not in actions \
                or actions != sorted(set(actions)):
            self._fail(index, "delegation.terms", (
                f"actions {', '.join(actions)[:100]} are not a sorted set of view, edit, "
                "approve and revoke with view"))
        until = _until(until_text)
        if until is None:
            self._fail(index, "delegation.terms", f"until {until_text[:60]} is not a time "
                                                  "YYYY-MM-DDTHH:MM:SSZ")
            return None
        if until <= time:
            self._fail(index, "delegation.terms", f"it ends at {until_text}, not after it "
                                                  f"begins at {time}")
            return until
        longest = KINDS.get(kind)
        try:
            span = time_ms(until) - time_ms(time)
        except ValueError:
            return until  # not an entry time: the chain check has reported it
        if longest is not None and span > longest:
            self._fail(index, "delegation.too_long", (
                f"a {kind} acts for at most {longest // 3_600_000} hours; this one runs "
                f"{span / 3_600_000:.1f} hours, until {until_text}"))
        return until

    def _signatures(self, index: int, body: Mapping[str, Any], principal: str,
                    delegate: str, terms_hash: bytes) -> None:
        signed = body.get("delegate_assertion")
        if signed is None:
            self._fail(index, "delegation.unsigned", "the delegate did not sign the terms")
        else:
            self._verify(index, signed, delegate, terms_hash, "delegate")
        signed = body.get("principal_assertion")
        if signed is not None:
            self._verify(index, signed, principal, terms_hash, "principal")
        elif self._passkeys_of(principal):
            self._fail(index, "delegation.unsigned", (
                f"the principal {principal} has a passkey, and did not sign the terms "
                "(only a child's vault, with none, goes live on the delegate's signature)"))

    # -- ended -----------------------------------------------------------------------------

    def _ending(self, index: int, body: Mapping[str, Any], kind: str) -> _Delegation | None:
        """The live delegation an ending names, now ended; None (a failure) if none."""
        did, subject = text(body, "delegation_id"), text(body, "subject")
        d = self._all.get(did)
        if d is None:
            self._fail(index, "delegation.end", f"{kind} of delegation {did[:60]}, never "
                                                "granted")
            return None
        if d.principal != subject:
            self._fail(index, "delegation.end", f"{kind} names subject {subject}, not "
                                                f"delegation {did}'s principal")
            return None
        if d.ended is not None:
            self._fail(index, "delegation.end", f"{kind} of delegation {did}, ended "
                                                f"already at entry {d.ended}")
            return None
        self._close(did, d, index)
        return d

    def _close(self, did: str, d: _Delegation, index: int) -> None:
        d.ended = index
        for person in (d.principal, d.delegate):
            live = self._live_of.get(person)
            if live is not None:
                live.discard(did)
                if not live:
                    del self._live_of[person]

    def revoked_entry(self, index: int, time: str, body: Mapping[str, Any]) -> bool:
        """Check a `delegation.revoked`; True if it ends it as citizen_erased (the
        erasure of one of its two people must follow in the same transaction)."""
        by = text(body, "by")
        actor = body.get("actor")
        if actor is not None and type(actor) is not str:
            raise Malformed("actor must be text")
        d = self._ending(index, body, "delegation.revoked")
        if by not in ENDED_BY:
            self._fail(index, "delegation.end", f"ended by {by[:60]}, not one of "
                                                f"{', '.join(sorted(ENDED_BY))}")
        elif d is not None and actor is not None and (
                (by == "principal" and actor != d.principal)
                or (by == "delegate" and actor != d.delegate)):
            self._fail(index, "delegation.end", f"ended by the {by}, but {actor} is not "
                                                f"the delegation's {by}")
        if by == CITIZEN_ERASED:
            self._erasing.append((index, text(body, "delegation_id")))
            return True
        return False

    def expired_entry(self, index: int, time: str, body: Mapping[str, Any]) -> None:
        did = body.get("delegation_id")
        d = self._all.get(did) if type(did) is str else None
        if d is not None and d.ended is None and d.until and time < d.until:
            self._fail(index, "delegation.early", f"expired at {time}, before its until "
                                                  f"{d.until}")
        self._ending(index, body, "delegation.expired")

    # -- erasure ---------------------------------------------------------------------------

    def erased(self, index: int, subject: str) -> None:
        """`citizen.erased` of `subject`: the endings just before must be of its
        delegations, and it ends any of them still live."""
        for at, did in self._erasing:
            d = self._all.get(did)
            if d is not None and subject not in (d.principal, d.delegate):
                self._fail(at, "delegation.end", (
                    f"delegation {did} ends as citizen_erased, but the citizen erased "
                    f"next ({subject}) is neither of its people"))
        self._erasing.clear()
        for did in list(self._live_of.get(subject, ())):
            self._close(did, self._all[did], index)

    def erasure_interrupted(self) -> None:
        """The entries after endings as citizen_erased are not the erasure."""
        for at, did in self._erasing:
            self._fail(at, "delegation.end", f"delegation {did} ends as citizen_erased, "
                                             "but neither of its people is erased right "
                                             "after")
        self._erasing.clear()

    # -- actions by a delegate -------------------------------------------------------------

    def acting(self, index: int, time: str, kind: str, body: Mapping[str, Any]) -> bool:
        """An entry with an `actor`: if it is not the `subject`, a delegate's action, to
        check against the delegation it names (True: it was one)."""
        actor, subject = body["actor"], body.get("subject")
        if actor == subject:
            return False
        if type(actor) is not str:
            raise Malformed("actor must be text")
        did = body.get("delegation_id")
        d = self._all.get(did) if type(did) is str else None
        if d is None:
            self._fail(index, "delegation.acting", (
                f"{kind} by {actor} for {subject}, under "
                + ("no delegation" if did is None else f"delegation {str(did)[:60]}, never "
                                                       "granted")))
            return True
        if d.principal != subject or d.delegate != actor:
            self._fail(index, "delegation.who", (
                f"{kind} by {actor} for {subject}, under delegation {did}, which lets "
                f"{d.delegate} act for {d.principal}"))
            return True
        if d.ended is not None:
            self._fail(index, "delegation.ended", f"{kind} under delegation {did}, which "
                                                  f"ended at entry {d.ended}")
        elif d.until and time >= d.until:
            self._fail(index, "delegation.until", f"{kind} at {time}, under delegation "
                                                  f"{did}, which ran until {d.until}")
        needed = NEEDS.get(kind, "view")
        if needed not in d.actions:
            self._fail(index, "delegation.action", (
                f"{kind} needs {needed}; delegation {did} allows only "
                f"{', '.join(sorted(d.actions))}"))
        return True

    # -- state -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"all": {did: d.to_json() for did, d in self._all.items()},
                "erasing": [list(p) for p in self._erasing]}

    def load(self, saved: Mapping[str, Any]) -> None:
        for did, v in saved.get("all", {}).items():
            d = self._all[did] = _Delegation.from_json(v)
            if d.ended is None:
                for person in (d.principal, d.delegate):
                    self._live_of.setdefault(person, set()).add(did)
        self._erasing = [(int(i), str(did)) for i, did in saved.get("erasing", [])]
