"""Offer rules without a database: validation, fuzzing, distances, cursors, the rate limiter."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from fedineighbour.neighbourhood.exchange.offer_rules import KINDS, OfferInvalid, parse_time, validate_offer
from fedineighbour.neighbourhood.exchange.search import (
    SearchQuery,
    decode_cursor,
    encode_cursor,
    flat_km,
    matches,
    parse_query,
)
from fedineighbour.neighbourhood.places import (
    FUZZ_MIN_M,
    MAX_FUZZ_KM,
    Fuzzer,
    TownPlace,
    bounding_box,
    haversine_km,
    parse_neighbourhoods,
)
from fedineighbour.neighbourhood.ratelimit import RateLimiter
from fedineighbour.storage.offer_models import Offer, index_words, search_document

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOME = (48.1113, -1.6800)


def body(**changes):
    data = {"purpose": "offer", "kind": "lend", "title": "Perceuse", "description": "Bosch 18 V",
            "location": {"lat": HOME[0], "lon": HOME[1]}}
    data.update(changes)
    return data


def errors_of(data, **kwargs) -> dict[str, str]:
    with pytest.raises(OfferInvalid) as exc:
        validate_offer(data, now=NOW, **kwargs)
    return exc.value.errors


# -- validation -------------------------------------------------------------------------------------

def test_minimal_body_gets_defaults():
    values = validate_offer(body(), now=NOW)
    assert values["purpose"] == "offer" and values["kind"] == "lend"
    assert values["terms"] == {"type": "loan"}  # a loan by default for lend
    assert values["expires_at"] == NOW + timedelta(days=30)
    assert values["location"] == HOME
    assert values["category"] == "" and values["description"] == "Bosch 18 V"


@pytest.mark.parametrize("data, field", [
    (body(title=None), "title"),
    (body(title="   "), "title"),
    (body(title="x" * 141), "title"),
    (body(kind="rent"), "kind"),
    (body(purpose="sale"), "purpose"),
    (body(expires_at="2020-01-01"), "expires_at"),
    (body(expires_at="2025-06-01T11:59:59Z"), "expires_at"),
    (body(expires_at="next week"), "expires_at"),
    (body(kind="give", terms={"type": "price", "price_cents": 500}), "terms"),
    (body(kind="give", terms={"price_cents": 500}), "terms"),
    (body(kind="sell", terms={"type": "price", "price_cents": 12.5}), "terms"),
    (body(kind="sell", terms={"type": "price", "price_cents": 100, "currency": "euros"}), "terms"),
    (body(terms={"type": "barter"}), "terms"),
    (body(location={"lat": 91, "lon": 2}), "location"),
    (body(location={"lat": 48, "lon": -180.5}), "location"),
    (body(location={"lat": "48", "lon": 2}), "location"),
    (body(location={"lat": True, "lon": 2}), "location"),
    (body(location={"lat": float("nan"), "lon": 2}), "location"),
    (body(location=None), "location"),
    (body(category="two words"), "category"),
    (body(shares_total=3), "shares_total"),
    (body(kind="co_purchase", shares_total=0), "shares_total"),
    (body(carpool={"from": "Rennes", "to": "Bruz"}), "carpool"),
    (body(kind="carpool", carpool={"from": "Rennes", "to": "Bruz", "seats": 20}), "carpool"),
    (body(available_from="2025-07-02", available_until="2025-07-01"), "available_until"),
    (body(use_home="yes"), "use_home"),
])
def test_each_invalid_field_is_named(data, field):
    assert field in errors_of(data)


def test_every_problem_is_reported_at_once():
    errors = errors_of(body(title="", kind="give", terms={"type": "price", "price_cents": 5},
                            location={"lat": 100, "lon": 0}, expires_at="2000-01-01"))
    assert set(errors) == {"title", "terms", "location", "expires_at"}
    assert "price" in errors["terms"] and "90" in errors["location"]


def test_terms_and_kind_specific_fields():
    sell = validate_offer(body(kind="sell", terms={"type": "price", "price_cents": 1500}), now=NOW)
    assert sell["terms"] == {"type": "price", "price_cents": 1500, "currency": "EUR"}
    swap = validate_offer(body(kind="swap", terms={"swap_for": "cours de maths"}), now=NOW)
    assert swap["terms"] == {"type": "swap", "swap_for": "cours de maths"}
    loan = validate_offer(body(terms={"type": "loan", "return_by": "2025-06-10"}), now=NOW)
    assert loan["terms"]["return_by"] == "2025-06-10T23:59:59Z"
    co = validate_offer(body(kind="co_purchase"), now=NOW)
    assert co["shares_total"] == 2
    car = validate_offer(body(kind="carpool", carpool={"from": "Rennes", "to": "Bruz", "when": "2025-06-03T08:00Z",
                                                       "seats": 3}), now=NOW)
    assert car["carpool"] == {"from": "Rennes", "to": "Bruz", "when": "2025-06-03T08:00:00Z", "seats": 3}
    home = validate_offer(body(location=None, use_home=True), now=NOW)
    assert home["use_home"] is True and home["location"] is None
    for kind in KINDS:
        assert validate_offer(body(kind=kind), now=NOW)["kind"] == kind
    assert validate_offer(body(kind="sell"), now=NOW)["terms"] == {"type": "price", "currency": "EUR"}


def test_neighbourhood_must_be_a_configured_one():
    assert validate_offer(body(neighbourhood="centre"), now=NOW, neighbourhoods=("Centre", "Nord"))[
        "neighbourhood"] == "Centre"
    assert "neighbourhood" in errors_of(body(neighbourhood="Sud"), neighbourhoods=("Centre", "Nord"))


def test_edit_validates_only_what_changes():
    current = {"purpose": "offer", "kind": "give", "shares_taken": 0, "available_from": None,
               "available_until": None}
    values = validate_offer({"title": "Canapé"}, now=NOW, current=current)
    assert values["title"] == "Canapé" and "expires_at" not in values and "terms" not in values
    assert "kind" in errors_of({"kind": "sell"}, current=current)
    assert "terms" in errors_of({"terms": {"type": "price", "price_cents": 10}}, current=current)
    assert "status" in errors_of({"status": "done"}, current=current)
    co = {**current, "kind": "co_purchase", "shares_taken": 3}
    assert "shares_total" in errors_of({"shares_total": 2}, current=co)


def test_parse_time():
    assert parse_time("2025-06-01") == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_time("2025-06-01T10:00:00+02:00") == datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert parse_time("2025-06-01T10:00:00") == datetime(2025, 6, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("01/06/2025")


# -- places and fuzzing -----------------------------------------------------------------------------

SECRET = b"0123456789abcdef0123456789abcdef"


def test_fuzzing_is_stable_per_resident_and_place_and_bounded():
    fuzzer = Fuzzer(SECRET)
    alice, bob = "https://t.example/users/alice", "https://t.example/users/bob"
    points = {fuzzer.fuzz(alice, *HOME) for _ in range(20)}
    assert len(points) == 1  # twenty posts from one home: one published point
    published = points.pop()
    assert published != (round(HOME[0], 5), round(HOME[1], 5))
    assert fuzzer.fuzz(bob, *HOME) != published  # another resident at the same place: another point
    assert Fuzzer(b"another secret, also 32 bytes..").fuzz(alice, *HOME) != published
    # the same home typed with GPS noise of a few metres usually lands in the same cell
    rng = random.Random(1)
    distances = []
    for _ in range(500):
        lat, lon = 48.0 + rng.random(), -2.0 + rng.random()
        flat, flon = fuzzer.fuzz(alice, lat, lon)
        d = haversine_km(lat, lon, flat, flon)
        distances.append(d)
        assert d <= MAX_FUZZ_KM + 0.001
    assert min(distances) > FUZZ_MIN_M / 1000 - 0.08  # never (almost) on the exact point
    assert sum(distances) / len(distances) > 0.25


def test_fuzzed_points_cannot_be_averaged_back():
    """Many residents around one home: the mean of their fuzzed points is far from any one exact point,
    and one resident's posts all give the same point, so there is nothing to average."""
    fuzzer = Fuzzer(SECRET)
    offsets = [haversine_km(*HOME, *fuzzer.fuzz(f"https://t.example/users/u{i}", *HOME)) for i in range(50)]
    assert len({round(o, 4) for o in offsets}) > 40


