"""What an auditor pays for the whole story: `vault-audit verify` of a 1M-entry export.

Setup (not measured): a realistic export, generated without a database but entry by
entry as the ledger writes it (`ledger.entry.encode_entry`, leaf hashes, the compact
range for the root) and signed: 40 services; citizens enrolling with a passkey each
(ES256, one in ten EdDSA, from the software authenticator: a key per citizen);
requests whose terms hash as the vault's, approved with real assertions over that
hash; about 90% reads, each within its grant's window, scope and limits (one-time
grants exhausted, some with a minimum interval); pauses, resumes and revocations the
citizen signs over the action challenge; short grants that expire; a few denials and
erasures. About 2% each of enrolments, passkeys, requests and approvals.

Acting for others (ARCHITECTURE §9): a share of citizens (`DELEGATING`, one in ten)
have someone act for them (an attorney, or a helper for a few hours), set up by a
`delegation.granted` signed by both with their passkeys as the vault writes it; about
half of such a citizen's approvals, pauses, resumes and revocations are then their
delegate's, signed with the delegate's passkey and carrying `actor` and `delegation_id`.
Some delegations are revoked, helpers' expire (`delegation.expired`), and an erasure
ends the erased person's delegations on either side (by "citizen_erased").

The export is sealed (ledger v2, ARCHITECTURE §10) as the vault writes it: each body
split by `ledger.sealing`, committed to under a fresh salt, its opening written to a
second NDJSON file beside the export (`vault ledger export --openings`).

Measured (goal >= 50,000 entries/s including every opening and every signature check,
peak RSS < 200 MB): a child process runs `clients.auditor.verify.verify_export` over the
file and its openings, with the signed checkpoint and pinned key, and reports its own
time and peak RSS (VmHWM, as in `bench.verify_child`, whose docstring says why not
ru_maxrss; both are printed). The verification must come out clean: any failure is an
error, not a number. Then the public ledger alone (goal >= 150,000 entries/s): the same
child without the openings (chain, tree, checkpoint, personal data in what entries show).
Floor: the same child running only the log checks (`ledger.audit.audit_log`).

What the delegation checks cost (goal: at most 10% of the full audit's rate, issue 14
§7): a second export from the same generator without delegations, verified in turn with
the first (runs interleaved, each first in turn). The cost is how much lower the rate
with delegations is than without, each rate taken from CPU time: entries over the busier
of the two processes' CPU seconds (the verifier, its log worker), which is the rate two
free cores give. On a machine shared with other work, wall-clock rates swing by half
from run to run, CPU time far less; the wall-clock rates are in the notes.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bench.report import Goal, Result, best, spread
from bench.verify_child import peak_rss_kib
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import encode_entry, encode_sealed_entry
from ledger.hasher import leaf_hash
from ledger.note import Signer
from ledger.sealing import SALT_SIZE, seal
from ledger.tree import CompactRange

# The generator's vault and wallet imports come with it (`_world`): the child that
# verifies imports the auditor only, so its memory is the auditor's.
if TYPE_CHECKING:
    from wallet.passkeys.software import SoftAuthenticator

__all__ = ["Export", "bench_full_audit", "generate_export"]

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "https://vault.example"
RP_ID = "vault.example"
_MB = 1024 / 1e6
_CATEGORIES = ["address.home", "benefits.universal_credit", "contact.email",
               "identity.date_of_birth", "identity.name"]
_DERIVED = ["age_over_18", "age_over_65", "lives_in_area"]
_EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Export:
    path: Path
    openings: Path | None  # of the sealed entries (None: a v1 export)
    size: int
    note: str
    verifier_key: str
    counts: dict[str, int]
    seconds: float  # to generate


@dataclass(slots=True)
class _Grant:
    id: str
    service: str
    subject: str
    device: SoftAuthenticator
    credential: str
    terms_hash: bytes
    categories: list[str]
    derived: list[str]
    end_ms: int
    limit: int | None
    interval_ms: int | None
    citizen: _Citizen | None = None
    state: str = "approved"
    reads: int = 0
    last_read_ms: int = -(10**15)
    last: int = 0  # index of its latest grant.* entry


@dataclass(slots=True)
class _Delegation:
    id: str
    principal: _Citizen
    delegate: _Citizen
    actions: frozenset[str]
    until_ms: int
    live: bool = True


@dataclass(slots=True)
class _Citizen:
    subject: str
    device: SoftAuthenticator
    credential: str
    grants: list[str] = field(default_factory=list)
    #: Delegations on either side (live or not): acting for them, or them for others.
    delegations: list[_Delegation] = field(default_factory=list)

    def delegate_for(self, action: str, now_ms: int) -> _Delegation | None:
        """A live delegation letting someone take `action` for this citizen now."""
        for d in self.delegations:
            if d.live and d.principal is self and action in d.actions and now_ms < d.until_ms:
                return d
        return None


#: The share of new citizens who get someone to act for them.
DELEGATING = 0.1


class _Pool:
    """Grant ids to pick from at random, added and removed in O(1)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._at: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: str) -> None:
        self._at[item] = len(self.items)
        self.items.append(item)

    def remove(self, item: str) -> None:
        i = self._at.pop(item)
        last = self.items.pop()
        if last != item:
            self.items[i] = last
            self._at[last] = i


