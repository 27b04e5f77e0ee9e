"""The wallet's pages and actions, under /wallet."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    from wallet.routes import account, asking, auth, authorize, data, grants, home, passkeys
    from wallet.routes import people
    from wallet.routes import acting

    return [home.router, auth.router, authorize.router, grants.router, asking.router,
            data.router, passkeys.router, account.router, people.router, acting.router]
