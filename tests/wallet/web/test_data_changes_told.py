"""The citizen's own edits in the wallet tell the services that read them: through the
real app, whose change teller (vault.app) queues `record.changed` after the commit."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select
from support.vaultworld import JWK, ask
from support.webwallet import open_wallet

from vault.services import registry
from vault.services.context import VaultContext
from vault.storage.tables import RecordChangeRow, WebhookMessageRow


def _told(ctx: VaultContext, count: int) -> list[dict[str, Any]]:
    """The record.changed messages, once there are `count` (the teller is a thread)."""
    deadline = time.monotonic() + 10
    while True:
        with Session(ctx.engine) as s:
            bodies = [json.loads(m.body) for m in s.exec(
                select(WebhookMessageRow).where(col(WebhookMessageRow.event) ==
                                                "record.changed")
                .order_by(col(WebhookMessageRow.created_at))).all()]
            pending = s.exec(select(RecordChangeRow)).all()
        if (len(bodies) >= count and not pending) or time.monotonic() > deadline:
            return bodies
        time.sleep(0.02)


def test_a_wallet_edit_and_delete_tell_the_grant_that_reads_it(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        alice = web.sign_up()
        service = registry.register_service(web.ctx, registry.Registration(
            name="Electoral register", description="Keeps the register",
            purposes=["eligibility_assessment"], categories=["identity.name"], jwk=JWK,
            redirect_uris=["https://er.example.gov/cb"],
            privacy_notice_url="https://er.example.gov/privacy",
            webhook_url="https://er.example.gov/hooks"))
        grant = ask(web.ctx, web.world_for(alice, service), categories=["identity.name"],
                    derived=[])
        assert alice.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200
        edited = alice.form("/wallet/data/identity.name",
                            {"f.given": "Grace", "f.family": "Hopper"})
        assert edited.status_code == 303
        (first,) = _told(web.ctx, 1)
        assert first["data"]["grant_id"] == grant.id
        assert first["data"]["categories"] == ["identity.name"]
        deleted = alice.form("/wallet/data/identity.name/delete")
        assert deleted.status_code == 303
        second = _told(web.ctx, 2)[1]["data"]
        assert (second["grant_id"], second["categories"]) == (grant.id, ["identity.name"])
        assert second["ledger_index"] > first["data"]["ledger_index"]
