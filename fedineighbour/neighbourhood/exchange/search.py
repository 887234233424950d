"""Searching offers: radius around a point, text, purpose, kind, category, status; by distance or date.

The same SQL on SQLite and PostgreSQL, plain B-tree indexes, no extension:
- Place: a bounding box computed from the radius, as a list of bands of latitude (`lat_band`, about
  1.1 km each) and a range of longitude, so the index offers_geo (lat_band, lon, …) is read only
  inside the box, then the distance as plain arithmetic
  (an equirectangular projection around the mid-latitude, its cosine a second-order Taylor expansion
  around the query point: within 100 km it agrees with the haversine to a few metres, needs no
  trigonometry in SQL, and SQL filters, orders and pages on exactly the number the API shows).
- Text: every query word must start a word of the post (title, description, category), case and
  accents ignored: `search_text LIKE '% word%'` (see offer_models.search_document), and the inverted
  index `offer_words` (word, offer_id) for words of 3 letters or more.
- Access paths, so a dense town centre never reads thousands of rows:
  * a word found in few posts (at most WORD_DRIVE_MAX) drives: its offer_words rows, then each post,
  * else by distance: rings of growing radius (0.5, 1.5, 4.5 km…) on the covering index offers_geo,
    stopping at the first ring that fills the page,
  * else by date: the newest RECENT_WALK posts on the covering index offers_recent, and the whole
    circle only if that did not fill the page.
  The covering indexes hold every column a search filters on except the text, so a row is read only
  when its index entry already matches. SQLite is told which index to use (it keeps no statistics
  unless ANALYZE runs); PostgreSQL plans by itself.
- Paging: a keyset cursor (opaque base64 JSON of the last position and id).

Others' posts are measured from their published (fuzzed) point, the viewer's own posts from the exact
one (a second small query, merged). Posts received from towns beyond the perimeter (`listed` false)
are not listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import Tortoise

from fedineighbour.neighbourhood.exchange.search_query import (  # noqa: F401 - the search API in one place
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_KM,
    KM_PER_DEG,
    MAX_LIMIT,
    MAX_RADIUS_KM,
    ORDERS,
    STATUS_FILTERS,
    SearchQuery,
    decode_cursor,
    encode_cursor,
    flat_km,
    matches,
    parse_query,
)
from fedineighbour.neighbourhood.places import bounding_box, lon_ranges
from fedineighbour.neighbourhood.visibility import LISTED
from fedineighbour.storage.offer_models import WORD_MAX, WORD_MIN, Offer, lat_band


class _Sql:
    """Numbered placeholders (?n for SQLite, $n for asyncpg), so one fragment can be used several times."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        n = len(self.values)
        return f"${n}" if self.postgres else f"?{n}"


def _distance_sql(p: _Sql, lat0: float, lon0: float, lat_col: str, lon_col: str) -> str:
    c0, s0 = math.cos(math.radians(lat0)), math.sin(math.radians(lat0))
    dlat, dlon = f"({lat_col} - {p(lat0)})", f"({lon_col} - {p(lon0)})"
    h = f"({dlat} * {p(math.pi / 360.0)})"
    cos_mid = f"({p(c0)} - {p(s0)} * {h} - {p(c0 / 2)} * {h} * {h})"
    k = p(KM_PER_DEG)
    return f"(({dlat} * {k}) * ({dlat} * {k}) + ({dlon} * {k} * {cos_mid}) * ({dlon} * {k} * {cos_mid}))"


def _after_prefix(word: str) -> str:
    """The smallest string above every string starting with `word`."""
    return word[:-1] + chr(ord(word[-1]) + 1)


def _word_range(p: _Sql, word: str, kind: str | None) -> str:
    sql = f"word >= {p(word)} AND word < {p(_after_prefix(word))}"
    return sql + (f" AND kind = {p(kind)}" if kind else "")


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"% {escaped}%"


# Which rows one SQL statement looks at:
#   others: everyone's listed posts but the viewer's, by their published point (the main case),
#   own:    the viewer's own posts, by their exact point (merged with `others` in Python),
#   mine:   only the viewer's posts, listed or not (GET /api/v1/offers).
# How it walks them: "geo" (bounding box on offers_geo), "recent" (newest first on offers_recent,
# at most `walk` index entries), or "author" (offers_author_published).