class _Writer:
    """Entries encoded and chained as the ledger does, streamed to the export (sealed,
    their openings to `openings`, when it is given)."""

    def __init__(self, out: IO[bytes], openings: IO[bytes] | None = None) -> None:
        self.out, self.tree, self.prev = out, CompactRange(), b""
        self.openings = openings
        self.now_ms = 0
        self.counts: dict[str, int] = {}
        self._time_ms, self._time = -1, ""

    @property
    def size(self) -> int:
        return self.tree.size

    def time(self) -> str:
        """`ledger.entry.format_time` of the current moment (cached: a step shares it)."""
        if self.now_ms != self._time_ms:
            moment = _NAIVE_EPOCH + timedelta(milliseconds=self.now_ms)
            self._time = moment.isoformat(timespec="milliseconds") + "Z"
            self._time_ms = self.now_ms
        return self._time

    def append(self, kind: str, body: dict[str, Any]) -> int:
        seq = self.tree.size
        if self.openings is not None:
            sealed = seal(seq, kind, body, os.urandom(SALT_SIZE))
            data = encode_sealed_entry(seq, self.time(), kind, self.prev, sealed.public,
                                       sealed.sealed)
            self.openings.write(sealed.opening)
            self.openings.write(b"\n")
        else:
            data = encode_entry(seq, self.time(), kind, self.prev, body)
        self.prev = leaf_hash(data)
        self.tree.push(self.prev)
        self.out.write(data)
        self.out.write(b"\n")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return seq


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _World:
    """The population and its grants, driven by one seeded random generator."""

    def __init__(self, w: _Writer, rng: random.Random, *, delegating: float = DELEGATING
                 ) -> None:
        from vault.domain.grants import Access, GrantTerms
        from vault.domain.relationships import DelegationTerms, Kind, parse_actions
        from vault.domain.terms import format_utc
        from vault.services.approvals import action_challenge
        from wallet.passkeys.software import SoftAuthenticator
        self._access, self._terms, self._format_utc = Access, GrantTerms, format_utc
        self._challenge, self._device = action_challenge, SoftAuthenticator
        self._dterms, self._kind, self._parse_actions = DelegationTerms, Kind, parse_actions
        self.w, self.rng, self.delegating = w, rng, delegating
        # Delegations draw from a generator of their own: with or without them, the
        # citizens, grants and reads are the same, so the two exports differ only by the
        # delegations (what the cost compares).
        self.drng = random.Random(rng.getrandbits(64))
        self.citizens: list[_Citizen] = []
        self.delegations: dict[str, _Delegation] = {}
        self.grants: dict[str, _Grant] = {}
        self.readable = _Pool()  # approved grants, for picking reads
        self.paused = _Pool()
        self.expiring: list[tuple[int, str]] = []  # (end in ms, grant id), a heap
        self.n = 0
        self.services = [f"svc_{i:04d}" for i in range(40)]
        for s in self.services:
            w.append("service.registered", {
                "service_id": s, "name": f"Council service {s[-2:]}",
                "purposes": ["eligibility_assessment", "service_provision"],
                "categories": _CATEGORIES, "derived": _DERIVED, "max_days": 90})

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.rng.getrandbits(96):024x}{self.n}"

    def enrol(self) -> None:
        alg = "EdDSA" if self.rng.random() < 0.1 else "ES256"
        device = self._device(origin=ORIGIN, alg=alg)  # type: ignore[arg-type]
        answer = device.create({"rp": {"id": RP_ID}, "user": {"id": _b64url(b"u")},
                                "challenge": _b64url(b"c")})
        cred = device.credentials[answer["id"]]
        subject = self._id("sub")
        self.w.append("citizen.enrolled", {"subject": subject})
        self.w.append("passkey.registered", {
            "subject": subject, "credential_id": cred.id,
            "public_key": _b64url(cred.public_key), "alg": -8 if alg == "EdDSA" else -7})
        self.citizens.append(_Citizen(subject, device, cred.id))
        if len(self.citizens) > 20 and self.drng.random() < self.delegating:
            self.delegate(self.citizens[-1])
        if self.delegations and self.drng.random() < 0.02:  # someone ends one
            d = self.delegations[self.drng.choice(list(self.delegations))]
            self.end_delegation(d, "principal")

    def _moment(self, ms: int) -> datetime:
        return _EPOCH + timedelta(milliseconds=ms)

    def delegate(self, principal: _Citizen) -> None:
        """Someone (a citizen enrolled before) acts for `principal`: both sign the
        terms, as the vault writes `delegation.granted`."""
        delegate = self.citizens[-self.drng.randint(2, min(200, len(self.citizens)))]
        helper = self.drng.random() < 0.15
        now_s = self.w.now_ms - self.w.now_ms % 1000
        until_ms = now_s + (self.drng.randint(1, 20) * 3_600_000 if helper
                            else 60 * 86_400_000)
        actions = frozenset({"view", "approve"} if helper else
                            {"view", "approve", "revoke", "edit"})
        terms = self._dterms(
            delegation_id=f"dlg_{self.drng.getrandbits(96):024x}", principal=principal.subject,
            delegate=delegate.subject, kind=self._kind.HELPER if helper else self._kind.ATTORNEY,
            actions=self._parse_actions(actions), until=self._moment(until_ms))
        h = terms.terms_hash()
        self.w.append("delegation.granted", {
            "delegation_id": terms.delegation_id, "subject": principal.subject,
            "delegate": delegate.subject, "relationship": terms.kind.value,
            "actions": sorted(actions), "until": self._format_utc(terms.until),
            "issuer": None, "terms_hash": base64.b64encode(h).decode(),
            "principal_assertion": principal.device.proof(
                challenge=h, credential_id=principal.credential).to_json(),
            "delegate_assertion": delegate.device.proof(
                challenge=h, credential_id=delegate.credential).to_json()})
        d = _Delegation(terms.delegation_id, principal, delegate, actions, until_ms)
        self.delegations[d.id] = d
        principal.delegations.append(d)
        delegate.delegations.append(d)
        heapq.heappush(self.expiring, (until_ms, d.id))

    def end_delegation(self, d: _Delegation, by: str) -> None:
        body: dict[str, Any] = {"delegation_id": d.id, "subject": d.principal.subject,
                                "by": by}
        if by == "principal":
            body["actor"] = d.principal.subject
        self.w.append("delegation.revoked", body)
        d.live = False
        del self.delegations[d.id]

    def _acting(self, subject: _Citizen, action: str) -> tuple[_Citizen, dict[str, Any]]:
        """Who signs `action` for `subject`: now and then their delegate (with the
        entry's `actor` and `delegation_id`), else themself."""
        d = subject.delegate_for(action, self.w.now_ms) if subject.delegations else None
        if d is None or self.drng.random() < 0.5:
            return subject, {}
        return d.delegate, {"actor": d.delegate.subject, "delegation_id": d.id}

    def request(self) -> None:
        c = self.citizens[-self.rng.randint(1, min(200, len(self.citizens)))]
        grant_id, service = self._id("gr"), self.rng.choice(self.services)
        r = self.rng.random()
        a = self._access
        access = (a("one_time") if r < 0.1 else a("periodic", max_reads=5) if r < 0.2 else
                  a("periodic", min_interval="PT1M") if r < 0.4 else
                  a("periodic", max_reads=1000))
        days = 2 if self.rng.random() < 0.1 else 90
        start = _EPOCH + timedelta(milliseconds=self.w.now_ms - self.w.now_ms % 1000)
        terms = self._terms(
            grant_id=grant_id, service_id=service,
            purpose=self.rng.choice(["eligibility_assessment", "service_provision"]),
            categories=tuple(sorted(self.rng.sample(_CATEGORIES, self.rng.randint(1, 3)))),
            derived=tuple(sorted(self.rng.sample(_DERIVED, self.rng.randint(0, 1)))),
            not_before=self._format_utc(start),
            expires_at=self._format_utc(start + timedelta(days=days)),
            access=access, data_life="P30D", justification="To decide an application.")
        h = terms.terms_hash()
        last = self.w.append("grant.requested", {
            "grant_id": grant_id, "service_id": service, "subject": c.subject,
            "terms": terms.to_json(), "terms_hash": base64.b64encode(h).decode()})
        base = {"grant_id": grant_id, "service_id": service, "subject": c.subject}
        c.grants.append(grant_id)
        if self.rng.random() < 0.03:
            self.w.append("grant.denied", base)
            return
        signer, acting = self._acting(c, "approve")
        assertion = signer.device.proof(challenge=h, credential_id=signer.credential).to_json()
        last = self.w.append("grant.approved", {**base, "terms_hash": base64.b64encode(
            h).decode(), "assertion": assertion, **acting})
        end_ms = (terms.ends - _EPOCH) // timedelta(milliseconds=1)
        interval = access.interval
        g = _Grant(grant_id, service, c.subject, c.device, c.credential, h,
                   list(terms.categories), list(terms.derived), end_ms,
                   1 if access.mode == "one_time" else access.max_reads,
                   None if interval is None else interval // timedelta(milliseconds=1),
                   last=last, citizen=c)
        self.grants[grant_id] = g
        self.readable.add(grant_id)
        heapq.heappush(self.expiring, (end_ms, grant_id))

    def _body(self, g: _Grant) -> dict[str, Any]:
        return {"grant_id": g.id, "service_id": g.service, "subject": g.subject}

    def _signed(self, g: _Grant, kind: str, action: str) -> None:
        challenge = self._challenge(grant_id=g.id, action=action, terms_hash=g.terms_hash,
                                    after=g.last)
        device, credential = g.device, g.credential
        acting: dict[str, Any] = {}
        if g.citizen is not None:  # ARCHITECTURE §9: the delegated action it needs
            signer, acting = self._acting(g.citizen, "approve" if action == "resume"
                                          else "revoke")
            device, credential = signer.device, signer.credential
        g.last = self.w.append(kind, {
            **self._body(g), "by": "citizen", "challenge": base64.b64encode(challenge).decode(),
            "assertion": device.proof(challenge=challenge, credential_id=credential
                                      ).to_json(), **acting})

    def _end(self, g: _Grant, kind: str, state: str, **extra: Any) -> None:
        if g.state == "approved":
            self.readable.remove(g.id)
        elif g.state == "paused":
            self.paused.remove(g.id)
        g.state = state
        if kind == "grant.revoked" and not extra:
            self._signed(g, kind, "revoke")
        else:
            g.last = self.w.append(kind, {**self._body(g), **extra})

    def transition(self) -> None:
        r = self.rng.random()
        if r < 0.45 and self.readable:
            g = self.grants[self.rng.choice(self.readable.items)]
            self.readable.remove(g.id)
            self.paused.add(g.id)
            g.state = "paused"
            self._signed(g, "grant.paused", "pause")
        elif r < 0.85 and self.paused:
            g = self.grants[self.rng.choice(self.paused.items)]
            self.paused.remove(g.id)
            g.state = "approved"
            self.readable.add(g.id)
            self._signed(g, "grant.resumed", "resume")
        elif r < 0.99 and self.readable:
            g = self.grants[self.rng.choice(self.readable.items)]
            self._end(g, "grant.revoked", "revoked")
        elif len(self.citizens) > 10:
            self.erase(self.citizens.pop(self.rng.randrange(len(self.citizens) - 10)))

    def erase(self, c: _Citizen) -> None:
        for gid in c.grants:
            g = self.grants.get(gid)
            if g is not None and g.state in ("approved", "paused"):
                self._end(g, "grant.revoked", "revoked", reason="citizen_erased")
        for d in c.delegations:  # on either side
            if d.live:
                self.end_delegation(d, "citizen_erased")
        self.w.append("citizen.erased", {"subject": c.subject})

    def read(self) -> None:
        for _ in range(8):
            g = self.grants[self.rng.choice(self.readable.items)]
            if g.interval_ms is None or self.w.now_ms - g.last_read_ms >= g.interval_ms:
                break
        else:
            return
        g.reads += 1
        g.last_read_ms = self.w.now_ms
        cats = g.categories if len(g.categories) < 2 or self.rng.random() < 0.7 else \
            g.categories[:1]
        self.w.append("data.accessed", {
            **self._body(g), "categories": cats, "derived": g.derived,
            "commitment": _b64url(self.rng.randbytes(32))})
        if g.limit is not None and g.reads >= g.limit:
            self._end(g, "grant.exhausted", "exhausted")

    def expire_due(self) -> None:
        while self.expiring and self.expiring[0][0] <= self.w.now_ms:
            _, gid = heapq.heappop(self.expiring)
            d = self.delegations.pop(gid, None)
            if d is not None:
                d.live = False
                self.w.append("delegation.expired", {"delegation_id": d.id,
                                                     "subject": d.principal.subject})
                continue
            g = self.grants.get(gid)
            if g is None:
                continue  # a delegation that ended before its until
            if g.state in ("approved", "paused"):
                self._end(g, "grant.expired", "expired")


