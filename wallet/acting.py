"""Acting for someone in the wallet (ARCHITECTURE §9, issue 14 §3): whose vault a page shows.

The signed-in person is the *actor*. The person whose vault a page shows is the *subject*:
the actor themself, or someone they chose with the "Acting for" switch, kept in their
server-side session. The choice is checked on every request against a live relationship
allowing `view` (`delegations.authorize`): the moment it ends or expires, reading pages
fall back to the actor's own vault and the choice is cleared; a state-changing request is
refused instead (a form drawn in someone's vault must never land in one's own). Each
action then checks its own delegated action again inside its transaction (the services'
`actor_id`), so a page shown a moment before the end cannot act after it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import delegations
from vault.services.context import reading
from vault.storage.tables import RecordRow

__all__ = ["ActingAs", "Header", "NameCache", "choose", "header", "resolve"]

if TYPE_CHECKING:
    from wallet.web import WalletState


@dataclass(frozen=True, slots=True)
class ActingAs:
    """Who acts (signed in) and in whose vault."""

    actor_id: str
    subject_id: str

    @property
    def for_someone(self) -> bool:
        return self.actor_id != self.subject_id


def resolve(wallet: WalletState, *, actor_id: str, chosen: str | None, token: str | None,
            safe: bool) -> ActingAs:
    """Whose vault this request is in. A choice no live relationship allows any more is
    cleared from the session; on a reading request the actor's own vault is shown, on a
    state-changing one RelationshipRefused("ended") (nothing is done anywhere)."""
    if chosen is None or chosen == actor_id:
        return ActingAs(actor_id, actor_id)
    try:
        with reading(wallet.ctx) as session:
            delegations.authorize(session, actor_id=actor_id, subject_id=chosen,
                                  action=DelegatedAction.VIEW, now=wallet.ctx.clock())
    except RelationshipRefused:
        wallet.sessions.act_for(token, None)
        if not safe:
            raise RelationshipRefused("ended", "you can no longer act for this person: "
                                      "nothing was done, and you are back in your own "
                                      "vault") from None
        return ActingAs(actor_id, actor_id)
    return ActingAs(actor_id, chosen)


def choose(wallet: WalletState, *, actor_id: str, principal_id: str | None,
           token: str | None) -> None:
    """The switch: act in `principal_id`'s vault (None or oneself: one's own), if a live
    relationship lets the actor see it (RelationshipRefused otherwise, nothing changed)."""
    if principal_id is not None and principal_id != actor_id:
        with reading(wallet.ctx) as session:
            delegations.authorize(session, actor_id=actor_id, subject_id=principal_id,
                                  action=DelegatedAction.VIEW, now=wallet.ctx.clock())
    else:
        principal_id = None
    wallet.sessions.act_for(token, principal_id)


@dataclass(frozen=True, slots=True)
class Header:
    """What every page's header says about acting for someone."""

    #: (citizen id, name) of everyone the actor may act for now; empty: no switch.
    people: list[tuple[str, str]]
    #: The person whose vault is chosen (None: the actor's own).
    chosen: str | None
    chosen_name: str

    @property
    def acting(self) -> bool:
        return self.chosen is not None


@dataclass
class NameCache:
    """People's names for the header, by the id of the `identity.name` record they were
    read from. A record's value never changes (a new name is a new record), so a name
    found here is the one its record holds; the header then decrypts only names that
    changed, not every name of every person on every page. Bounded, oldest out first."""

    size: int = 10_000
    _names: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def names(self, wallet: WalletState, session: Session, ids: list[str]
              ) -> dict[str, str]:
        newest: dict[str, tuple[int, str, bool]] = {}
        for citizen_id, record_id, version, withdrawn in session.execute(
                select(col(RecordRow.citizen_id), col(RecordRow.id), col(RecordRow.version),
                       col(RecordRow.withdrawn_at))
                .where(col(RecordRow.citizen_id).in_(ids),
                       col(RecordRow.category) == "identity.name")).all():
            if citizen_id not in newest or version > newest[citizen_id][0]:
                newest[citizen_id] = (version, record_id, withdrawn is not None)
        found: dict[str, str] = {}
        for citizen_id, (_, record_id, withdrawn) in newest.items():
            name = None if withdrawn else self._names.get(record_id)
            if name is not None:
                found[citizen_id] = name
        missing = [i for i in ids if i not in found]
        if missing:  # decrypted from each person's own record, as the People page does
            read = delegations.display_names(wallet.ctx, session, missing)
            for citizen_id, name in read.items():
                found[citizen_id] = name
                if citizen_id in newest and not newest[citizen_id][2]:
                    self._names[newest[citizen_id][1]] = name
            while len(self._names) > self.size:
                self._names.popitem(last=False)
        return found


def header(wallet: WalletState, session: Session, *, actor_id: str, chosen: str | None
           ) -> Header:
    """The switch's choices (one query, and one for the names: `NameCache`)."""
    people = delegations.acting_for(session, actor_id, now=wallet.ctx.clock())
    if not people:
        return Header([], None, "")
    ids = list(dict.fromkeys(p.principal_id for p in people))
    names = wallet.names.names(wallet, session, ids)
    listed = [(i, names[i]) for i in dict.fromkeys(ids)]
    found = chosen if chosen in names else None
    return Header(listed, found, names[found] if found is not None else "")
