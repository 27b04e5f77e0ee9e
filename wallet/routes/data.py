"""(being written)"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from wallet.routes.deps import csrf_guard

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)
