"""Offers and requests of residents: create, edit, close, delete, homes. Answers live in answers.py.

Everything goes through an `Exchange`, built once per process by the composition root (`Exchange.build(ctx)`):
it holds the fuzzer keyed with the server secret (read once) and the town's place. Every change writes its event
("created" | "updated" | "status" | "deleted" | "answered" | "answer_withdrawn" | "joined", see
`EVENT_KINDS`) in the transaction that saves it (neighbourhood/events.py); the event worker later turns it
into Create/Update/Delete, the town Group's Announce (DESIGN.md §4) and saved-search notifications.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from fedineighbour.neighbourhood import events
from fedineighbour.neighbourhood.context import DomainContext
from fedineighbour.neighbourhood.exchange.offer_rules import OfferInvalid, validate_offer
from fedineighbour.neighbourhood.places import Fuzzer, TownPlace, valid_point
from fedineighbour.storage.models import Account
from fedineighbour.storage.offer_models import Home, Offer, OfferAnswer

# The exchange's changes and the kind of the event row each writes.
EVENT_KINDS = {"created": "offer.created", "updated": "offer.updated", "status": "offer.status",
               "deleted": "offer.deleted", "joined": "offer.joined", "answered": "answer.created",
               "answer_withdrawn": "answer.withdrawn"}
EVENTS = tuple(EVENT_KINDS)

KEY_MAX = 32  # the length of Offer.key


class OfferDenied(Exception):
    """Not allowed or not possible now: status 403 (not yours), 404 (no such) or 409 (wrong state)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Exchange:
    ctx: DomainContext
    fuzzer: Fuzzer
    town: TownPlace
    wake: events.Wake = events.no_wake  # rouses this process's event worker once events are committed

    @classmethod
    def build(cls, ctx: DomainContext) -> Exchange:
        """Reads the server secret (created by `fedineighbour init`)."""
        return cls(ctx=ctx, fuzzer=Fuzzer.from_file(ctx.settings.secret_file),
                   town=TownPlace.from_settings(ctx.settings), wake=ctx.wake_events)

    @property
    def base(self) -> str:
        return self.ctx.urls.base

    async def emit(self, event: str, offer: Offer, answer: OfferAnswer | None = None, *,
                   using_db: Any = None) -> None:
        """Record the event of a change. Inside the change's transaction (`using_db`), then call `committed()`
        once it commits; without one the row is written at once and the worker woken."""
        await events.record(EVENT_KINDS[event], offer=offer, answer=answer, using_db=using_db)
        if using_db is None:
            self.committed()

    def committed(self, subject: str = "offer") -> None:
        events.committed(subject, self.wake)


def offer_ap_id(base: str, key: str) -> str:
    return f"{base}/offers/{key}"


def effective_status(offer: Offer, now: datetime | None = None) -> str:
    """open | reserved | done | closed, or expired once expires_at has passed on an open or reserved post."""
    now = now or datetime.now(UTC)
    if offer.deleted_at is not None:
        return "deleted"
    if offer.status in ("open", "reserved") and offer.expires_at is not None and offer.expires_at <= now:
        return "expired"
    return offer.status


async def _exact_point(ex: Exchange, author: Account, values: dict[str, Any]) -> tuple[float, float] | None:
    """The exact point chosen (or the home), None when an edit keeps the place."""
    if values.get("use_home"):
        home = await Home.get_or_none(account_id=author.id)
        if home is None:
            raise OfferInvalid({"use_home": "no home set: PATCH /api/v1/accounts/me/home first"})
        point: tuple[float, float] | None = (home.lat, home.lon)
    else:
        point = values.get("location")
    if point is not None and ex.town.outside(*point):
        raise OfferInvalid({"location": f"outside the town's area ({ex.town.perimeter_km:g} km from its centre)"})
    return point


def _place_fields(ex: Exchange, author: Account, point: tuple[float, float], neighbourhood: str | None
                  ) -> dict[str, Any]:
    lat, lon = ex.fuzzer.fuzz(author.ap_id, *point)
    # Named from the published point: the name of the exact one would tell on which side of the fuzz it is.
    return {"exact_lat": point[0], "exact_lon": point[1], "lat": lat, "lon": lon,
            "neighbourhood": neighbourhood if neighbourhood is not None else ex.town.neighbourhood_of(lat, lon)}


def _model_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in ("location", "use_home")}