def test_secret_must_exist(tmp_path):
    with pytest.raises(RuntimeError, match="init"):
        Fuzzer.from_file(tmp_path / "missing.key")
    (tmp_path / "secret.key").write_text("ab" * 32)
    assert Fuzzer.from_file(tmp_path / "secret.key").fuzz("a", *HOME) == Fuzzer(b"ab" * 32).fuzz("a", *HOME)


def test_nearest_neighbourhood_and_perimeter():
    class S:
        class town:
            name, centre, radius_km = "Ville", {"lat": 48.11, "lon": -1.68}, 5
            neighbourhoods = [{"name": "Centre", "lat": 48.11, "lon": -1.68}, {"name": "Nord", "lat": 48.14,
                                                                                 "lon": -1.68}, {"bad": 1}]

        class instance:
            name = "ville"

        class federation:
            perimeter_km = 30.0

    town = TownPlace.from_settings(S)
    assert [n.name for n in town.neighbourhoods] == ["Centre", "Nord"]
    assert town.neighbourhood_of(48.135, -1.68) == "Nord"
    assert town.neighbourhood_of(48.112, -1.679) == "Centre"
    assert not town.outside(48.2, -1.7) and town.outside(48.5, -1.7)
    assert parse_neighbourhoods(None) == []


def test_flat_distance_agrees_with_haversine_and_box_contains_circle():
    rng = random.Random(3)
    for _ in range(2000):
        lat0, lon0 = rng.uniform(-60, 60), rng.uniform(-170, 170)
        radius = rng.choice([1, 5, 20, 100])
        bearing, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0, radius)
        lat = lat0 + dist * math.cos(bearing) / 111.2
        lon = lon0 + dist * math.sin(bearing) / (111.2 * math.cos(math.radians(lat0)))
        h, f = haversine_km(lat0, lon0, lat, lon), flat_km(lat0, lon0, lat, lon)
        assert abs(h - f) < 0.002 + 0.0005 * h, (lat0, lon0, lat, lon, h, f)
        if h <= radius:
            min_lat, max_lat, min_lon, max_lon = bounding_box(lat0, lon0, radius)
            assert min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


