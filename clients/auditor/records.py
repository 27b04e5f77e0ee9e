"""The stories of records, checked from the ledger alone (ARCHITECTURE §8).

Issuers write records under the citizen's write grant, withdraw them under it, and the
citizen may dispute them; reads say which released values an issuer wrote (`issuers`)
and which were fetched at source (`sources`). `RecordChecks` is fed those entries by
`StoryChecker` (which has checked the subject is live) and keeps, per subject and
category, its newest version and, once an issuer has written it, which versions each
issuer wrote (runs of consecutive versions, so a series of thousands of batches is one
run) and whose records are withdrawn or disputed.

Rules (`Failure.rule`), in the words the report uses:

==============  ======================================================================
write.grant     a write or withdrawal under a grant never requested, of another
                service or subject than the entry's, or whose `source` is not its
                `issuer`
write.state     ... while the grant is not approved (requested, paused, revoked,
                expired, exhausted, ...)
write.window    ... at a time outside the grant's [not_before, expires_at)
write.scope     ... of a category the grant does not allow writing (a grant to read
                allows none)
write.issuer    ... by a service not registered to issue the category, or suspended
record.version  an issuer's write whose version is not above every earlier version of
                that subject and category (still held: a `record.deleted` ends the
                citizen's own)
withdraw.record a withdrawal of no current record of that issuer (the newest version
                of the category, written by that issuer, not withdrawn already), or
                naming another version than that one
dispute.record  a dispute of a version that issuer (a registered service) did not write
                for that subject, or not its newest, or disputed already
access.issuer   a read naming the issuer of a category it does not release, or of one
                whose record that issuer did not write, or withdrew since
access.source   a read naming the source of a category it neither releases nor could
                have fetched for a derived answer (it released none), or of one the
                service is not registered to hold at source; a read releasing a
                category held at source without naming its source
record.held     a value written of a category held at source (the vault stores none)
==============  ======================================================================

Entries without the issue-12 fields (a `record.written` with no `issuer`: the citizen's
own, or the operator's `vault citizen write --source`) are checked as before: only
their subject. They are kept all the same, so that a later issuer's version must rise
above theirs, and a record written with another `source` than "citizen" is that
source's issued record (it has no JWS, but a read may name its issuer).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from clients.auditor._body import Malformed, number, text, text_map

__all__ = ["CITIZEN", "GrantView", "RecordChecks", "RegistrationView"]

#: The `source` of a record the citizen wrote; any other source is an issuer.
CITIZEN = "citizen"


class GrantView(Protocol):
    """What the write rules read of a grant, as `StoryChecker` keeps it."""

    @property
    def service(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def start(self) -> str: ...
    @property
    def end(self) -> str: ...
    @property
    def writes(self) -> frozenset[str]: ...


class RegistrationView(Protocol):
    """What the rules read of a service's registration."""

    @property
    def issues(self) -> frozenset[str]: ...


Fail = Callable[[int, str, str], None]


class _Kept:
    """One subject's category that an issuer wrote: the newest version and its writer;
    the issuers' runs [first, last, issuer] of consecutive versions, in order (the
    versions in no run are the citizen's); the issuers whose newest record here is
    withdrawn, or disputed. (A category only the citizen wrote is kept as its newest
    version alone: most of a ledger's records, kept small.)"""

    __slots__ = ("disputed", "last", "newest", "runs", "withdrawn")

    def __init__(self, last: int = 0, newest: str = CITIZEN,
                 runs: list[list[Any]] | None = None, withdrawn: Collection[str] = (),
                 disputed: Collection[str] = ()) -> None:
        self.last, self.newest = last, newest
        self.runs: list[list[Any]] = runs if runs is not None else []
        self.withdrawn: set[str] = set(withdrawn)
        self.disputed: set[str] = set(disputed)

    def add(self, version: int, writer: str) -> None:
        if version <= self.last:
            return  # out of order: reported (for an issuer), and not kept
        if writer != CITIZEN:
            run = self.runs[-1] if self.runs else None
            if run is not None and run[2] == writer and run[1] + 1 == version:
                run[1] = version
            else:
                self.runs.append([version, version, writer])
            self.withdrawn.discard(writer)
            self.disputed.discard(writer)
        self.last, self.newest = version, writer

    def writer(self, version: int) -> str | None:
        if version == self.last:
            return self.newest
        for first, last, who in self.runs:
            if first <= version <= last:
                return str(who)
        return CITIZEN if 1 <= version < self.last else None

    def latest_by(self, issuer: str) -> int | None:
        return next((int(r[1]) for r in reversed(self.runs) if r[2] == issuer), None)

    def current(self, issuer: str) -> bool:
        """Whether `issuer` (not the citizen) wrote a record here and has not withdrawn
        it since."""
        return issuer not in self.withdrawn and any(r[2] == issuer for r in self.runs)

    def to_json(self) -> int | list[Any]:
        if not self.runs:
            return self.last
        return [self.last, self.newest, self.runs, sorted(self.withdrawn),
                sorted(self.disputed)]

    @classmethod
    def from_json(cls, v: Any) -> _Kept:
        if type(v) is int:
            return cls(v)
        return cls(v[0], v[1], [list(r) for r in v[2]], v[3], v[4])


