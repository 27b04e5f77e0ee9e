"""The auditor's full verification of a ledger, in one streaming pass (ARCHITECTURE §7).

Each entry is checked three ways as it streams past, in O(log n) memory for the tree
plus what the stories need (a few hundred bytes per grant and passkey):

- the log (`ledger.audit.LogAuditor`, the ledger's pure verification code): `seq`,
  `prev` link, canonical bytes, and the root against the signed checkpoint;
- the grant stories (`StoryChecker`): passkey assertions, terms, transitions, reads;
- personal data (`PiiScanner`).

Sealed entries (v2, ARCHITECTURE §10) show only their public part. With their openings
(`Opener`: the vault's `GET /ledger/openings` with the auditor key, or the file of
`vault ledger export --openings`) each is checked against its commitment and the stories
run on the full body; without, the log and the public parts are checked, and the report
says the stories could not be. Entries from before v2 are whole: a v1 entry after a
sealed one is a failure (rule `version`).

A broken chain stops the log check (nothing after it is covered by the checkpoint any
more) but not the others, so the report lists everything found.

On a long ledger the log checks and the passkey signatures run in a worker process
(`_logworker`) beside the rest, on a second core: each half costs about as much as the
other, so two cores nearly halve the time. Both ways give the same report.

Sources: the vault's HTTP API (`verify_url`), or an NDJSON export (`verify_export`:
the export of `vault ledger export`, one entry a line). An export comes with the
signed checkpoint to hold it against if one is given; without, it is checked for its
chain, its stories and personal data, and the report says no checkpoint covered it.
"""

from __future__ import annotations

import time as _time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from clients.auditor._logworker import LogChecks, LogWorker, read_lines
from clients.auditor._plural import counted
from clients.auditor.assertion import AssertionInvalid
from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.openings import Opener
from clients.auditor.pii import PiiScanner
from clients.auditor.state import AuditState, save_state
from clients.auditor.story import (
    Failure,
    SignatureCheck,
    StoryChecker,
    StoryStats,
    check_signature_now,
)
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import LedgerError
from ledger.note import Verifier

__all__ = [
    "SEALED_SEEN",
    "STORIES_UNCHECKED",
    "EntryChecks",
    "Progress",
    "VerifyReport",
    "relying_party_of",
    "render_text",
    "verify_entries",
    "verify_export",
    "verify_url",
]

#: In a saved story state: the stories of sealed entries were not checked (no openings),
#: so the state knows nothing of them, and `watch` must not check stories on from it.
STORIES_UNCHECKED = "stories_unchecked"
#: In a saved story state: the ledger has sealed entries, so no whole (v1) one may follow.
SEALED_SEEN = "sealed_seen"

#: Called with (entries done, entries expected or None).
Progress = Callable[[int, int | None], None]
PROGRESS_EVERY = 10_000
#: From about this many entries (or bytes of export), the log checks get a process of
#: their own: starting it costs a few tenths of a second; on two cores, it nearly halves
#: the time of the rest.
PARALLEL_ENTRIES = 50_000
PARALLEL_BYTES = 20_000_000