def build_sql(query: SearchQuery, *, rows: str, viewer_id: int | None, now: datetime, postgres: bool,
              radius_km: float | None = None, walk: int | None = None,
              drive: str | None = None) -> tuple[str, list]:
    """SELECT id, position (squared distance or published), squared distance: one page plus one row.
    `drive`: a query word whose offer_words rows lead (a rare word)."""
    p = _Sql(postgres)
    where = ["deleted_at IS NULL"]
    if drive is not None:
        words = f"SELECT offer_id FROM offer_words WHERE {_word_range(p, drive, query.kind)}"
        # PostgreSQL misjudges IN (subquery) and scans the table: an array makes it look ids up.
        where.insert(0, f"id = ANY(ARRAY({words}))" if postgres else f"id IN ({words})")
    if rows == "others":
        where.append(f"listed = {p(True)}")
        where.append(f"visibility IN ({', '.join(p(v) for v in LISTED)})")  # neighbourhood/visibility.py
        if viewer_id is not None:
            where.append(f"author_id <> {p(viewer_id)}")
        lat_col, lon_col = "lat", "lon"
    else:
        where.append(f"author_id = {p(viewer_id)}")
        lat_col, lon_col = "COALESCE(exact_lat, lat)", "COALESCE(exact_lon, lon)"
        if rows == "own":
            where.append(f"listed = {p(True)}")
    # parse_search sets lat, lon and radius_km together: the radius is read only when there is a point
    radius = radius_km if radius_km is not None else (query.radius_km or 0.0)
    distance = None
    if query.lat is not None and query.lon is not None:
        distance = _distance_sql(p, query.lat, query.lon, lat_col, lon_col)
        if rows == "others":
            min_lat, max_lat, min_lon, max_lon = bounding_box(query.lat, query.lon, radius)
            if walk is None:  # one index seek per band of latitude, each on a range of longitude
                bands = range(lat_band(min_lat), lat_band(max_lat) + 1)
                where.append(f"lat_band IN ({', '.join(str(b) for b in bands)})")
            where.append(f"lat BETWEEN {p(min_lat)} AND {p(max_lat)}")
            ranges = [f"lon BETWEEN {p(lo)} AND {p(hi)}" for lo, hi in lon_ranges(min_lon, max_lon)]
            where.append(ranges[0] if len(ranges) == 1 else "(" + " OR ".join(ranges) + ")")
    for name in ("purpose", "kind", "category"):
        value = getattr(query, name)
        if value:
            where.append(f"{name} = {p(value)}")
    status = query.status
    if status in ("open", "reserved"):
        where.append(f"status = {p(status)} AND (expires_at IS NULL OR expires_at > {p(now)})")
    elif status == "active":
        where.append(f"status IN ('open', 'reserved') AND (expires_at IS NULL OR expires_at > {p(now)})")
    elif status == "expired":
        where.append(f"status IN ('open', 'reserved') AND expires_at <= {p(now)}")
    elif status in ("done", "closed"):
        where.append(f"status = {p(status)}")
    # SQLite evaluates the terms in this order: plain columns of the index first, then the distance,
    # then the text (which reads the row)
    if distance is not None:
        where.append(f"{distance} <= {p(radius ** 2)}")
    for word in query.words:
        where.append(f"search_text LIKE {p(_like(word))} ESCAPE '\\'")
    if query.order == "distance":
        position = distance
        if query.after is not None:
            d, last = query.after
            where.append(f"({distance} > {p(float(d))} OR ({distance} = {p(float(d))} AND id > {p(last)}))")
        order_by = f"{distance}, id"
    else:
        position = "published"
        if query.after is not None:
            t, last = query.after
            when = datetime.fromisoformat(str(t))
            where.append(f"(published < {p(when)} OR (published = {p(when)} AND id < {p(last)}))")
        order_by = "published DESC, id DESC"
    source = "offers"
    if walk is not None:
        # Newest first, no further than the `walk`-th newest post: the covering index answers every
        # term but the text, so rows are read only for candidates.
        hint = "" if postgres else " INDEXED BY offers_recent"
        cut = ""
        if query.after is not None:
            cut = f"WHERE published <= {p(datetime.fromisoformat(str(query.after[0])))} "
        boundary = (f"COALESCE((SELECT published FROM offers{hint} {cut}ORDER BY published DESC "
                    f"LIMIT 1 OFFSET {p(walk - 1)}), {p(datetime(1970, 1, 1, tzinfo=UTC))})")
        where.insert(0, f"published >= {boundary}")
        source += hint
    elif not postgres:
        # SQLite keeps no statistics unless ANALYZE ran: name the index, or it may walk the status one.
        source += (" NOT INDEXED" if drive is not None else " INDEXED BY " + (
            "offers_geo" if rows == "others" and query.lat is not None else
            "offers_recent" if rows == "others" else "offers_author_published"))
    sql = (f"SELECT id, {position}, {distance or 'NULL'} FROM {source} WHERE {' AND '.join(where)} "
           f"ORDER BY {order_by} LIMIT {p(query.limit + 1)}")
    return sql, p.values


