"""A ledger written by the real app through a whole journey, and a forger of exports.

`build_journey(tmp_path)` runs the app (the wallet over HTTP, a software authenticator as
the citizen's device) through everything the auditor checks: sign-ups with passkeys, a
service asking through the vault's services and another through OAuth, approvals,
reads, a pause, a resume and a revocation by the citizen, a denied and a cancelled
request, an expired and an exhausted grant, a passkey added and removed, a suspended
service, and a citizen erased with a live grant and a pending request. It returns the
NDJSON export, a signed checkpoint and the verifier key.

`Forge` rewrites such an export the way a lying operator with the signing key would:
edit, insert or drop entries, then re-chain every seq and prev link and sign a fresh
checkpoint, so that only the story rules can catch the change. It writes sealed (v2)
entries with their openings unless told to write whole (v1) ones: a forger of a v2
ledger re-seals what it edits, so the stories must catch it through the openings.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.oauthclient import Service, approve
from support.vaultworld import JWK, World, ask, blue_badge
from support.webwallet import ORIGIN, Browser, open_wallet

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import encode_entry, encode_sealed_entry
from ledger.hasher import leaf_hash
from ledger.note import Signer, Verifier
from ledger.sealing import seal
from ledger.sqlstore import SqlLedger
from ledger.tree import CompactRange
from vault.domain.grants import Access
from vault.services import registry
from vault.services.access import read_under_grant
from vault.services.checkpoints import publish_checkpoint
from vault.services.grants import cancel_grant
from vault.services.sweeper import sweep
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["RP_ID", "Forge", "Journey", "build_journey", "shared_journey"]

RP_ID = "localhost"


@dataclass
class Journey:
    lines: list[bytes]  # the export: each entry's exact bytes
    note: str  # a checkpoint of all of them, signed by the vault
    verifier: Verifier
    grants: dict[str, str] = field(default_factory=dict)  # role -> grant id
    service_id: str = ""
    devices: dict[str, SoftAuthenticator] = field(default_factory=dict)
    data_dir: Path | None = None  # the vault's (settings.data_dir), to serve it again
    #: The openings of the sealed entries, in ledger order (none for a v1 ledger).
    openings: list[bytes] = field(default_factory=list)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The entries, a sealed one with its full body under "body" (as in v1)."""
        opened = {o["seq"]: o["private"] for o in map(orjson.loads, self.openings)}
        found = []
        for d in self.lines:
            e = orjson.loads(d)
            if "sealed" in e:
                e["body"] = {**e.pop("public"), **opened[e["seq"]]}
            found.append(e)
        return found

    def index(self, kind: str, grant: str | None = None, n: int = 0) -> int:
        """The index of the n-th entry of `kind` (about the grant of role `grant`)."""
        gid = self.grants[grant] if grant else None
        found = [i for i, e in enumerate(self.entries)
                 if e["kind"] == kind and (gid is None or e["body"].get("grant_id") == gid)]
        return found[n]

    def write(self, path: Path, lines: list[bytes] | None = None) -> Path:
        path.write_bytes(b"".join(d + b"\n" for d in (self.lines if lines is None else lines)))
        return path

    def write_openings(self, path: Path, openings: list[bytes] | None = None) -> Path:
        path.write_bytes(b"".join(
            d + b"\n" for d in (self.openings if openings is None else openings)))
        return path


def _ok(r: Any) -> None:
    assert r.status_code in (200, 303), (r.status_code, r.text[:300])


def _signed(b: Browser, grant_id: str, action: str) -> None:
    _ok(b.passkey_post(f"/wallet/grants/{grant_id}/{action}"))


def _next_second() -> None:
    time.sleep(1.02 - time.time() % 1)


_built: list[Journey] = []


def shared_journey(factory: pytest.TempPathFactory) -> Journey:
    """One journey per test run (it takes seconds): each caller gets its own copy."""
    if not _built:
        _built.append(build_journey(factory.mktemp("journey")))
    j = _built[0]
    return Journey(list(j.lines), j.note, j.verifier, dict(j.grants), j.service_id,
                   dict(j.devices), j.data_dir, list(j.openings))


