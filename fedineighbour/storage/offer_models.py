"""Tables of the neighbourhood exchange: offers and requests, answers, photos, homes, saved searches.

Loaded by tortoise next to `models.py` in the same app ("models"), so foreign keys say "models.Account".
Local and remote offers share one table: a remote offer has `local` false, no `key`, no exact point, and
keeps the object as received in `ap_data`. No semicolons in docstrings or descriptions: tortoise puts them
in SQL comments and its SQLite migration runner splits statements on that character."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model
from tortoise.transactions import in_transaction

if TYPE_CHECKING:  # for the type hints only: tortoise links the tables by their "models.X" names
    from fedineighbour.storage.models import Account

TOKEN_RE = re.compile(r"\w+")
WORD_MIN = 3  # shorter words are not indexed in offer_words (search still matches them in search_text)
WORD_MAX = 64  # longer words are indexed by their first WORD_MAX letters
MAX_TOKENS = 1500  # search_text keeps the first MAX_TOKENS words, so every word of it is indexed
TEXT_FIELDS = ("title", "description", "category")
LAT_BAND_DEG = 0.01  # offers_geo starts with the band of latitude (about 1.1 km): see neighbourhood/search.py


def lat_band(lat: float) -> int:
    return math.floor(lat / LAT_BAND_DEG)


def fold(text: str) -> str:
    """Lower case without accents: what searches compare."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(fold(text))


def search_document(*parts: str) -> str:
    """`search_text`: the folded words separated by single spaces, with a space before the first one,
    so that LIKE '% word%' means "a word starting with word" (the same as the offer_words index)."""
    return " " + " ".join(tokens(" ".join(p for p in parts if p))[:MAX_TOKENS])


def index_words(document: str) -> list[str]:
    """The distinct words of a search_text that offer_words holds (WORD_MIN letters or more)."""
    seen: dict[str, None] = {}
    for word in document.split():
        if len(word) >= WORD_MIN:
            seen.setdefault(word[:WORD_MAX], None)
    return list(seen)


