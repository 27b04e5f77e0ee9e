"""When a service may ask a citizen for a grant (issue 11: a service must not be able to
flood a wallet).

Two rules, checked when a grant is requested for a known citizen (a CIBA request, or an
authorization once the citizen has signed in):

1. the citizen has not stopped the service asking (a block, until they lift it);
2. the service has fewer than `MAX_WAITING` requests waiting for this citizen's answer
   (state requested and not yet lapsed). Five is enough for any real need (a service
   asking again because the first went astray) and few enough to read in one screen.

Pure: the caller counts and looks up the block, under the lock that serialises writers.
"""

from __future__ import annotations

from vault.domain.errors import AskingRefused

__all__ = ["MAX_WAITING", "refusal"]

#: Requests one service may have waiting for one citizen's answer.
MAX_WAITING = 5


def refusal(*, blocked: bool, waiting: int) -> AskingRefused | None:
    """Why a service that the citizen has (not) `blocked`, with `waiting` requests
    already waiting for their answer, may not ask once more; None if it may."""
    if blocked:
        return AskingRefused("blocked")
    if waiting >= MAX_WAITING:
        return AskingRefused(
            "too_many_waiting",
            f"this service already has {MAX_WAITING} requests waiting for this citizen's "
            "answer: it may ask again once one is answered or has lapsed")
    return None
