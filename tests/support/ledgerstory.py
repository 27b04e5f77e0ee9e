"""Small ledgers written by hand, entry by entry as the vault writes them, for the
auditor's story checks (tests/clients/auditor): a citizen with a software passkey,
services, grant terms, approvals and actions the citizen signs, reads, and an issuer's
writes, withdrawals and the citizen's disputes (ARCHITECTURE §8)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clients.auditor.grants import action_challenge
from clients.auditor.story import StoryChecker
from vault.domain.grants import Access, GrantTerms
from vault.domain.terms import format_utc
from wallet.passkeys.software import SoftAuthenticator, b64url

__all__ = ["AA", "ORIGIN", "RP_ID", "START", "Story", "at", "issuer_story", "terms",
           "write_terms"]

ORIGIN = "http://localhost:8000"
RP_ID = "localhost"
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
#: The category the issuer of these ledgers issues.
AA = "benefits.attendance_allowance"


def at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def terms(grant_id: str = "gr_1", service_id: str = "svc_1", *, days: int = 30,
          access: Access | None = None, categories: tuple[str, ...] = ("address.home",),
          start: datetime = START) -> GrantTerms:
    return GrantTerms(grant_id=grant_id, service_id=service_id, purpose="eligibility_assessment",
                      categories=categories, derived=("age_over_65",),
                      not_before=format_utc(start),
                      expires_at=format_utc(start + timedelta(days=days)),
                      access=access or Access("periodic", max_reads=3), data_life="P30D",
                      justification="To check you can have a Blue Badge.")


@dataclass
class Story:
    """A small ledger written by hand: entries as the vault writes them."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = START
    device: SoftAuthenticator = field(
        default_factory=lambda: SoftAuthenticator(origin=ORIGIN))
    terms: dict[str, GrantTerms] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)  # grant -> its latest grant.* entry
    #: (subject, category) -> its newest version held (the next is one more), and the
    #: newest a service issued (what a deletion of the citizen's own leaves)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    issued: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, kind: str, body: dict[str, Any], *, later: timedelta = timedelta(0)) -> int:
        self.now += later
        self.entries.append({"v": 1, "seq": len(self.entries), "time": at(self.now),
                             "kind": kind, "prev": "", "body": body})
        if kind.startswith("grant."):
            self.last[body["grant_id"]] = len(self.entries) - 1
        elif kind == "record.written" and type(body.get("version")) is int:
            key = (body["subject"], body["category"])
            self.versions[key] = max(self.versions.get(key, 0), body["version"])
            if body.get("source") != "citizen":
                self.issued[key] = self.versions[key]
        elif kind == "record.deleted":
            key = (body["subject"], body["category"])
            self.versions[key] = self.issued.get(key, 0)
        return len(self.entries) - 1

    def citizen(self, subject: str = "sub_1") -> str:
        self.add("citizen.enrolled", {"subject": subject})
        answer = self.device.create({"rp": {"id": RP_ID}, "user": {"id": b64url(b"u")},
                                     "challenge": b64url(b"c")})
        cred = self.device.credentials[answer["id"]]
        self.add("passkey.registered", {"subject": subject, "credential_id": cred.id,
                                        "public_key": b64url(cred.public_key), "alg": -7})
        return cred.id

    def service(self, service_id: str = "svc_1", max_days: int = 90) -> None:
        self.add("service.registered", {
            "service_id": service_id, "name": "Blue Badge team",
            "purposes": ["eligibility_assessment"], "categories": ["address.home"],
            "derived": ["age_over_65"], "max_days": max_days})

    def request(self, t: GrantTerms, subject: str = "sub_1") -> int:
        self.terms[t.grant_id] = t
        return self.add("grant.requested", {
            "grant_id": t.grant_id, "service_id": t.service_id, "subject": subject,
            "terms": t.to_json(), "terms_hash": base64.b64encode(t.terms_hash()).decode()})

    def grant_body(self, grant_id: str, subject: str = "sub_1") -> dict[str, Any]:
        return {"grant_id": grant_id, "service_id": self.terms[grant_id].service_id,
                "subject": subject}

    def approve(self, grant_id: str = "gr_1", **knobs: Any) -> int:
        h = self.terms[grant_id].terms_hash()
        return self.add("grant.approved", {
            **self.grant_body(grant_id), "terms_hash": base64.b64encode(h).decode(),
            "assertion": self.device.proof(challenge=h, **knobs).to_json()})

    def action(self, kind: str, grant_id: str = "gr_1", **knobs: Any) -> int:
        action = {"grant.paused": "pause", "grant.resumed": "resume",
                  "grant.revoked": "revoke"}[kind]
        challenge = action_challenge(grant_id=grant_id, action=action,
                                     terms_hash=self.terms[grant_id].terms_hash(),
                                     after=self.last[grant_id])
        return self.add(kind, {**self.grant_body(grant_id), "by": "citizen",
                               "challenge": base64.b64encode(challenge).decode(),
                               "assertion": self.device.proof(challenge=challenge,
                                                              **knobs).to_json()})

    def read(self, grant: str = "gr_1", *, later: timedelta = timedelta(minutes=1),
             **changes: Any) -> int:
        """A read under `grant`, with the body's fields in `changes` changed."""
        body = {**self.grant_body(grant), "categories": ["address.home"],
                "derived": ["age_over_65"], "commitment": "Zm9vYmFyYmF6cXV4"}
        return self.add("data.accessed", {**body, **changes}, later=later)

    def write(self, category: str = AA, *, grant: str = "gr_w", issuer: str = "svc_aa",
              subject: str = "sub_1", later: timedelta = timedelta(minutes=1),
              **changes: Any) -> int:
        """`record.written` by an issuer under a write grant, as the vault writes it: the
        next version; the body's fields in `changes` changed."""
        version = self.versions.get((subject, category), 0) + 1
        return self.add("record.written", {
            "subject": subject, "record_id": f"rec_{len(self.entries)}",
            "category": category, "version": version, "source": issuer, "issuer": issuer,
            "grant_id": grant, **changes}, later=later)

    def own_write(self, category: str = AA, *, source: str = "citizen",
                  subject: str = "sub_1") -> int:
        """`record.written` as before issuers: the citizen's (or the operator's
        `--source SERVICE`)."""
        version = self.versions.get((subject, category), 0) + 1
        return self.add("record.written", {
            "subject": subject, "record_id": f"rec_{len(self.entries)}",
            "category": category, "version": version, "source": source},
            later=timedelta(minutes=1))

    def withdraw(self, category: str = AA, *, grant: str = "gr_w", issuer: str = "svc_aa",
                 subject: str = "sub_1", **changes: Any) -> int:
        """`record.withdrawn` of the newest version."""
        return self.add("record.withdrawn", {
            "subject": subject, "category": category, "issuer": issuer, "grant_id": grant,
            "version": max(1, self.versions.get((subject, category), 0)), **changes},
            later=timedelta(minutes=1))

    def dispute(self, version: int, category: str = AA, *, issuer: str = "svc_aa",
                subject: str = "sub_1") -> int:
        return self.add("record.disputed", {"subject": subject, "category": category,
                                            "issuer": issuer, "version": version},
                        later=timedelta(minutes=1))

    def approved(self, t: GrantTerms | None = None) -> Story:
        self.service()
        self.citizen()
        self.request(t or terms())
        self.approve(t.grant_id if t else "gr_1")
        return self

    def check(self) -> StoryChecker:
        checker = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
        for i, e in enumerate(self.entries):
            checker.feed(i, e)
        checker.finish()
        return checker

    def failures(self) -> list[tuple[int | None, str]]:
        return [(f.index, f.rule) for f in self.check().failures]


def write_terms(grant_id: str = "gr_w", *, categories: tuple[str, ...] = (AA,),
                actions: tuple[str, ...] = ("write",)) -> GrantTerms:
    return GrantTerms(grant_id=grant_id, service_id="svc_aa", purpose="service_provision",
                      categories=categories, derived=(), not_before=format_utc(START),
                      expires_at=format_utc(START + timedelta(days=30)),
                      access=Access("one_time"), data_life="P0D",
                      justification="To record your award.", actions=actions)


def issuer_story(**registration: Any) -> Story:
    s = Story()
    s.add("service.registered", {
        "service_id": "svc_aa", "name": "Attendance Allowance Unit",
        "purposes": ["service_provision"], "categories": [], "derived": [], "max_days": 365,
        "issues": [AA], **registration})
    s.citizen()
    return s