@dataclass
class SearchPage:
    items: list[tuple[Offer, float | None]]  # (offer with author, distance in km or None)
    next_cursor: str | None


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


RING_START_KM = 0.5
RING_FACTOR = 3.0
RECENT_WALK = 3000
WORD_DRIVE_MAX = 3000


class _Runner:
    def __init__(self, query: SearchQuery, viewer_id: int | None, now: datetime, connection: str) -> None:
        self.conn = Tortoise.get_connection(connection)
        self.postgres = self.conn.capabilities.dialect == "postgres"
        self.query, self.viewer_id, self.now = query, viewer_id, now

    async def rows(self, rows: str, **kwargs: Any) -> list[tuple]:
        sql, values = build_sql(self.query, rows=rows, viewer_id=self.viewer_id, now=self.now,
                                postgres=self.postgres, **kwargs)
        _, result = await self.conn.execute_query(sql, values)
        return [(r[0], r[1], r[2]) for r in result]

    async def frequency(self, word: str) -> int:
        """In how many posts (of the kind asked) a word starts a word, counting up to WORD_DRIVE_MAX + 1."""
        p = _Sql(self.postgres)
        sql = (f"SELECT COUNT(*) FROM (SELECT 1 FROM offer_words WHERE {_word_range(p, word, self.query.kind)} "
               f"LIMIT {p(WORD_DRIVE_MAX + 1)}) AS w")
        _, result = await self.conn.execute_query(sql, p.values)
        return int(result[0][0])

    async def rarest_word(self) -> tuple[str | None, int]:
        """(the indexed query word found in the fewest posts, if few enough to lead; its count)."""
        best, best_count = None, WORD_DRIVE_MAX + 1
        for word in {w for w in self.query.words if WORD_MIN <= len(w) <= WORD_MAX}:
            count = await self.frequency(word)
            if count < best_count:
                best, best_count = word, count
            if count == 0:
                break
        return (best if best_count <= WORD_DRIVE_MAX else None), best_count

    async def nearest(self) -> list[tuple]:
        """Others' posts by distance: rings of growing radius, so a dense town centre reads few rows."""
        q, want = self.query, self.query.limit + 1
        radius = q.radius_km or 0.0
        ring = RING_START_KM
        if q.after is not None:
            ring = max(ring, math.sqrt(max(0.0, float(q.after[0]))) * 1.5)
        while True:
            ring = min(ring, radius)
            if ring >= radius / RING_FACTOR * 1.5:
                ring = radius  # the next ring would be nearly the whole circle anyway
            found = await self.rows("others", radius_km=ring)
            if len(found) >= want or ring >= radius:
                return found
            ring *= RING_FACTOR

    async def newest(self) -> list[tuple]:
        """Others' posts by date: walk the newest posts first, if that finds too few, search the area."""
        want = self.query.limit + 1
        found = await self.rows("others", walk=RECENT_WALK)
        if len(found) >= want:
            return found
        return await self.rows("others")


def _sort_key(order: str) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if order == "distance":
        return lambda r: (r[1], r[0])
    return lambda r: (_as_datetime(r[1]), r[0])


async def search(query: SearchQuery, viewer_id: int | None = None, now: datetime | None = None,
                 *, connection: str = "default") -> SearchPage:
    run = _Runner(query, viewer_id, now or datetime.now(UTC), connection)
    if query.mine:
        rows = await run.rows("mine")
    else:
        word, count = await run.rarest_word()
        if count == 0:
            rows = []  # a word no post has: nothing can match
        elif word is not None:
            rows = await run.rows("others", drive=word)
        else:
            rows = await (run.nearest() if query.order == "distance" else run.newest())
        if viewer_id is not None:
            rows += await run.rows("own")
            rows.sort(key=_sort_key(query.order), reverse=query.order == "date")
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    by_id = {o.id: o for o in await Offer.filter(id__in=[r[0] for r in rows]).select_related("author")}
    items = [(by_id[r[0]], math.sqrt(max(0.0, r[2])) if r[2] is not None else None) for r in rows if r[0] in by_id]
    next_cursor = None
    if more and rows:
        last_id, position, _ = rows[-1]
        if query.order == "date":
            position = _as_datetime(position).isoformat()
        next_cursor = encode_cursor(query.order, position, last_id)
    return SearchPage(items, next_cursor)