def relying_party_of(url: str) -> tuple[str, list[str]]:
    """The passkeys' RP ID and origin for a vault served at `url` (WebAuthn L3 §5.1.4:
    the RP ID is the host; the origin is scheme, host and port)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise AuditorError(f"{url!r} is not an http(s) URL")
    default = {"http": 80, "https": 443}[parts.scheme]
    shown = f"[{host}]" if ":" in host else host
    netloc = shown if parts.port in (None, default) else f"{shown}:{parts.port}"
    return host, [f"{parts.scheme}://{netloc}"]


_READ_KEYS = frozenset({"grant_id", "service_id", "subject", "categories", "derived",
                        "commitment"})
#: What a read may add (ARCHITECTURE §8): {category: service} of what an issuer wrote or
#: a source held; in a read found in order, each names a service that wrote or holds it.
_FLOW_KEYS = frozenset({"issuers", "sources"})


class EntryChecks:
    """The story and personal-data checks of entries, and counts by kind (no chain
    check: `verify_entries` adds it; `watch` continues a chain of its own).

    `opener` opens sealed entries for the stories; without one, their stories are not
    checked (`unopened` counts them) and only their public parts are scanned."""

    def __init__(self, story: StoryChecker, scanner: PiiScanner | None = None, *,
                 opener: Opener | None = None, sealed_seen: bool = False) -> None:
        self.story = story
        self.scanner = scanner or PiiScanner()
        self.opener = opener
        self.counts: defaultdict[str, int] = defaultdict(int)
        self.pii: list[Failure] = []
        self.versions: list[Failure] = []
        self.sealed_seen = sealed_seen  # a sealed entry was read: no v1 entry may follow
        self.unopened = 0

    def feed(self, index: int, data: bytes) -> None:
        """Check entry `index` from its exact bytes (unparseable ones are the chain
        check's to report)."""
        try:
            entry = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if type(entry) is not dict:
            return
        kind: Any = entry.get("kind")
        time: Any = entry.get("time")
        body: Any = entry.get("body")
        self.counts[kind if type(kind) is str else "?"] += 1
        if body is None and "sealed" in entry:
            self.sealed_seen = True
            body = self._open(index, kind, time, entry)
            if body is None:
                return
        elif self.sealed_seen and not self.versions:  # the first one says it all
            self.versions.append(Failure(index, "version", (
                "a whole (v1) entry after sealed (v2) ones: a ledger never goes back to "
                "publishing what v2 seals")))
        story = self.story
        story.feed_parts(index, kind, time, body)
        if type(time) is not str:
            time = ""
        # A read the story found in order names only values of its grant's request
        # (scanned there), and issuers and sources named in entries before (scanned
        # there): only its commitment is new. Nine entries in ten.
        if kind == "data.accessed" and story.read_in_order \
                and (body.keys() == _READ_KEYS or body.keys() - _FLOW_KEYS == _READ_KEYS) \
                and not self.scanner.suspect(body["commitment"]):
            return
        for finding in self.scanner.scan(body, time=time):
            self.pii.append(Failure(index, "personal_data", str(finding)))

    def _open(self, index: int, kind: Any, time: Any, entry: dict[str, Any]
              ) -> dict[str, Any] | None:
        """A sealed entry's full body, or None: then it is not opened, and only its
        public part, which anyone may read, is scanned for personal data."""
        public = entry.get("public")
        if type(public) is not dict or type(kind) is not str:
            return None  # not an entry: the chain check names it
        if self.opener is None:
            self.unopened += 1
        else:  # counted by the opener, and named by it if it cannot be opened
            body = self.opener.open(index, kind, public, entry.get("sealed"))
            if body is not None:
                return body
        for finding in self.scanner.scan(public, time=time if type(time) is str else "",
                                         root="public"):
            self.pii.append(Failure(index, "personal_data", str(finding)))
        return None

    def finish(self, size: int) -> None:
        """After the last entry, at index `size - 1`."""
        self.story.finish()
        if self.opener is not None:
            self.opener.finish(size)

    @property
    def failures(self) -> list[Failure]:
        opened = self.opener.failures if self.opener is not None else []
        # At one index, what the opening says first: the story failures may follow from it.
        return self.versions + opened + self.story.failures + self.pii


@dataclass(slots=True)
class VerifyReport:
    """What was checked and every failure found; `ok` only without failures."""

    size: int = 0  # entries read
    checkpoint: Checkpoint | None = None
    note: str | None = None
    key: Verifier | None = None
    key_pinned: bool = False
    root: bytes | None = None  # of every entry read, if the chain held
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    stats: StoryStats = field(default_factory=StoryStats)
    seconds: float = 0.0
    state_saved: Path | None = None
    #: Peak resident memory (KiB) of the log worker process, if one ran.
    worker_rss_kib: int | None = None
    #: Sealed (v2) entries read, and of them those opened and so story-checked.
    sealed: int = 0
    opened: int = 0
    openings_given: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def stories(self) -> str:
        """Whether the stories were checked: not without openings of sealed entries."""
        if self.sealed and not self.openings_given:
            return "not checked: no openings"
        return "checked"

    @property
    def uncovered(self) -> int:
        """Entries read beyond the checkpoint (all of them without one)."""
        return self.size - (self.checkpoint.size if self.checkpoint else 0)

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        first = self.failures[0] if self.failures else None
        return {
            "ok": self.ok,
            "size": self.size,
            "origin": cp.origin if cp else None,
            "root": self.root.hex() if self.root is not None else None,
            "checkpoint": ({"origin": cp.origin, "size": cp.size, "root": cp.root.hex()}
                           if cp else None),
            "uncovered": self.uncovered,
            "key": str(self.key) if self.key else None,
            "key_pinned": self.key_pinned,
            "failures": [{"index": f.index, "rule": f.rule, "detail": f.detail}
                         for f in self.failures],
            "warnings": [{"index": f.index, "rule": f.rule, "detail": f.detail}
                         for f in self.warnings],
            "counts": dict(sorted(self.counts.items())),
            "stats": {k: getattr(self.stats, k) for k in StoryStats.__slots__},
            "stories": self.stories,
            "sealed": self.sealed,
            "opened": self.opened,
            "seconds": round(self.seconds, 3),
            "state": str(self.state_saved) if self.state_saved else None,
            # The first failure alone, as earlier versions reported it.
            "index": first.index if first else None,
            "reason": first.detail if first else None,
        }


class _SharedSignatures:
    """Passkey signatures, one in `here` checked in this process and the rest by the
    log worker: the log checks alone cost a little more than the story checks, so this
    evens out the two processes' work (measured: a third here). Opening sealed entries
    costs this process more than the log checks of them cost the worker: then every
    signature goes to the worker (`here` 0)."""

    def __init__(self, worker: SignatureCheck, here: int = 3) -> None:
        self._worker, self._here, self._n = worker, here, 0

    def __call__(self, index: int, public_key: str, signed: bytes, signature: bytes
                 ) -> AssertionInvalid | None:
        self._n += 1
        check = check_signature_now if self._here and self._n % self._here == 0 \
            else self._worker
        return check(index, public_key, signed, signature)


def _ordered(failures: Iterable[Failure]) -> list[Failure]:
    return sorted(failures, key=lambda f: -1 if f.index is None else f.index)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The checks' state right after the checkpoint's last entry (for `watch`)."""

    story: dict[str, Any]
    border: tuple[bytes, ...]


def verify_entries(
    entries: Iterable[bytes],
    *,
    checkpoint: Checkpoint | None,
    rp_id: str,
    origins: Sequence[str],
    total: int | None = None,
    on_progress: Progress | None = None,
    keep_state: bool = False,
    parallel: bool = False,
    openings: Iterable[bytes] | None = None,
) -> tuple[VerifyReport, _Snapshot | None]:
    """Check a whole ledger, entry 0 first. `checkpoint` must be signature-checked
    already (`open_checkpoint`). With `keep_state`, also return the checks' state at the
    checkpoint's size (for `watch`), when everything verified. With `parallel`, the log
    checks run in a worker process (`_logworker`), beside the others. `openings` (NDJSON
    lines in ledger order) open the sealed entries for the stories."""
    t0 = _time.perf_counter()
    report = VerifyReport(checkpoint=checkpoint)
    log: LogChecks | LogWorker = (LogWorker if parallel else LogChecks)(
        checkpoint, keep_border=keep_state)
    story = (StoryChecker(rp_id=rp_id, origins=origins) if isinstance(log, LogChecks) else
             StoryChecker(rp_id=rp_id, origins=origins,
                          check_signature=_SharedSignatures(
                              log.check_signature, here=3 if openings is None else 0)))
    checks = EntryChecks(story, opener=Opener(openings) if openings is not None else None)
    cp_size = checkpoint.size if checkpoint is not None and keep_state else -1
    story_then: dict[str, Any] | None = None
    n = 0
    feed_log, feed_checks = log.feed, checks.feed
    try:
        for data in entries:
            if n == cp_size:
                story_then = checks.story.to_state()
            feed_log(data)
            feed_checks(n, data)
            n += 1
            if on_progress is not None and n % PROGRESS_EVERY == 0:
                on_progress(n, total)
        result = log.finish()
    except BaseException:
        if isinstance(log, LogWorker):
            log.kill()
        raise
    checks.finish(n)
    if n == cp_size:
        story_then = checks.story.to_state()
    if on_progress is not None:
        on_progress(n, total)
    failure = result.failure
    found = [Failure(failure[0], "chain", failure[1])] if failure is not None else []
    for i, reason, message in result.signatures:  # checked by the worker
        rule = story.signature_rule(i)
        found.append(Failure(i, rule, f"{reason}: {message}"))
        if rule == "approval":
            story.stats.approvals_verified -= 1
    report.root = result.root
    report.worker_rss_kib = result.peak_rss_kib
    report.size = n
    report.failures = _ordered(found + checks.failures)
    report.warnings = _ordered(checks.story.warnings)
    report.counts = dict(checks.counts)
    report.stats = checks.story.stats
    report.openings_given = checks.opener is not None
    report.sealed = checks.unopened + (checks.opener.sealed if checks.opener else 0)
    report.opened = checks.opener.opened if checks.opener else 0
    report.seconds = _time.perf_counter() - t0
    snapshot = None
    if story_then is not None and checks.opener is None and checks.unopened:
        story_then[STORIES_UNCHECKED] = True
    if story_then is not None and checks.sealed_seen:
        story_then[SEALED_SEEN] = True
    if report.ok and story_then is not None and result.border is not None:
        snapshot = _Snapshot(story_then, result.border)
    return report, snapshot


def _finish(report: VerifyReport, snapshot: _Snapshot | None, note: str | None,
            state_dir: Path | None) -> VerifyReport:
    """Keep the note, and save the state for `watch` when everything verified."""
    report.note = note
    cp = report.checkpoint
    if state_dir is not None and snapshot is not None and note is not None and cp is not None:
        save_state(state_dir, AuditState(note, cp.size, snapshot.story, snapshot.border))
        report.state_saved = state_dir
    return report


def verify_url(
    client: LedgerClient,
    *,
    expected_key: Verifier | None = None,
    rp_id: str,
    origins: Sequence[str],
    on_progress: Progress | None = None,
    state_dir: Path | None = None,
    parallel: bool | None = None,
    openings: Path | None = None,
) -> VerifyReport:
    """Fetch the signed checkpoint and every entry it covers, and check them all.

    Without `expected_key` the vault's own key is used (trust on first use): the report
    says so, because only a pinned key protects against a lying operator. Sealed entries
    are opened with the openings in the file `openings`, else with those the vault serves
    when the client holds the auditor key, else not (the report says their stories could
    not be checked). AuditorError if the vault cannot be read.
    """
    key = expected_key or Verifier.parse(client.key())
    note = client.checkpoint()
    try:
        cp = open_checkpoint(note, expected_verifier=key)
    except LedgerError as exc:
        return VerifyReport(key=key, key_pinned=expected_key is not None,
                            failures=[Failure(None, "checkpoint", str(exc))])
    with ExitStack() as stack:
        opened: Iterable[bytes] | None = None
        if openings is not None:
            opened = read_lines(stack.enter_context(openings.open("rb")).read)
        elif client.authorized:
            opened = client.iter_openings(0, cp.size)
        report, snapshot = verify_entries(
            client.iter_entries(0, cp.size), checkpoint=cp, rp_id=rp_id, origins=origins,
            total=cp.size, on_progress=on_progress, keep_state=state_dir is not None,
            parallel=cp.size >= PARALLEL_ENTRIES if parallel is None else parallel,
            openings=opened)
    report.key, report.key_pinned = key, expected_key is not None
    return _finish(report, snapshot, note, state_dir)


def verify_export(
    path: Path,
    *,
    note: str | None = None,
    expected_key: Verifier | None = None,
    key_pinned: bool = True,
    rp_id: str,
    origins: Sequence[str],
    on_progress: Progress | None = None,
    state_dir: Path | None = None,
    parallel: bool | None = None,
    openings: Path | None = None,
) -> VerifyReport:
    """Check an NDJSON export, against the signed checkpoint `note` if given (then
    `expected_key` is needed; `key_pinned` False says it came from the vault itself),
    its sealed entries opened with the NDJSON file `openings` if given. OSError if a
    file cannot be read."""
    cp = None
    if note is not None:
        if expected_key is None:
            raise AuditorError("a checkpoint is only worth checking against a key: give one")
        try:
            cp = open_checkpoint(note, expected_verifier=expected_key)
        except LedgerError as exc:
            return VerifyReport(key=expected_key, key_pinned=key_pinned,
                                failures=[Failure(None, "checkpoint", str(exc))])
    if parallel is None:
        parallel = path.stat().st_size >= PARALLEL_BYTES
    with ExitStack() as stack:
        f = stack.enter_context(path.open("rb"))
        opened = (read_lines(stack.enter_context(openings.open("rb")).read)
                  if openings is not None else None)
        report, snapshot = verify_entries(read_lines(f.read), checkpoint=cp, rp_id=rp_id,
                                          origins=origins, on_progress=on_progress,
                                          keep_state=state_dir is not None, parallel=parallel,
                                          openings=opened)
    report.key, report.key_pinned = expected_key, key_pinned and expected_key is not None
    return _finish(report, snapshot, note, state_dir)


def render_text(report: VerifyReport) -> list[tuple[str, str]]:
    """The report for people: (style, plain text) lines, a summary then every failure."""
    cp, s = report.checkpoint, report.stats
    lines: list[tuple[str, str]] = []
    entries = counted(report.size, "entry")
    if report.ok and report.stories != "checked":
        where = (f"against the signed checkpoint of {cp.origin} at size {cp.size:,} "
                 "(signature, seq, prev links, leaf hashes, root)" if cp is not None else
                 "(seq, prev links, leaf hashes)")
        lines.append(("green", f"✓ {entries} verified {where}; no personal data in what "
                               "they show"))
    elif report.ok and cp is not None:
        lines.append(("green", f"✓ {entries} of {cp.origin} verified against "
                               f"the signed checkpoint at size {cp.size:,} (signature, seq, "
                               "prev links, leaf hashes, root), every grant's story, and no "
                               "personal data"))
    elif report.ok:
        lines.append(("green", f"✓ {entries} verified (seq, prev links, leaf "
                               "hashes, every grant's story, no personal data)"))
    else:
        lines.append(("red", f"✗ does not verify: {counted(len(report.failures), 'failure')} "
                             f"in {entries} read"))
    signed = counted(s.approvals_verified, "approval and citizen action",
                     "approvals and citizen actions")
    lines.append(("", f"  {entries}: {counted(s.grants, 'grant')}, {signed} verified, "
                      f"{counted(s.accesses_checked, 'access', 'accesses')} checked, "
                      f"{counted(s.subjects, 'subject')}, {counted(s.passkeys, 'passkey')}, "
                      f"{counted(s.services, 'service')}"))
    if s.records_checked:  # issuers' records (ARCHITECTURE §8): not in older ledgers
        lines.append(("", "  " + counted(s.records_checked, "issuer's write, withdrawal or "
                                         "dispute", "issuers' writes, withdrawals and "
                                         "disputes") + " checked"))
    if s.delegations or s.delegated_actions:  # acting for others (ARCHITECTURE §9)
        lines.append(("", f"  {counted(s.delegations, 'delegation')} checked (terms and "
                          "both signatures), "
                          f"{counted(s.delegated_actions, 'action')} by a delegate checked "
                          "against a delegation live then"))
    if report.counts:
        lines.append(("", "  by kind: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(report.counts.items()))))
    if report.stories != "checked":
        lines.append(("yellow", f"! stories not checked: {counted(report.sealed, 'entry')} "
                                f"{'is' if report.sealed == 1 else 'are'} sealed, and no "
                                "openings were given (the auditor's --api-key, or --openings "
                                "FILE): no grant's story, passkey signature or read could be "
                                "checked"))
    elif report.sealed:
        lines.append(("", f"  {counted(report.opened, 'sealed entry', 'sealed entries')} of "
                          f"{report.sealed:,} opened and checked against "
                          f"{'its' if report.sealed == 1 else 'their'} commitments"))
    if cp is None and report.size:
        lines.append(("yellow", "! no signed checkpoint covered these entries: they agree "
                                "with each other, but nothing shows they are the vault's "
                                "ledger (give --checkpoint and --key, or the vault's URL)"))
    elif cp is not None and report.uncovered > 0:
        lines.append(("", f"  {counted(report.uncovered, 'entry')} after the checkpoint "
                          f"{'was' if report.uncovered == 1 else 'were'} checked too"))
    if report.key is not None and not report.key_pinned:
        lines.append(("yellow", f"! the key came from the vault itself; pin it with --key "
                                f"{report.key}"))
    lines += [("yellow", f"warning: {w}") for w in report.warnings]
    lines += [("red", str(f)) for f in report.failures]
    if report.state_saved is not None:
        lines.append(("", f"  state saved in {report.state_saved} (for vault-audit watch)"))
    return lines