# -- search parameters and matching -----------------------------------------------------------------

def test_parse_query_defaults_and_errors():
    q = parse_query({"lat": "48.1", "lon": "-1.6", "q": "Perceuse électrique"})
    assert (q.radius_km, q.order, q.status, q.limit) == (10.0, "distance", "open", 20)
    assert q.words == ["perceuse", "electrique"]
    assert parse_query({}).order == "date"
    assert parse_query({"near": "home"}, home=HOME).lat == HOME[0]
    for params, field in [({"lat": "48"}, "lon"), ({"lat": "95", "lon": "0"}, "lat"), ({"radius_km": "5"},
                          "radius_km"), ({"lat": "48", "lon": "1", "radius_km": "500"}, "radius_km"),
                          ({"kind": "rent"}, "kind"), ({"order": "distance"}, "order"), ({"limit": "0"}, "limit"),
                          ({"near": "home"}, "near"), ({"status": "gone"}, "status"), ({"lat": "x", "lon": "1"},
                                                                                        "lat")]:
        with pytest.raises(OfferInvalid) as exc:
            parse_query(params)
        assert field in exc.value.errors, params
    with pytest.raises(OfferInvalid) as exc:
        parse_query({"cursor": "garbage"})
    assert "cursor" in exc.value.errors


def test_cursor_round_trip_is_exact():
    d2 = 12.345678901234567
    cursor = encode_cursor("distance", d2, 42)
    assert decode_cursor(cursor, "distance") == (d2, 42)
    with pytest.raises(OfferInvalid):
        decode_cursor(cursor, "date")


def test_search_document_prefix_semantics():
    doc = search_document("Perceuse électrique", "Très bon état, prêtée le week-end", "bricolage")
    assert doc.startswith(" perceuse electrique tres bon etat")
    assert " week" in doc and " pretee" in doc
    assert index_words(doc)[:3] == ["perceuse", "electrique", "tres"]
    assert "le" not in index_words(doc)  # shorter than 3 letters
    assert index_words(search_document("x" * 70 + " ab abc")) == ["x" * 64, "abc"]  # long words cut, short skipped
    offer = Offer(lat=48.1, lon=-1.6, status="open", listed=True, purpose="offer", kind="lend", category="",
                  search_text=doc, expires_at=NOW + timedelta(days=1))
    offer.deleted_at = None
    assert matches(SearchQuery(words=["perc"]), offer, NOW)
    assert not matches(SearchQuery(words=["ceuse"]), offer, NOW)  # the start of a word, not any part
    assert matches(SearchQuery(lat=48.1, lon=-1.65, radius_km=5, kind="lend"), offer, NOW)
    assert not matches(SearchQuery(lat=48.1, lon=-1.75, radius_km=5), offer, NOW)
    assert not matches(SearchQuery(kind="give"), offer, NOW)
    assert not matches(SearchQuery(), offer, NOW + timedelta(days=2))  # expired


# -- rate limiter -----------------------------------------------------------------------------------

def test_token_bucket():
    clock = [0.0]
    rl = RateLimiter(capacity=3, refill_per_second=0.5, clock=lambda: clock[0])
    assert [rl.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.take("a")
    assert wait == pytest.approx(2.0) and rl.retry_after(wait) == "2"
    assert rl.take("b") == 0.0  # per account
    clock[0] = 2.0
    assert rl.take("a") == 0.0 and rl.take("a") > 0
    clock[0] = 100.0
    assert [rl.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # never more than the capacity
    assert rl.take("a") > 0