def generate_export(path: Path, size: int, *, seed: int = 11, sealed: bool = True,
                    delegating: float = DELEGATING) -> Export:
    """Write a consistent, signed export of `size` entries (a few more: the last step
    may write two), sealed with their openings beside it unless `sealed` is False; a
    share `delegating` of citizens get someone acting for them (none with 0)."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    signer = Signer.generate("bench.example/ledger")
    openings = path.with_suffix(".openings.ndjson") if sealed else None
    with path.open("wb", buffering=1 << 20) as out, \
            (openings or Path(os.devnull)).open("wb", buffering=1 << 20) as opened:
        w = _Writer(out, opened if openings is not None else None)
        world = _World(w, rng, delegating=delegating)
        for _ in range(20):
            world.enrol()
        while w.size < size:
            w.now_ms += rng.randint(0, 5000)
            world.expire_due()
            r = rng.random()
            if r < 0.02:
                world.enrol()
            elif r < 0.04 or not world.readable:
                world.request()
            elif r < 0.055:
                world.transition()
            else:
                world.read()
        root = w.tree.root()
    note = sign_checkpoint(Checkpoint(signer.name, w.size, root), signer)
    return Export(path, openings, w.size, note, str(signer.verifier()),
                  dict(sorted(w.counts.items())), time.perf_counter() - t0)


# -- the child that verifies ---------------------------------------------------------------


def _child(args: argparse.Namespace) -> dict[str, Any]:
    from clients.auditor.verify import verify_export
    from ledger.audit import audit_log, read_ndjson
    from ledger.checkpoint import open_checkpoint
    from ledger.note import Verifier
    base = peak_rss_kib()
    key = Verifier.parse(args.vkey)
    note = Path(args.note).read_text()
    t0, cpu0 = time.perf_counter(), time.process_time()
    if args.log_only:
        with Path(args.file).open("rb") as f:
            n = audit_log(read_ndjson(f), checkpoint=open_checkpoint(
                note, expected_verifier=key)).head.size
        failures: list[str] = []
        stats: dict[str, Any] = {}
        worker = None
    else:
        report = verify_export(Path(args.file), note=note, expected_key=key, rp_id=RP_ID,
                               origins=[ORIGIN],
                               openings=Path(args.openings) if args.openings else None)
        n = report.size
        failures = [str(f) for f in report.failures[:5]]
        doc = report.to_json()
        stats = {**doc["stats"], "stories": doc["stories"], "opened": doc["opened"]}
        if args.openings and doc["opened"] != n:
            failures.append(f"only {doc['opened']} of {n} entries opened")
        worker = report.worker_rss_kib
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    worker_cpu = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])  # utime + stime
    return {"entries": n, "seconds": seconds, "cpu_seconds": cpu,
            "worker_cpu_seconds": worker_cpu, "peak_rss_kib": peak_rss_kib(),
            "base_rss_kib": base,
            "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "worker_rss_kib": worker, "failures": failures, "stats": stats}


def _run_child(export: Export, note_file: Path, *, log_only: bool = False,
               public: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.audit_full", "--child", str(export.path),
           "--note", str(note_file), "--vkey", export.verifier_key]
    if export.openings is not None and not public:
        cmd += ["--openings", str(export.openings)]
    out = subprocess.run([*cmd, *(["--log-only"] if log_only else [])], cwd=REPO, check=True,
                         capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    if result["entries"] != export.size:
        raise RuntimeError(f"the child read {result['entries']} entries of {export.size}")
    if result["failures"]:
        raise RuntimeError(f"the generated export does not verify: {result['failures']}")
    return result


def _cpu_rate(run: dict[str, Any]) -> float:
    """Entries per second of CPU of the busier process (the rate two free cores give)."""
    busiest = max(run["cpu_seconds"], run["worker_cpu_seconds"])
    return float(run["entries"] / busiest) if busiest > 0 else 0.0


def bench_full_audit(workdir: Path, *, size: int, repeats: int) -> list[Result]:
    from bench.workload import progress
    from clients.auditor.verify import PARALLEL_BYTES
    progress(f"setup: generating a {size:,}-entry export with assertions (not measured)")
    export = generate_export(workdir / "audit-full.ndjson", size)
    progress(f"generated {export.size:,} entries ({export.path.stat().st_size / 1e6:.0f} MB) "
             f"in {export.seconds:.1f} s (setup): {export.counts}")
    note_file = workdir / "audit-full.checkpoint"
    note_file.write_text(export.note)
    progress(f"setup: the same {size:,} entries without delegations (not measured)")
    plain = generate_export(workdir / "audit-plain.ndjson", size, delegating=0.0)
    plain_note = workdir / "audit-plain.checkpoint"
    plain_note.write_text(plain.note)
    # Interleaved, so that a machine busy with something else slows both alike, and in
    # turn first (a first run after the setup is measured slower, whichever it is).
    runs: list[dict[str, Any]] = []
    plain_runs: list[dict[str, Any]] = []
    pair = [(export, note_file, runs), (plain, plain_note, plain_runs)]
    for n in range(repeats):
        for which, note, results in pair if n % 2 == 0 else pair[::-1]:
            results.append(_run_child(which, note))
    publics = [_run_child(export, note_file, public=True) for _ in range(repeats)]
    floors = [_run_child(export, note_file, log_only=True) for _ in range(repeats)]
    rates = [r["entries"] / r["seconds"] for r in runs]
    plain_rates = [r["entries"] / r["seconds"] for r in plain_runs]
    with_rate = best(rates, higher_is_better=True)
    without_rate = best(plain_rates, higher_is_better=True)
    with_cpu = best([_cpu_rate(r) for r in runs], higher_is_better=True)
    without_cpu = best([_cpu_rate(r) for r in plain_runs], higher_is_better=True)
    public_rates = [r["entries"] / r["seconds"] for r in publics]
    floor_rates = [r["entries"] / r["seconds"] for r in floors]
    # Both processes at their peaks at once: a bound on what the verification holds.
    rss = [(r["peak_rss_kib"] + (r["worker_rss_kib"] or 0)) * _MB for r in runs]
    worker = max(r["worker_rss_kib"] or 0 for r in runs) * _MB
    stat = f"{repeats} child run{'s' if repeats > 1 else ''}"
    s = runs[0]["stats"]
    signed = s["approvals_verified"]
    fastest = max(runs, key=lambda r: r["entries"] / r["seconds"])
    cpu = (f"fastest run: {fastest['seconds']:.1f} s, CPU {fastest['cpu_seconds']:.1f} s in "
           f"the verifier and {fastest['worker_cpu_seconds']:.1f} s in its log worker, "
           "which run side by side (two free cores make the rate)")
    opened = (f"{export.openings.stat().st_size / 1e6:.0f} MB of openings"
              if export.openings is not None else "no openings (v1)")
    public_stats = publics[0]["stats"]
    delegated = export.counts.get("delegation.granted", 0)
    public_rss = max(r["peak_rss_kib"] + (r["worker_rss_kib"] or 0) for r in publics) * _MB
    return [
        Result(
            name=f"full audit (openings, stories, {signed:,} signatures) of "
                 f"{export.size:,} sealed entries",
            unit="/s", measured=best(rates, higher_is_better=True),
            floor=best(floor_rates, higher_is_better=True), floor_what="log checks only",
            goal=Goal(">=", 50_000), stat=f"best of {stat}", spread=spread(rates),
            notes=[f"{s['grants']:,} grants, {signed:,} passkey assertions verified, "
                   f"{s['accesses_checked']:,} reads checked; export "
                   f"{export.path.stat().st_size / 1e6:.0f} MB and {opened}, generated in "
                   f"{export.seconds:.0f} s", cpu]),
        Result(
            name=f"public-only audit (no openings: chain, tree, checkpoint, personal data "
                 f"in the public parts) of {export.size:,} sealed entries",
            unit="/s", measured=best(public_rates, higher_is_better=True),
            floor=best(floor_rates, higher_is_better=True), floor_what="log checks only",
            goal=Goal(">=", 150_000), stat=f"best of {stat}", spread=spread(public_rates),
            notes=[f"stories: {public_stats.get('stories', '?')}; peak RSS {public_rss:.0f} "
                   "MB (the verifier plus its log worker)"]),
        Result(
            name=f"delegation checks' cost: full audit rate of {export.size:,} entries "
                 f"with {delegated:,} delegations and {s['delegated_actions']:,} actions by "
                 "delegates, below the same generator's without",
            unit="%", measured=100 * (1 - with_cpu / without_cpu), floor=None,
            floor_what="", goal=Goal("<=", 10),
            stat=f"best CPU-time rate of {stat} each, interleaved",
            spread=spread([_cpu_rate(r) for r in runs]),
            notes=[f"rates from CPU time: with delegations {with_cpu:,.0f}/s, without "
                   f"{without_cpu:,.0f}/s (ratio {with_cpu / without_cpu:.3f}); wall clock: "
                   f"with {with_rate:,.0f}/s, without {without_rate:,.0f}/s (ratio "
                   f"{with_rate / without_rate:.3f}); {s['delegations']:,} delegations "
                   "checked (terms and two passkey signatures each), "
                   f"{s['delegated_actions']:,} delegates' actions checked against them"]),
        Result(
            name="full audit peak RSS (child process)", unit="MB", measured=max(rss),
            floor=max(r["peak_rss_kib"] * _MB for r in floors), floor_what="log checks only",
            goal=Goal("<=", 200), stat=f"worst of {stat}",
            notes=[f"the verifier plus its log worker ({worker:.1f} MB; none below "
                   f"{PARALLEL_BYTES / 1e6:.0f} MB of export); the verifier's RSS after "
                   f"imports: {min(r['base_rss_kib'] for r in runs) * _MB:.1f} MB"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_full")
    parser.add_argument("--child", dest="file", help="verify this export and print JSON")
    parser.add_argument("--note")
    parser.add_argument("--vkey")
    parser.add_argument("--log-only", action="store_true")
    parser.add_argument("--openings", help="with --child: the export's openings")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.file:
        print(json.dumps(_child(args)))
        return
    import tempfile

    from bench.report import print_table
    with tempfile.TemporaryDirectory(prefix="audit-full-") as tmp:
        results = bench_full_audit(Path(tmp), size=args.size, repeats=args.repeats)
    print_table(results, [], title="Full audit")


if __name__ == "__main__":
    main()