class RecordChecks:
    """The record rules. `grants`, `services` and `suspended` are the story checker's
    own (read, never changed here); `fail` reports a broken rule."""

    def __init__(self, *, grants: Mapping[str, GrantView],
                 services: Mapping[str, RegistrationView], suspended: Collection[str],
                 fail: Fail) -> None:
        self._grants, self._services, self._suspended = grants, services, suspended
        self._fail = fail
        # subject -> category -> what is kept of it (its newest version alone, while
        # only the citizen wrote it)
        self._kept: dict[str, dict[str, _Kept | int]] = {}
        #: Category -> the service holding it at source (one each; the vault stores none).
        self.held: dict[str, str] = {}

    def hold(self, service: str, categories: Collection[str]) -> list[str]:
        """A registration holding `categories` at source; those another service holds
        already (kept as they were)."""
        taken = sorted(c for c in categories if self.held.get(c, service) != service)
        self.held.update((c, service) for c in categories if c not in taken)
        return taken

    # -- entries -------------------------------------------------------------------------

    def written(self, index: int, time: str, body: Mapping[str, Any]) -> None:
        subject, category = text(body, "subject"), text(body, "category")
        version, source = number(body, "version", least=1), text(body, "source")
        if "items" in body:  # a series batch (the citizen's own, or an issuer's)
            number(body, "items", least=1)
        if category in self.held:
            self._fail(index, "record.held", f"a value of {category} written by {source}, "
                                             f"held at source by {self.held[category]}: "
                                             "the vault stores none")
        if "issuer" not in body:
            if "grant_id" in body:
                raise Malformed("grant_id comes only with an issuer")
            self._add(subject, category, version, source)
            return
        issuer, grant_id = text(body, "issuer"), text(body, "grant_id")
        if source != issuer:
            self._fail(index, "write.grant", f"written by issuer {issuer} as source {source}")
        self._under_grant(index, time, "a write", grant_id=grant_id, issuer=issuer,
                          subject=subject, category=category)
        last = self._add(subject, category, version, issuer)
        if version <= last:
            self._fail(index, "record.version", (
                f"{issuer} writes version {version} of {category}, not above the "
                f"version {last} written before"))

    def withdrawn(self, index: int, time: str, body: Mapping[str, Any]) -> None:
        subject, category = text(body, "subject"), text(body, "category")
        issuer, grant_id = text(body, "issuer"), text(body, "grant_id")
        version = number(body, "version", least=1)
        self._under_grant(index, time, "a withdrawal", grant_id=grant_id, issuer=issuer,
                          subject=subject, category=category)
        # The vault withdraws the newest version, if that issuer wrote it and has not
        # withdrawn it (a newer value of the citizen's own is not the issuer's to end).
        kept = self._get(subject, category)
        newest = kept.last if kept is not None else 0
        writer = kept.writer(newest) if kept is not None else None
        if kept is None or writer != issuer or not kept.current(issuer):
            why = ("has withdrawn it already" if writer == issuer else
                   f"its newest version ({newest}) is {writer}'s" if writer else
                   "there is none")
            self._fail(index, "withdraw.record", (
                f"{issuer} withdraws its record of {category} for subject {subject}, but "
                f"{why}"))
        elif version != newest:
            self._fail(index, "withdraw.record", (
                f"{issuer} withdraws version {version} of {category}, but its record is "
                f"version {newest}"))
        else:
            kept.withdrawn.add(issuer)

    def disputed(self, index: int, body: Mapping[str, Any]) -> None:
        subject, category = text(body, "subject"), text(body, "category")
        issuer, version = text(body, "issuer"), number(body, "version", least=1)
        kept = self._get(subject, category)
        writer = kept.writer(version) if kept is not None else None
        what = f"a dispute of version {version} of {category} from {issuer}"
        if kept is None or writer != issuer or issuer == CITIZEN:
            by = f"written by {writer}" if writer else "never written (or deleted since)"
            self._fail(index, "dispute.record", f"{what}, but that version was {by}")
        elif issuer not in self._services:
            self._fail(index, "dispute.record", f"{what}, a service never registered")
        elif kept.latest_by(issuer) != version:
            # The vault takes disputes of the issuer's newest version only, each once.
            self._fail(index, "dispute.record", f"{what}, which has written version "
                                                f"{kept.latest_by(issuer)} since")
        elif issuer in kept.disputed:
            self._fail(index, "dispute.record", f"{what}, disputed already")
        else:
            kept.disputed.add(issuer)

    def deleted(self, body: Mapping[str, Any]) -> None:
        """`record.deleted`: the citizen's own versions of the category are gone. The
        issuers' stay (theirs to withdraw), and the newest of them is the newest now;
        with none, versions start again at 1."""
        cats = self._kept.get(text(body, "subject"), {})
        category = text(body, "category")
        kept = cats.get(category)
        if isinstance(kept, _Kept) and kept.runs:
            kept.last, kept.newest = kept.runs[-1][1], kept.runs[-1][2]
        else:
            cats.pop(category, None)

    def erased(self, subject: str) -> None:
        self._kept.pop(subject, None)

    def accessed(self, index: int, body: Mapping[str, Any], released: Sequence[str],
                 derived: Sequence[str] = ()) -> bool:
        """Check the `issuers` and `sources` of a read that released the categories
        `released` and the derived answers `derived` (and that what is held at source
        came from there); whether they break no rule.

        A source may be named for a category the read does not release when the read
        answers derived questions: the vault fetches their inputs (`resident_in:` reads
        the home address) and releases only the answer. Which answer rests on which
        category is the vault's catalog, not the ledger's, so the auditor accepts such a
        source for any read that released a derived answer, and for no other."""
        fine = True
        subject = body.get("subject")
        if "issuers" in body:
            for category, issuer in text_map(body["issuers"], "issuers").items():
                found = self._get(subject, category) if type(subject) is str else None
                if category not in released:
                    why = "which it does not release"
                elif found is None or not found.current(issuer):
                    why = ("which that issuer withdrew" if found is not None
                           and found.latest_by(issuer) is not None else
                           "which that issuer never wrote for this subject")
                else:
                    continue
                fine = False
                self._fail(index, "access.issuer", f"the read names {issuer} as the issuer "
                                                   f"of {category}, {why}")
        sources = text_map(body["sources"], "sources") if "sources" in body else {}
        for category, source in sources.items():
            if category not in released and not derived:
                why = "which it does not release, and the read answers no derived question"
            elif self.held.get(category) != source:
                why = "which that service is not registered to hold at source"
            else:
                continue
            fine = False
            self._fail(index, "access.source", f"the read names {source} as the source "
                                               f"of {category}, {why}")
        for category in released:
            holder = self.held.get(category) if type(category) is str else None
            if holder is not None and category not in sources:
                fine = False
                self._fail(index, "access.source", (
                    f"the read releases {category}, held at source by {holder}, but names "
                    "no source: the vault stores no value of it"))
        return fine

    # -- the write grant -----------------------------------------------------------------

    def _under_grant(self, index: int, time: str, what: str, *, grant_id: str, issuer: str,
                     subject: str, category: str) -> None:
        g = self._grants.get(grant_id)
        if g is None:
            self._fail(index, "write.grant", f"{what} under grant {grant_id}, never requested")
            return
        if g.service != issuer or g.subject != subject:
            self._fail(index, "write.grant", f"{what} by {issuer} names another service or "
                                             f"subject than grant {grant_id}'s")
            return
        if g.state != "approved":
            self._fail(index, "write.state", f"{what} while grant {grant_id} is {g.state}")
        if not g.start <= time < g.end:
            self._fail(index, "write.window", f"{what} at {time}, outside the grant's "
                                              f"[{g.start}, {g.end})")
        if category not in g.writes:
            self._fail(index, "write.scope", f"{what} of {category}, which grant {grant_id} "
                                             "does not allow writing")
        reg = self._services.get(issuer)
        if reg is None or category not in reg.issues:
            self._fail(index, "write.issuer", f"{what} of {category} by {issuer}, not "
                                              "registered to issue it")
        if issuer in self._suspended:
            self._fail(index, "write.issuer", f"{what} by {issuer}, suspended")

    def _get(self, subject: str, category: str) -> _Kept | None:
        kept = self._kept.get(subject, {}).get(category)
        return _Kept(kept) if isinstance(kept, int) else kept

    def _add(self, subject: str, category: str, version: int, writer: str) -> int:
        """Keep a version written; the newest version before it."""
        cats = self._kept.setdefault(subject, {})
        kept = cats.get(category, 0)
        if isinstance(kept, int):
            if writer == CITIZEN:
                cats[category] = max(kept, version)
                return kept
            kept = cats[category] = _Kept(kept)
        last = kept.last
        kept.add(version, writer)
        return last

    # -- state ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {s: {c: k if isinstance(k, int) else k.to_json() for c, k in cats.items()}
                for s, cats in self._kept.items()}

    def load(self, saved: Mapping[str, Any]) -> None:
        """Go on from `to_json()`'s output (a state saved before records: {})."""
        self._kept = {s: {c: v if type(v) is int else _Kept.from_json(v)
                          for c, v in cats.items()}
                      for s, cats in saved.items()}