class Offer(Model):
    """An offer or a request, local or received from a neighbouring town."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=32, null=True, unique=True)  # local identifier in /api/v1/offers/{key}
    ap_id = fields.CharField(max_length=512, unique=True)
    url = fields.CharField(max_length=512, null=True)
    author: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="offers", on_delete=fields.CASCADE)
    author_id: int
    local = fields.BooleanField(default=True)
    town = fields.CharField(max_length=255, default="")  # the origin town's name
    town_host = fields.CharField(max_length=255, null=True)  # None for local offers
    listed = fields.BooleanField(default=True)  # in the town's search: from a neighbouring town, within the perimeter
    visibility = fields.CharField(max_length=16, default="public")
    purpose = fields.CharField(max_length=16)  # offer | request
    kind = fields.CharField(max_length=16)  # lend | give | sell | swap | co_purchase | help | carpool | ...
    category = fields.CharField(max_length=64, default="")
    title = fields.CharField(max_length=255)
    description = fields.TextField(default="")
    content_html = fields.TextField(default="")  # remote offers: sanitised content as received
    search_text = fields.TextField(default="")  # see search_document(), set by save()
    # {"type": free|loan|price|swap|time_credits, ...}
    terms: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    carpool: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)  # {"from", "to", "when", "seats"}
    shares_total = fields.IntField(null=True)  # co_purchase: shares open to neighbours
    shares_taken = fields.IntField(default=0)
    available_from = fields.DatetimeField(null=True)
    available_until = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    status = fields.CharField(max_length=16, default="open")  # open | reserved | done | closed
    reserved_for: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.SET_NULL, null=True)
    reserved_for_id: int | None
    return_by = fields.DatetimeField(null=True)  # a loan marked done: when the thing comes back
    return_reminded_at = fields.DatetimeField(null=True)
    exact_lat = fields.FloatField(null=True)  # local offers only, never published
    exact_lon = fields.FloatField(null=True)
    lat = fields.FloatField()  # the published, fuzzed point
    lon = fields.FloatField()
    lat_band = fields.IntField(default=0)  # lat_band(lat), set by save()
    neighbourhood = fields.CharField(max_length=255, default="")
    # remote offers: the FEP-0837 object as received
    ap_data: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    published = fields.DatetimeField()
    updated = fields.DatetimeField(null=True)
    deleted_at = fields.DatetimeField(null=True)

    async def save(self, using_db: Any = None, update_fields: Any = None, force_create: bool = False,
                   force_update: bool = False) -> None:
        """Keeps `lat_band`, `search_text` and the offer_words rows in step with the point, title,
        description and category, whoever saves (local posts, federation). Queryset .update() and
        bulk_create bypass this: change place and text through save()."""
        self.lat_band = lat_band(self.lat)
        if update_fields is not None and "lat" in update_fields and "lat_band" not in update_fields:
            update_fields = [*update_fields, "lat_band"]
        text_changed = update_fields is None or any(f in update_fields for f in TEXT_FIELDS)
        if not text_changed:
            await super().save(using_db=using_db, update_fields=update_fields, force_create=force_create,
                               force_update=force_update)
            return
        self.search_text = search_document(self.title, self.description, self.category)
        if update_fields is not None:
            update_fields = [*update_fields, "search_text"] if "search_text" not in update_fields else update_fields
        if using_db is not None:
            await self._save_with_words(using_db, update_fields, force_create, force_update)
        else:
            async with in_transaction() as conn:
                await self._save_with_words(conn, update_fields, force_create, force_update)

    async def _save_with_words(self, conn: Any, update_fields: Any, force_create: bool, force_update: bool) -> None:
        await super().save(using_db=conn, update_fields=update_fields, force_create=force_create,
                           force_update=force_update)
        await OfferWord.filter(offer_id=self.id).using_db(conn).delete()
        words = index_words(self.search_text)
        if words:
            await OfferWord.bulk_create([OfferWord(offer_id=self.id, kind=self.kind, word=w) for w in words],
                                        using_db=conn)

    class Meta:
        table = "offers"
        # offers_geo and offers_recent cover every column a search filters on but the text, so a search
        # reads a row only when the index entry already matches (neighbourhood/search.py).
        indexes = (
            Index(fields=("lat_band", "lon", "lat", "status", "expires_at", "kind", "purpose", "listed",
                          "deleted_at", "author_id", "published", "category"), name="offers_geo"),
            Index(fields=("published", "lat", "lon", "status", "expires_at", "kind", "purpose", "listed",
                          "deleted_at", "author_id", "category"), name="offers_recent"),
            Index(fields=("author_id", "published"), name="offers_author_published"),
            Index(fields=("status", "expires_at"), name="offers_status_expires"),
            Index(fields=("return_by",), name="offers_return_by"),
        )


class OfferWord(Model):
    """The words of an offer's search_text (at least WORD_MIN letters): an inverted index that works
    the same on SQLite and PostgreSQL. Written by Offer.save(). The kind (never changed once posted) is
    repeated here, so a common word asked with a kind still finds few rows."""

    id = fields.BigIntField(primary_key=True)
    offer: fields.ForeignKeyRelation[Offer] = fields.ForeignKeyField(
        "models.Offer", related_name="words", on_delete=fields.CASCADE)
    offer_id: int
    word = fields.CharField(max_length=WORD_MAX)
    kind = fields.CharField(max_length=16)

    class Meta:
        table = "offer_words"
        indexes = (Index(fields=("word", "kind", "offer_id"), name="offer_words_word"),
                   Index(fields=("offer_id",), name="offer_words_offer"))


class OfferAnswer(Model):
    """An answer to an offer: a private message, or a co-purchase share. open | accepted | withdrawn."""

    id = fields.BigIntField(primary_key=True)
    ap_id = fields.CharField(max_length=512, null=True, unique=True)  # remote answers, or ours once sent
    offer: fields.ForeignKeyRelation[Offer] = fields.ForeignKeyField(
        "models.Offer", related_name="answers", on_delete=fields.CASCADE)
    offer_id: int
    author: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="offer_answers", on_delete=fields.CASCADE)
    author_id: int
    kind = fields.CharField(max_length=16, default="answer")  # answer | join
    message = fields.TextField(default="")
    shares = fields.IntField(default=0)  # join: how many shares
    state = fields.CharField(max_length=16, default="open")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "offer_answers"
        indexes = (Index(fields=("offer_id", "state"), name="offer_answers_offer_state"),
                   Index(fields=("author_id", "created_at"), name="offer_answers_author"))


class OfferMedia(Model):
    """A photo of an offer. Local files live in the media store under `path`, remote ones at `remote_url`."""

    id = fields.BigIntField(primary_key=True)
    offer: fields.ForeignKeyRelation[Offer] = fields.ForeignKeyField(
        "models.Offer", related_name="media", on_delete=fields.CASCADE)
    offer_id: int
    path = fields.CharField(max_length=512, default="")
    remote_url = fields.CharField(max_length=1024, null=True)
    mime = fields.CharField(max_length=64)
    width = fields.IntField(default=0)
    height = fields.IntField(default=0)
    size_bytes = fields.IntField(default=0)
    alt_text = fields.TextField(default="")
    position = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "offer_media"
        indexes = (Index(fields=("offer_id", "position"), name="offer_media_offer_position"),)


class Home(Model):
    """The home point of a resident, set through the API. Exact, never published."""

    id = fields.BigIntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "models.Account", related_name="home", on_delete=fields.CASCADE)
    account_id: int
    lat = fields.FloatField()
    lon = fields.FloatField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "homes"


class SavedSearch(Model):
    """A search a resident keeps: new matching offers, local or remote, notify them."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="saved_searches", on_delete=fields.CASCADE)
    account_id: int
    name = fields.CharField(max_length=255, default="")
    # the parameters of GET /api/v1/offers/search
    query: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    last_notified_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "saved_searches"