async def create_offer(ex: Exchange, author: Account, data: dict[str, Any], *, now: datetime | None = None) -> Offer:
    """Validate, place and store a local offer or request, then tell the listeners. Nothing is stored
    when anything is invalid (OfferInvalid carries every field in error)."""
    now = now or datetime.now(UTC)
    values = validate_offer(data, now=now, neighbourhoods=tuple(n.name for n in ex.town.neighbourhoods))
    point = await _exact_point(ex, author, values)
    assert point is not None
    fields = _model_values(values)
    fields.update(_place_fields(ex, author, point, fields.pop("neighbourhood", None)))
    key = secrets.token_hex(8)
    ap_id = offer_ap_id(ex.base, key)
    async with in_transaction() as conn:
        offer = await Offer.create(key=key, ap_id=ap_id, url=ap_id, author=author, local=True, town=ex.town.name,
                                   published=now, using_db=conn, **fields)
        await ex.emit("created", offer, using_db=conn)
    ex.committed()
    return offer


def _current_values(offer: Offer) -> dict[str, Any]:
    return {"purpose": offer.purpose, "kind": offer.kind, "shares_taken": offer.shares_taken,
            "available_from": offer.available_from, "available_until": offer.available_until}


async def edit_offer(ex: Exchange, offer: Offer, author: Account, data: dict[str, Any]) -> Offer:
    if offer.author_id != author.id:
        raise OfferDenied(403, "only the author edits a post")
    now = datetime.now(UTC)
    values = validate_offer(data, now=now, current=_current_values(offer),
                            neighbourhoods=tuple(n.name for n in ex.town.neighbourhoods))
    point = await _exact_point(ex, author, values)
    changes = _model_values(values)
    if point is not None:
        changes.update(_place_fields(ex, author, point, changes.pop("neighbourhood", None)))
    if not changes:
        return offer
    for name, value in changes.items():
        setattr(offer, name, value)
    offer.updated = now
    async with in_transaction() as conn:
        # search_text and words follow (Offer.save)
        await offer.save(update_fields=[*changes, "updated"], using_db=conn)
        await ex.emit("updated", offer, using_db=conn)
    ex.committed()
    return offer


async def close_offer(ex: Exchange, offer: Offer, by: Account) -> Offer:
    if offer.author_id != by.id:
        raise OfferDenied(403, "only the author closes a post")
    if offer.status not in ("open", "reserved"):
        raise OfferDenied(409, f"this post is already {offer.status}")
    offer.status, offer.updated = "closed", datetime.now(UTC)
    async with in_transaction() as conn:
        await offer.save(update_fields=["status", "updated"], using_db=conn)
        await ex.emit("status", offer, using_db=conn)
    ex.committed()
    return offer


async def delete_offer(ex: Exchange, offer: Offer, by: Account) -> None:
    if offer.author_id != by.id:
        raise OfferDenied(403, "only the author deletes a post")
    offer.deleted_at = datetime.now(UTC)
    offer.status = "closed"
    async with in_transaction() as conn:
        await offer.save(update_fields=["deleted_at", "status"], using_db=conn)
        await ex.emit("deleted", offer, using_db=conn)
    ex.committed()


async def offer_by_key(key: str) -> Offer:
    """A post by its key: local posts have one, and so do remote ones given a key when received, so
    residents answer them through the same API."""
    # A key longer than the column is no key of ours (and the ORM refuses to even compare it).
    offer = None if len(key) > KEY_MAX else (
        await Offer.filter(key=key, deleted_at=None).select_related("author").first())
    if offer is None:
        raise OfferDenied(404, "no such post")
    return offer


# -- homes ------------------------------------------------------------------------------------------

async def set_home(ex: Exchange, account: Account, data: dict[str, Any]) -> Home:
    problem = valid_point(data.get("lat"), data.get("lon"))
    if problem:
        raise OfferInvalid({problem.split()[0]: problem})
    lat, lon = float(data["lat"]), float(data["lon"])
    if ex.town.outside(lat, lon):
        raise OfferInvalid({"lat": f"outside the town's area ({ex.town.perimeter_km:g} km from its centre)"})
    home, created = await Home.get_or_create(account_id=account.id, defaults={"lat": lat, "lon": lon})
    if not created:
        home.lat, home.lon = lat, lon
        await home.save(update_fields=["lat", "lon", "updated_at"])
    return home


async def home_of(account: Account | None) -> tuple[float, float] | None:
    if account is None:
        return None
    home = await Home.get_or_none(account_id=account.id)
    return (home.lat, home.lon) if home else None