def build_journey(tmp_path: Path) -> Journey:
    grants: dict[str, str] = {}
    with open_wallet(tmp_path, sweep_interval=3600, log_level="WARNING") as web:
        ctx = web.ctx
        alice = web.sign_up()
        assert alice.citizen_id is not None
        svc = blue_badge(ctx)
        w = World(svc, alice.citizen_id, "")

        # Asked through the vault's services; approved, read, paused, resumed, revoked.
        g = grants["main"] = ask(ctx, w).id
        _signed(alice, g, "approve")
        read_under_grant(ctx, service_id=svc, grant_id=g)
        _signed(alice, g, "pause")
        _signed(alice, g, "resume")
        read_under_grant(ctx, service_id=svc, grant_id=g)
        _signed(alice, g, "revoke")

        # Asked through OAuth (PAR, the wallet's consent page, code, token, a read).
        oauth = Service.register(ctx, alice.client, ORIGIN)
        back = approve(alice, oauth)
        token = oauth.redeem(back["code"]).json()
        grants["oauth"] = token["grant_id"]
        _ok(oauth.read(token["access_token"]))

        # One read allowed: read once, and the grant is exhausted.
        g = grants["once"] = ask(ctx, w, access=Access("one_time")).id
        _signed(alice, g, "approve")
        read_under_grant(ctx, service_id=svc, grant_id=g)

        # Declined by the citizen; withdrawn by the service.
        g = grants["denied"] = ask(ctx, w).id
        _ok(alice.form(f"/wallet/grants/{g}/decline"))
        g = grants["cancelled"] = ask(ctx, w).id
        cancel_grant(ctx, g, service_id=svc)

        # A second passkey, used to approve, then removed.
        phone = SoftAuthenticator(origin=ORIGIN)
        on_phone = Browser(alice.client, device=phone, citizen_id=alice.citizen_id)
        _ok(on_phone.passkey_post("/wallet/passkeys/add", {"label": "Old phone"},
                                  options_path="/wallet/passkeys/options"))
        g = grants["phone"] = ask(ctx, w, access=Access("periodic", min_interval="PT1H")).id
        _signed(on_phone, g, "approve")
        read_under_grant(ctx, service_id=svc, grant_id=g)
        # Removing it is confirmed with a passkey (here alice's first one).
        _ok(alice.passkey_post(f"/wallet/passkeys/{next(iter(phone.credentials))}/remove"))

        # A service suspended (it never asked for anything).
        idle = registry.register_service(ctx, registry.Registration(
            name="Idle team", description="Registered, then suspended",
            purposes=["eligibility_assessment"], categories=["identity.name"], derived=[],
            jwk=dict(JWK), redirect_uris=["https://idle.example.gov/cb"],
            privacy_notice_url="https://idle.example.gov/privacy", max_days=30))
        registry.suspend_service(ctx, idle)

        # Two seconds of validity: read at once, then the sweeper expires it.
        _next_second()
        g = grants["short"] = ask(ctx, w, duration=timedelta(seconds=2)).id
        _signed(alice, g, "approve")
        read_under_grant(ctx, service_id=svc, grant_id=g)
        while not sweep(ctx).expired:
            time.sleep(0.1)

        # Bob approves one grant, leaves another pending, and deletes his account.
        bob = web.sign_up()
        assert bob.citizen_id is not None
        wb = World(svc, bob.citizen_id, "")
        g = grants["bob"] = ask(ctx, wb).id
        _signed(bob, g, "approve")
        read_under_grant(ctx, service_id=svc, grant_id=g)
        grants["bob_pending"] = ask(ctx, wb).id
        _ok(bob.passkey_post("/wallet/account/delete"))

        state = web.app.state.vault
        note = publish_checkpoint(state.engine, state.signer).note
        with state.engine.connect() as conn:
            stored = list(SqlLedger(conn).iter_opened())
        verifier = state.signer.verifier()
    return Journey([data for _, data, _ in stored], note, verifier, grants, svc,
                   {"alice": alice.device, "phone": phone, "bob": bob.device},
                   tmp_path / "vault", [o for _, _, o in stored if o is not None])


@dataclass
class Forge:
    """An export rewritten consistently: every seq, prev link and the tree recomputed,
    and a checkpoint signed by a key the forger holds (pin `verifier`)."""

    entries: list[dict[str, Any]]
    signer: Signer = field(default_factory=lambda: Signer.generate("forged.example/ledger"))
    #: Write sealed (v2) entries from this index on (None: whole v1 entries only).
    sealed_from: int | None = 0

    @classmethod
    def of(cls, journey: Journey, *, sealed: bool = True) -> Forge:
        return cls(journey.entries, sealed_from=0 if sealed else None)

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier()

    def edit(self, index: int, change: Callable[[dict[str, Any]], None]) -> Forge:
        change(self.entries[index]["body"])
        return self

    def insert(self, index: int, kind: str, body: dict[str, Any], time: str | None = None
               ) -> Forge:
        """A new entry at `index`, at the time of the entry it goes before (or `time`)."""
        at = time or self.entries[min(index, len(self.entries) - 1)]["time"]
        self.entries.insert(index, {"kind": kind, "time": at, "body": body})
        return self

    def drop(self, index: int) -> Forge:
        del self.entries[index]
        return self

    def lines(self) -> list[bytes]:
        return self.written()[0]

    def openings(self) -> list[bytes]:
        return self.written()[1]

    def written(self) -> tuple[list[bytes], list[bytes]]:
        """The entries' bytes, and the openings of the sealed ones. Salts come from the
        seq, so writing twice gives the same bytes."""
        out, openings, prev = [], [], b""
        for seq, e in enumerate(self.entries):
            if self.sealed_from is not None and seq >= self.sealed_from:
                s = seal(seq, e["kind"], e["body"], hashlib.sha256(b"salt %d" % seq).digest())
                data = encode_sealed_entry(seq, e["time"], e["kind"], prev, s.public, s.sealed)
                openings.append(s.opening)
            else:
                data = encode_entry(seq, e["time"], e["kind"], prev, e["body"])
            out.append(data)
            prev = leaf_hash(data)
        return out, openings

    def note(self, lines: list[bytes] | None = None) -> str:
        tree = CompactRange()
        for data in lines if lines is not None else self.lines():
            tree.push(leaf_hash(data))
        return sign_checkpoint(Checkpoint(self.signer.name, tree.size, tree.root()),
                               self.signer)


def resign(lines: list[bytes], signer: Signer) -> str:
    """A checkpoint of `lines` as they are, signed by `signer`."""
    tree = CompactRange()
    for data in lines:
        tree.push(leaf_hash(data))
    return sign_checkpoint(Checkpoint(signer.name, tree.size, tree.root()), signer)

