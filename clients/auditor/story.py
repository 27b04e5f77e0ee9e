"""Every grant's story, checked entry by entry from the ledger alone (ARCHITECTURE §3).

`StoryChecker` is fed the parsed entries in order and keeps, per subject, the passkeys
registered (and not removed), per service its registration, and per grant its terms,
state, reads and last read; the stories of records (issuers' writes, withdrawals and
disputes, and what reads say an issuer wrote) are checked by `clients.auditor.records`.
It re-implements what it checks (the state machine, terms and the action challenge in
`clients.auditor.grants`; the read rules of `vault.domain.grants.check_read` here)
without importing the vault: tests compare each with the vault's own.

Rules (`Failure.rule`), in the words the report uses:

=====================  ================================================================
entry                  a known kind whose body lacks a field or has the wrong type
subject                an entry about a subject never enrolled, or enrolled twice
erasure                an entry about an erased subject; grants ended "citizen_erased"
                       not followed at once by that citizen's `citizen.erased`; a
                       subject erased while one of its grants was still live
passkey                a passkey registered twice, or removed without being registered
service                an unknown or twice-registered service; a suspended one asking
terms                  terms that are malformed, do not hash to `terms_hash`, name
                       another grant or service, or exceed the service's registration
                       (a grant to write: categories beyond the registration's `issues`)
transition             a grant entry the state machine does not allow from the grant's
                       state, or naming another service or subject than the grant's
transition.unsigned    a pause, resume or revoke without the citizen's signature (the
                       vault's own revocations happen only on erasure)
transition.early       `grant.expired` before `expires_at`; `grant.exhausted` before
                       the read limit was reached
approval               the assertion does not verify (the detail starts with why:
                       bad_signature, challenge_mismatch, wrong_origin, ...); the reads
                       under a grant whose approval fails rest on it, and are not named
                       again one by one
approval.credential    signed by a credential that is not a registered passkey of the
                       grant's subject at that point (never registered, or removed)
approval.terms         the approval (or recorded action challenge) names other terms
access.grant           a read under an unknown grant, or naming another service or
                       subject than the grant's
access.service         a read by a suspended service
access.state           a read while the grant is not approved (requested, paused,
                       revoked, expired, exhausted, ...)
access.window          a read recorded outside [not_before, expires_at)
access.scope           categories or derived answers the terms do not cover (a grant
                       only to write covers none: any read under it)
access.limit           more reads than the terms allow (one_time: 1; periodic: max_reads)
access.interval        a read sooner than min_interval after the previous one
write.*                the record rules, listed in `clients.auditor.records`, with
record.*               ``withdraw.record``, ``dispute.record``, ``access.issuer`` and
                       ``access.source``
delegation.*           acting for others (ARCHITECTURE §9): delegations granted and
                       ended, and every entry whose `actor` is not its `subject` checked
                       against a delegation live then with that action; the rules are
                       listed in `clients.auditor.delegations`
=====================  ================================================================

A signed grant action by a delegate (`actor` beside `subject`) is signed with one of the
ACTOR's passkeys, over the same challenge as the citizen's own; entries without `actor`
are the subject's own.

Warnings (`StoryChecker.warnings`, not failures): `unknown_kind` for an entry of a kind
this auditor does not know that names a grant, subject, service or credential (its story
cannot be checked; unknown kinds naming none of them are only counted), and `sign_count`
when a passkey's signature counter does not grow between two recorded assertions
(WebAuthn L3 §7.2 step 22: a sign of a cloned authenticator, or of a counter-less one).

Times: entry times are RFC 3339 with milliseconds and terms' whole seconds; both have
fixed widths, so terms' times are re-spelt with ".000" once and compared as text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clients.auditor._body import Malformed as _Malformed
from clients.auditor._body import names as _names
from clients.auditor._body import text as _str
from clients.auditor.assertion import (
    AssertionInvalid,
    b64url_decode,
    check_assertion,
    load_cose_key,
    parse_assertion,
    signed_data,
    verify_signature,
)
from clients.auditor.delegations import DelegationChecks
from clients.auditor.grants import (
    ACTIONS,
    CITIZEN_ERASED,
    LIVE_STATES,
    TRANSITIONS,
    Terms,
    TermsInvalid,
    action_challenge,
    b64_strict,
    parse_terms,
    time_ms,
)
from clients.auditor.records import RecordChecks
from ledger.canonical import canonical_json
from ledger.errors import EncodingError

__all__ = ["Failure", "SignatureCheck", "StoryChecker", "StoryStats", "check_signature_now"]

_NAMES = ("grant_id", "subject", "service_id", "credential_id")


@dataclass(frozen=True, slots=True)
class Failure:
    """One broken rule: the entry index (None for the whole log), the rule, why."""

    index: int | None
    rule: str
    detail: str

    def __str__(self) -> str:
        where = f"entry {self.index}: " if self.index is not None else ""
        return f"{where}{self.rule}: {self.detail}"


@dataclass(slots=True)
class StoryStats:
    subjects: int = 0
    passkeys: int = 0
    services: int = 0
    grants: int = 0
    approvals_verified: int = 0
    accesses_checked: int = 0
    unknown_kinds: int = 0
    #: Issuers' writes, withdrawals and the citizens' disputes (ARCHITECTURE §8).
    records_checked: int = 0
    #: Delegations granted, and entries a delegate wrote (ARCHITECTURE §9).
    delegations: int = 0
    delegated_actions: int = 0


#: Checks a passkey signature (index of the entry, the passkey's COSE key as the ledger
#: holds it, the signed bytes, the signature): the failure now, or None (verified, or
#: handed on to be verified elsewhere, whose failures the caller then reports).
SignatureCheck = Callable[[int, str, bytes, bytes], AssertionInvalid | None]


def check_signature_now(index: int, public_key: str, signed: bytes, signature: bytes
                        ) -> AssertionInvalid | None:
    """The default `SignatureCheck`: verify at once (COSE keys are loaded once each)."""
    try:
        key = load_cose_key(b64url_decode(public_key, what="the registered public key"))
        verify_signature(key, signed, signature)
    except AssertionInvalid as exc:
        return exc
    return None


class _Grant:
    """What the checker keeps of a grant: enough for its transitions and its reads."""

    __slots__ = ("categories", "derived", "end", "hash_b64", "interval_ms",
                 "last", "last_read_ms", "limit", "reads", "service", "start", "state",
                 "subject", "terms_hash", "writes")

    def __init__(self, service: str, subject: str, terms_hash: bytes, start: str, end: str,
                 categories: frozenset[str], derived: frozenset[str], limit: int | None,
                 interval_ms: int | None, last: int,
                 writes: frozenset[str] = frozenset()) -> None:
        self.service, self.subject, self.terms_hash = service, subject, terms_hash
        self.hash_b64 = base64.b64encode(terms_hash).decode()
        self.start, self.end = start, end
        # What a read may cover (nothing, for a grant only to write), and what the
        # service may write (an issuer's grant).
        self.categories, self.derived, self.writes = categories, derived, writes
        self.limit, self.interval_ms = limit, interval_ms
        self.state = "requested"
        self.reads = 0
        self.last_read_ms: int | None = None
        self.last = last  # index of the grant's latest grant.* entry

    def to_json(self) -> list[Any]:
        return [self.service, self.subject, self.terms_hash.hex(), self.start, self.end,
                sorted(self.categories), sorted(self.derived), self.limit, self.interval_ms,
                self.state, self.reads, self.last_read_ms, self.last, sorted(self.writes)]

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> _Grant:
        # A state saved before write grants has no 14th item: nothing written.
        g = cls(v[0], v[1], bytes.fromhex(v[2]), v[3], v[4], frozenset(v[5]), frozenset(v[6]),
                v[7], v[8], v[12], frozenset(v[13]) if len(v) > 13 else frozenset())
        g.state, g.reads, g.last_read_ms = v[9], v[10], v[11]
        return g


class _Passkey:
    __slots__ = ("index", "public_key", "sign_count")

    def __init__(self, public_key: str, index: int, sign_count: int = 0) -> None:
        self.public_key, self.index, self.sign_count = public_key, index, sign_count


class _Subject:
    """A live subject: its registered passkeys (credential id -> key) and its grants."""

    __slots__ = ("grants", "passkeys")

    def __init__(self) -> None:
        self.passkeys: dict[str, _Passkey] = {}
        self.grants: list[str] = []


@dataclass(frozen=True, slots=True)
class _Service:
    purposes: frozenset[str]
    categories: frozenset[str]
    derived: frozenset[str]
    max_days: int
    #: The categories it may issue (write grants), from `issues` (absent: none).
    issues: frozenset[str] = frozenset()
    #: The categories it holds at source (never stored in the vault; absent: none).
    held: frozenset[str] = frozenset()


class StoryChecker:
    """Feed entries in ledger order; read `failures` (and `warnings`) at any time.

    `rp_id` and `origins` are the relying party the citizens' passkeys belong to (the
    vault's public URL: its host, and its origin). Call `finish()` after the last entry
    of a ledger (it reports an erasure the ledger ends in the middle of).
    `check_signature` checks each passkey signature (at once by default; the full
    verification hands them to its worker process, and reports their failures itself).
    """

    def __init__(self, *, rp_id: str, origins: Sequence[str],
                 check_signature: SignatureCheck = check_signature_now) -> None:
        self.rp_id = rp_id
        self.origins = tuple(origins)
        self._check_signature = check_signature
        #: Whether the last data.accessed fed named its grant's service, subject and
        #: scope, and broke no rule (what the personal-data scan may rely on).
        self.read_in_order = False
        self.stats = StoryStats()
        self._failures: list[Failure] = []
        self._warnings: list[Failure] = []
        self._subjects: dict[str, _Subject] = {}
        self._credentials: dict[str, str] = {}  # credential id -> subject, while registered
        self._erased: dict[str, int] = {}  # subject -> index of citizen.erased
        self._services: dict[str, _Service] = {}
        self._suspended: set[str] = set()
        self._grants: dict[str, _Grant] = {}
        self._records = RecordChecks(grants=self._grants, services=self._services,
                                     suspended=self._suspended, fail=self._fail)
        # (subject, first index) of an erasure; the subject is None while only
        # delegations have ended as citizen_erased (either of their people may be next).
        self._erasing: tuple[str | None, int] | None = None
        self._delegations = DelegationChecks(
            passkeys_of=lambda s: len(self._subjects[s].passkeys) if s in self._subjects
            else None,
            issues_of=lambda s: self._services[s].issues if s in self._services else None,
            verify=self._delegation_signed, fail=self._fail)
        #: Entries whose passkey signatures are a delegation's, not an approval's (what a
        #: failure the log worker reports is called: `signature_rule`).
        self._delegation_indices: set[int] = set()
        self._last_ms: tuple[str, int] = ("", 0)
        self._handlers: dict[str, Callable[[int, str, dict[str, Any], str], None]] = {
            "citizen.enrolled": self._enrolled,
            "citizen.erased": self._erased_entry,
            "passkey.registered": self._passkey_registered,
            "passkey.removed": self._passkey_removed,
            "service.registered": self._service_registered,
            "service.suspended": self._service_suspended,
            "grant.requested": self._requested,
            "record.written": self._record,
            "record.withdrawn": self._record,
            "record.disputed": self._record,
            "record.deleted": self._record,
            "key.rotated": lambda i, time, body, kind: None,
            "delegation.granted": self._delegation_granted,
            "delegation.revoked": self._delegation_revoked,
            "delegation.expired": self._delegation_expired,
            **{kind: self._transition for kind in TRANSITIONS},
        }

    # -- results -----------------------------------------------------------------------

    @property
    def failures(self) -> list[Failure]:
        return self._failures

    @property
    def warnings(self) -> list[Failure]:
        return self._warnings

    def _fail(self, index: int | None, rule: str, detail: str) -> None:
        self._failures.append(Failure(index, rule, detail))

    # -- feeding -----------------------------------------------------------------------

    def feed(self, index: int, entry: Mapping[str, Any]) -> None:
        """Check one parsed entry (`seq`, `time`, `kind`, `body`, ...) at `index`."""
        self.feed_parts(index, entry.get("kind"), entry.get("time"), entry.get("body"))

    def feed_parts(self, index: int, kind: Any, time: Any, body: Any) -> None:
        """`feed`, for a caller that has taken the entry apart already."""
        self.read_in_order = False
        if type(kind) is not str or type(time) is not str or type(body) is not dict:
            self._fail(index, "entry", "not an entry with a kind, a time and a body")
            return
        if kind == "data.accessed":  # nine entries in ten: the fast path first
            if self._erasing is not None:
                self._erasure_interrupted()
            self._accessed(index, time, body)
            return
        if self._erasing is not None and not self._continues_erasure(kind, body):
            self._erasure_interrupted()
        handler = self._handlers.get(kind)
        if handler is None:
            self._unknown(index, kind, body)
            return
        try:
            handler(index, time, body, kind)
            # An action someone took for another person (a dict lookup for the rest).
            if "actor" in body and not kind.startswith("delegation.") \
                    and self._delegations.acting(index, time, kind, body):
                self.stats.delegated_actions += 1
        except _Malformed as exc:
            self._fail(index, "entry", f"{kind}: {exc}")

    def finish(self) -> None:
        """The ledger ends here: an erasure it stops in the middle of is a failure."""
        if self._erasing is not None:
            self._erasure_interrupted()

    def _unknown(self, index: int, kind: str, body: dict[str, Any]) -> None:
        self.stats.unknown_kinds += 1
        named = [k for k in _NAMES if k in body]
        if named:
            self._warnings.append(Failure(index, "unknown_kind", (
                f"{kind} is not a kind this auditor knows, and it names a "
                f"{' and a '.join(n.removesuffix('_id') for n in named)}: its story cannot "
                "be checked")))

    # -- subjects and passkeys -----------------------------------------------------------

    def _subject(self, index: int, body: Mapping[str, Any]) -> _Subject | None:
        """The subject named, or None (with a failure) if it is not a live subject."""
        subject = _str(body, "subject")
        found = self._subjects.get(subject)
        if found is not None:
            return found
        erased = self._erased.get(subject)
        if erased is not None:
            self._fail(index, "erasure", f"names subject {subject}, erased at entry {erased}")
        else:
            self._fail(index, "subject", f"names subject {subject}, never enrolled")
        return None

    def _enrolled(self, index: int, time: str, body: dict[str, Any], kind: str) -> None:
        subject = _str(body, "subject")
        if subject in self._subjects or subject in self._erased:
            self._fail(index, "subject", f"subject {subject} is enrolled a second time")
            return
        self._subjects[subject] = _Subject()
        self.stats.subjects += 1

    def _record(self, index: int, time: str, body: dict[str, Any], kind: str) -> None:
        """A record's entry: about a live subject, and then its story (`records`)."""
        if self._subject(index, body) is None:
            return
        if kind != "record.deleted" and (kind != "record.written" or "issuer" in body):
            self.stats.records_checked += 1
        if kind == "record.written":
            self._records.written(index, time, body)
        elif kind == "record.withdrawn":
            self._records.withdrawn(index, time, body)
        elif kind == "record.disputed":
            self._records.disputed(index, body)
        else:
            self._records.deleted(body)

    def _passkey_registered(self, index: int, time: str, body: dict[str, Any],
                            kind: str) -> None:
        subject = self._subject(index, body)
        credential, public_key = _str(body, "credential_id"), _str(body, "public_key")
        if type(body.get("alg")) is not int:
            raise _Malformed("alg must be a COSE algorithm number")
        if subject is None:
            return
        # The vault keys passkeys by their (random) credential ids: one id, one passkey.
        if credential in self._credentials:
            self._fail(index, "passkey", f"credential {credential} is registered already")
            return
        subject.passkeys[credential] = _Passkey(public_key, index)
        self._credentials[credential] = body["subject"]
        self.stats.passkeys += 1

    def _passkey_removed(self, index: int, time: str, body: dict[str, Any], kind: str) -> None:
        subject = self._subject(index, body)
        credential = _str(body, "credential_id")
        if subject is None:
            return
        if subject.passkeys.pop(credential, None) is None:
            self._fail(index, "passkey", f"credential {credential} is removed but is not a "
                                         "registered passkey of this subject")
            return
        del self._credentials[credential]

    # -- services ------------------------------------------------------------------------

    def _service_registered(self, index: int, time: str, body: dict[str, Any],
                            kind: str) -> None:
        service = _str(body, "service_id")
        max_days = body.get("max_days")
        if type(max_days) is not int:
            raise _Malformed("max_days must be a whole number")
        registration = _Service(frozenset(_names(body.get("purposes"), "purposes")),
                                frozenset(_names(body.get("categories"), "categories")),
                                frozenset(_names(body.get("derived"), "derived")), max_days,
                                frozenset(_names(body.get("issues", []), "issues")),
                                frozenset(_names(body.get("held_at_source", []),
                                                 "held_at_source")))
        if not registration.held <= registration.issues:
            self._fail(index, "service", f"service {service} holds at source categories it "
                                         "does not issue")
        if service in self._services:
            self._fail(index, "service", f"service {service} is registered a second time")
            return
        taken = self._records.hold(service, registration.held)
        if taken:
            self._fail(index, "service", f"service {service} holds at source "
                                         f"{', '.join(taken)[:200]}, held by another already")
        self._services[service] = registration
        self.stats.services += 1

    def _service_suspended(self, index: int, time: str, body: dict[str, Any],
                           kind: str) -> None:
        service = _str(body, "service_id")
        if service not in self._services:
            self._fail(index, "service", f"service {service} is suspended but was never "
                                         "registered")
        self._suspended.add(service)

    # -- grants --------------------------------------------------------------------------

    def _requested(self, index: int, time: str, body: dict[str, Any], kind: str) -> None:
        grant_id, service_id = _str(body, "grant_id"), _str(body, "service_id")
        subject = _str(body, "subject")
        found = self._subject(index, body)
        if grant_id in self._grants:
            self._fail(index, "terms", f"grant {grant_id} is requested a second time")
            return
        raw_terms: Any = body.get("terms")
        try:
            terms = parse_terms(raw_terms)
        except TermsInvalid as exc:
            self._fail(index, "terms", f"the terms are not valid grant terms: {exc}")
            return
        recorded = b64_strict(body.get("terms_hash"))
        try:
            computed = hashlib.sha256(canonical_json(raw_terms)).digest()
        except EncodingError as exc:
            self._fail(index, "terms", f"the terms cannot be canonicalised: {exc}")
            return
        if recorded != computed:
            self._fail(index, "terms", f"the terms hash to "
                                       f"{base64.b64encode(computed).decode()}, not to the "
                                       f"recorded terms_hash {str(body.get('terms_hash'))[:60]}")
        if raw_terms["grant_id"] != grant_id or raw_terms["service_id"] != service_id:
            self._fail(index, "terms", "the terms name another grant or service than the "
                                       "entry")
        self._within_registration(index, service_id, terms)
        self._grants[grant_id] = _Grant(service_id, subject, computed, terms.start, terms.end,
                                        terms.reads, terms.read_derived, terms.limit,
                                        terms.interval_ms, index, terms.writes)
        if found is not None:
            found.grants.append(grant_id)
        self.stats.grants += 1

    def _within_registration(self, index: int, service_id: str, terms: Terms) -> None:
        reg = self._services.get(service_id)
        if reg is None:
            self._fail(index, "service", f"service {service_id} asks, but was never registered")
            return
        if service_id in self._suspended:
            self._fail(index, "service", f"service {service_id} asks while suspended")
        outside = sorted((terms.reads - reg.categories) | (terms.read_derived - reg.derived))
        outside += [f"write {c}" for c in sorted(terms.writes - reg.issues)]
        if terms.purpose not in reg.purposes:
            outside.insert(0, f"purpose {terms.purpose}")
        if terms.days > reg.max_days:
            outside.append(f"{terms.days:g} days (at most {reg.max_days})")
        if outside:
            self._fail(index, "terms", f"the terms go beyond the service's registration: "
                                       f"{', '.join(outside)[:200]}")

    def _transition(self, index: int, time: str, body: dict[str, Any], kind: str) -> None:
        grant_id = _str(body, "grant_id")
        g = self._grants.get(grant_id)
        if g is None:
            self._fail(index, "transition", f"{kind} for grant {grant_id}, never requested")
            return
        if body.get("service_id") != g.service or body.get("subject") != g.subject:
            self._fail(index, "transition", f"{kind} names another service or subject than "
                                            f"grant {grant_id}'s")
            return
        after = TRANSITIONS[kind].get(g.state)
        if after is None:
            self._fail(index, "transition", f"{kind} cannot follow the state {g.state} "
                                            f"(grant {grant_id})")
            return
        erasing = body.get("reason") == CITIZEN_ERASED and kind in (
            "grant.revoked", "grant.denied")
        if erasing:
            if self._erasing is None or self._erasing[0] is None:
                self._erasing = (g.subject, index)
        elif kind == "grant.approved":
            self._approved(index, body, g)
        elif kind in ACTIONS:
            self._signed_action(index, body, g, kind)
        elif kind == "grant.expired" and time < g.end:
            self._fail(index, "transition.early", f"expired at {time}, before its end "
                                                  f"{g.end}")
        elif kind == "grant.exhausted" and (g.limit is None or g.reads < g.limit):
            self._fail(index, "transition.early", f"exhausted after {g.reads} reads of "
                                                  f"{g.limit if g.limit else 'unlimited'}")
        g.state, g.last = after, index

    def _approved(self, index: int, body: dict[str, Any], g: _Grant) -> None:
        if body.get("terms_hash") != g.hash_b64:
            self._fail(index, "approval.terms", "the approval names other terms than the "
                                                "request")
            return
        self._signed(index, body, g, g.terms_hash)

    def _signed_action(self, index: int, body: dict[str, Any], g: _Grant, kind: str) -> None:
        if "assertion" not in body:
            self._fail(index, "transition.unsigned", f"{kind} carries no signature of the "
                                                     "citizen")
            return
        challenge = action_challenge(grant_id=_str(body, "grant_id"), action=ACTIONS[kind],
                                     terms_hash=g.terms_hash, after=g.last)
        if body.get("by") != "citizen" or b64_strict(body.get("challenge")) != challenge:
            self._fail(index, "approval.terms", f"the recorded challenge is not the {kind} "
                                                f"challenge after entry {g.last}")
        self._signed(index, body, g, challenge)

    def _signed(self, index: int, body: dict[str, Any], g: _Grant, challenge: bytes) -> None:
        """Check the assertion over `challenge` (a failure if it does not): the subject's,
        or the actor's when a delegate acted (the delegation is checked in `feed_parts`)."""
        signer = body.get("actor", g.subject)
        if type(signer) is not str:
            raise _Malformed("actor must be text")
        if self._verify_passkey(index, body.get("assertion"), signer, challenge,
                                "approval.credential", "approval", f"subject {signer}"):
            self.stats.approvals_verified += 1

    def _delegation_signed(self, index: int, raw: Any, signer: str, challenge: bytes,
                           role: str) -> bool:
        """A `delegations.Verify`: one person's assertion over a delegation's terms."""
        self._delegation_indices.add(index)
        return self._verify_passkey(index, raw, signer, challenge, "delegation.credential",
                                    "delegation.signature", f"the {role} {signer}")

    def signature_rule(self, index: int) -> str:
        """The rule a signature at `index` that failed elsewhere (the log worker) broke."""
        return "delegation.signature" if index in self._delegation_indices else "approval"

    def _verify_passkey(self, index: int, raw: Any, signer: str, challenge: bytes,
                        credential_rule: str, rule: str, whose: str) -> bool:
        """Check an assertion over `challenge` by one of `signer`'s registered passkeys:
        True if it verified (or was handed on to be), else False with the failure."""
        subject = self._subjects.get(signer)
        try:
            assertion = parse_assertion(raw)
            passkey = subject.passkeys.get(assertion.credential_id) if subject else None
            if passkey is None:
                self._fail(index, credential_rule, (
                    f"signed with credential {assertion.credential_id}, not a registered "
                    f"passkey of {whose} at this point"))
                return False
            checked = check_assertion(assertion, expected_challenge=challenge,
                                      expected_rp_id=self.rp_id,
                                      expected_origins=self.origins)
        except AssertionInvalid as exc:
            self._fail(index, rule, f"{exc.reason}: {exc}")
            return False
        bad = self._check_signature(index, passkey.public_key, signed_data(assertion),
                                    assertion.signature)
        if bad is not None:
            self._fail(index, rule, f"{bad.reason}: {bad}")
            return False
        count = checked.sign_count
        if (count or passkey.sign_count) and count <= passkey.sign_count:
            self._warnings.append(Failure(index, "sign_count", (
                f"credential {assertion.credential_id} signed with counter {count} after "
                f"{passkey.sign_count}: a cloned authenticator, or one without a counter")))
        passkey.sign_count = max(count, passkey.sign_count)
        return True

    # -- delegations (ARCHITECTURE §9) ---------------------------------------------------

    def _delegation_granted(self, index: int, time: str, body: dict[str, Any],
                            kind: str) -> None:
        self.stats.delegations += 1
        self._delegations.granted_entry(index, time, body)

    def _delegation_revoked(self, index: int, time: str, body: dict[str, Any],
                            kind: str) -> None:
        # Ended by an erasure: the erasure of one of its people follows (which one, the
        # entries after say: the subject is the principal, the erased may be the delegate).
        if self._delegations.revoked_entry(index, time, body) and self._erasing is None:
            self._erasing = (None, index)

    def _delegation_expired(self, index: int, time: str, body: dict[str, Any],
                            kind: str) -> None:
        self._delegations.expired_entry(index, time, body)

    # -- erasure -------------------------------------------------------------------------

    def _continues_erasure(self, kind: str, body: dict[str, Any]) -> bool:
        assert self._erasing is not None
        if kind == "delegation.revoked":  # of the erased person, on either side
            return body.get("by") == CITIZEN_ERASED
        subject = self._erasing[0]
        if subject is not None and body.get("subject") != subject:
            return False
        return kind == "citizen.erased" or (
            kind in ("grant.revoked", "grant.denied") and body.get("reason") == CITIZEN_ERASED)

    def _erasure_interrupted(self) -> None:
        assert self._erasing is not None
        subject, index = self._erasing
        self._erasing = None
        if subject is not None:
            self._fail(index, "erasure", f"grants of subject {subject} end as "
                                         "citizen_erased, but the citizen is not erased "
                                         "right after")
        self._delegations.erasure_interrupted()

    def _erased_entry(self, index: int, time: str, body: dict[str, Any], kind: str) -> None:
        self._erasing = None
        found = self._subject(index, body)
        subject = body["subject"]
        self._delegations.erased(index, subject)
        if found is None:
            return
        live = [gid for gid in found.grants if self._grants[gid].state in LIVE_STATES]
        if live:
            self._fail(index, "erasure", f"subject {subject} is erased while grant "
                                         f"{live[0]} is still {self._grants[live[0]].state}")
        for credential in found.passkeys:
            del self._credentials[credential]
        del self._subjects[subject]
        self._records.erased(subject)
        self._erased[subject] = index

    # -- reads ---------------------------------------------------------------------------

    def _accessed(self, index: int, time: str, body: dict[str, Any]) -> None:
        self.stats.accesses_checked += 1
        grant_id = body.get("grant_id")
        g = self._grants.get(grant_id) if type(grant_id) is str else None
        if g is None:
            self._fail(index, "access.grant", f"a read under grant {str(grant_id)[:60]}, "
                                              "never requested")
            return
        cats, derived = body.get("categories"), body.get("derived")
        try:  # every rule at once, for the common case; the details only if one fails
            fine = (g.state == "approved"
                    and g.start <= time < g.end
                    and (g.limit is None or g.reads < g.limit)
                    and body.get("service_id") == g.service
                    and body.get("subject") == g.subject
                    and type(cats) is list and type(derived) is list
                    and g.categories.issuperset(cats) and g.derived.issuperset(derived)
                    and g.service not in self._suspended
                    and not (g.writes and not g.categories))
        except TypeError:  # an unhashable category
            fine = False
        if not fine:
            self._access_failures(index, time, body, g)
        # Values an issuer wrote, or a source held (and whatever is held at source).
        if "issuers" in body or "sources" in body or self._records.held:
            try:
                fine = self._records.accessed(
                    index, body, cats if type(cats) is list else (),
                    derived if type(derived) is list else ()) and fine
            except _Malformed as exc:
                fine = False
                self._fail(index, "entry", f"data.accessed: {exc}")
        self.read_in_order = fine
        g.reads += 1
        if g.interval_ms is not None:
            now = self._time_ms(time)
            last = g.last_read_ms
            if last is not None and now - last < g.interval_ms:
                self._fail(index, "access.interval", (
                    f"a read {now - last} ms after the previous one; the terms ask for "
                    f"{g.interval_ms} ms between reads"))
            g.last_read_ms = now

    def _access_failures(self, index: int, time: str, body: dict[str, Any], g: _Grant
                         ) -> None:
        """Each rule a read breaks (`check_read`'s order: state, window, limit)."""
        grant_id = body["grant_id"]
        if body.get("service_id") != g.service or body.get("subject") != g.subject:
            self._fail(index, "access.grant", f"the read names another service or subject "
                                              f"than grant {grant_id}'s")
        if g.service in self._suspended:
            self._fail(index, "access.service", f"service {g.service} reads while suspended")
        if g.state != "approved":
            self._fail(index, "access.state", f"a read while grant {grant_id} is {g.state} "
                                              f"(since entry {g.last})")
        if not g.start <= time < g.end:
            self._fail(index, "access.window", f"a read at {time}, outside the grant's "
                                               f"[{g.start}, {g.end})")
        cats, derived = body.get("categories"), body.get("derived")
        if type(cats) is not list or type(derived) is not list \
                or not all(type(c) is str for c in cats) \
                or not all(type(d) is str for d in derived):
            self._fail(index, "entry", "data.accessed: categories and derived must be lists "
                                       "of text")
        elif g.writes and not g.categories:
            self._fail(index, "access.scope", f"a read under grant {grant_id}, a grant only "
                                              "to write")
        elif not (g.categories.issuperset(cats) and g.derived.issuperset(derived)):
            outside = sorted(set(cats) - g.categories) + sorted(set(derived) - g.derived)
            self._fail(index, "access.scope", f"the read covers {', '.join(outside)[:200]}, "
                                              f"which grant {grant_id} does not")
        if g.limit is not None and g.reads >= g.limit:
            self._fail(index, "access.limit", f"read {g.reads + 1} of a grant allowing "
                                              f"{g.limit}")

    def _time_ms(self, time: str) -> int:
        if self._last_ms[0] != time:
            try:
                self._last_ms = (time, time_ms(time))
            except ValueError:
                return 0  # not an entry time: the chain check has reported it
        return self._last_ms[1]

    # -- state ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to go on checking later entries, as compact JSON values."""
        return {
            "version": 2,
            "rp_id": self.rp_id,
            "origins": list(self.origins),
            "subjects": {s: {c: [p.public_key, p.index, p.sign_count]
                             for c, p in found.passkeys.items()}
                         for s, found in self._subjects.items()},
            "erased": dict(self._erased),
            "services": {s: [sorted(r.purposes), sorted(r.categories), sorted(r.derived),
                             r.max_days, sorted(r.issues), sorted(r.held)]
                         for s, r in self._services.items()},
            "suspended": sorted(self._suspended),
            "grants": {gid: g.to_json() for gid, g in self._grants.items()},
            "records": self._records.to_json(),
            "erasing": list(self._erasing) if self._erasing else None,
            "delegations": self._delegations.to_json(),
            "stats": {k: getattr(self.stats, k) for k in StoryStats.__slots__},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, rp_id: str, origins: Sequence[str],
                   check_signature: SignatureCheck = check_signature_now) -> StoryChecker:
        """A checker that goes on from `to_state()`'s output. KeyError, TypeError or
        ValueError if `state` is not such output."""
        if state.get("version") != 2:
            raise ValueError(f"unknown story state version {state.get('version')!r}")
        c = cls(rp_id=rp_id, origins=origins, check_signature=check_signature)
        for s, keys in state["subjects"].items():
            found = c._subjects[s] = _Subject()
            for cred, p in keys.items():
                found.passkeys[cred] = _Passkey(p[0], int(p[1]), int(p[2]))
                c._credentials[cred] = s
        c._erased = {s: int(i) for s, i in state["erased"].items()}
        # Filled in place: the record checks hold these very dicts. A state saved before
        # issuers has no `issues` (5th item), before sources no `held` (6th), before
        # record stories no `records`.
        c._services.update({s: _Service(frozenset(r[0]), frozenset(r[1]), frozenset(r[2]),
                                        r[3], frozenset(r[4]) if len(r) > 4 else frozenset(),
                                        frozenset(r[5]) if len(r) > 5 else frozenset())
                            for s, r in state["services"].items()})
        c._suspended.update(state["suspended"])
        c._grants.update({gid: _Grant.from_json(v) for gid, v in state["grants"].items()})
        c._records.load(state.get("records", {}))
        c._delegations.load(state.get("delegations", {}))  # none before ARCHITECTURE §9
        for s, r in c._services.items():
            c._records.hold(s, r.held)
        for gid, g in c._grants.items():
            if g.subject in c._subjects:
                c._subjects[g.subject].grants.append(gid)
        erasing = state["erasing"]
        c._erasing = (erasing[0], erasing[1]) if erasing else None
        c.stats = StoryStats(**state["stats"])  # a count saved before it was kept: 0
        return c

