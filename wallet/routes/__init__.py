"""The wallet's pages and actions, under /wallet."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    from wallet.routes import (
        account,
        acting,
        asking,
        auth,
        authorize,
        children,
        counter,
        data,
        grants,
        home,
        passkeys,
        people,
    )

    return [home.router, auth.router, authorize.router, grants.router, asking.router,
            data.router, passkeys.router, account.router, people.router, acting.router,
            children.router, counter.router]
