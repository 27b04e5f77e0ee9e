"""`vault serve --demo` beside a source (`make run` registers the city's electoral register,
which holds address.home at source): a newcomer still signs up, and gets the demo's
fictional records except the one the source holds, which the vault never stores."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select
from support.webwallet import open_wallet

from clients.service import ServiceKey
from vault.services import registry
from vault.storage.tables import RecordRow


def test_a_demo_newcomer_gets_no_copy_of_what_a_source_holds(tmp_path: Path) -> None:
    with open_wallet(tmp_path, demo=True) as web:
        registry.register_service(web.ctx, registry.Registration(
            name="Electoral register", description="Holds addresses at source.",
            purposes=["service_provision"], categories=[], issues=["address.home"],
            source_url="http://localhost:8003/source", jwk=ServiceKey.generate().public_jwk(),
            redirect_uris=["http://localhost:8003/callback"],
            privacy_notice_url="http://localhost:8003/privacy"))
        b = web.browser()
        r = b.passkey_post("/wallet/signup", {"label": "My phone"})
        assert r.status_code == 200, r.text
        citizen = web.state.sessions.resolve(b.client.cookies.get(web.state.cookies.session),
                                             now=web.ctx.clock())
        with Session(web.ctx.engine) as session:
            kept = set(session.exec(select(RecordRow.category).where(
                col(RecordRow.citizen_id) == citizen)).all())
        assert "identity.name" in kept and "address.home" not in kept, kept
