"""Demo content for `vault serve --demo`, so that a newcomer sees a live, verifiable ledger.

Only ids, pseudonyms and codes: demo entries follow the same no-personal-data rule.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.engine import Engine

from ledger.sqlstore import SqlLedger

__all__ = ["seed_demo"]


def seed_demo(engine: Engine) -> int:
    """Append the demo entries to an empty ledger; return how many were added."""
    with engine.begin() as conn:
        ledger = SqlLedger(conn)
        if ledger.size() > 0:
            return 0
        subject = "sub_" + secrets.token_urlsafe(16)
        items: list[tuple[str, dict[str, Any]]] = [
            ("service.registered", {
                "service_id": "svc_blue_badge",
                "name": "Blue Badge team, Riverside Council",
                "purposes": ["eligibility_assessment"],
                "categories": ["identity.name", "address.home", "benefits.attendance_allowance"],
            }),
            ("service.registered", {
                "service_id": "svc_school_meals",
                "name": "Free school meals check, Riverside schools",
                "purposes": ["eligibility_assessment"],
                "derived": ["eligible_free_school_meals"],
            }),
            ("citizen.enrolled", {"subject": subject}),
        ]
        return len(ledger.append_many(items))
