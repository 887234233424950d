"""Offers on the wire, without a network: what we publish (offers_to_ap), what we understand
(offers_from_ap: FEP-0837 and flohmarkt payloads in tests/fixtures/offers/, see PROVENANCE.md there), and
NodeInfo's town metadata. The handlers and publishing against a real database are in
test_offers_handlers.py; real instances in test_offers_federation.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nh3
import pytest

from fedineighbour.federation.convert.from_ap import Unsupported, parse_activity, parse_object
from fedineighbour.federation.convert.offers_from_ap import offer_fields
from fedineighbour.federation.convert.offers_to_ap import OFFER_CONTEXT, content_html, offer_object
from fedineighbour.federation.town_info import town_from_nodeinfo
from fedineighbour.storage.models import Account
from fedineighbour.storage.offer_models import Offer, OfferMedia

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "offers"
MASTODON_TAGS = {"p", "span", "br", "a", "del", "pre", "code", "em", "strong", "b", "i", "u", "ul", "ol", "li",
                 "blockquote"}
OUR_TAGS = {"p", "br", "a", "strong", "em", "ul", "li"}
BASE = "https://saint-martin.example"
NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def author() -> Account:
    return Account(ap_id=f"{BASE}/users/alice", username="alice", followers_url=f"{BASE}/users/alice/followers",
                   local=True)


def town_group() -> Account:
    return Account(ap_id=f"{BASE}/users/town", username="town", followers_url=f"{BASE}/users/town/followers",
                   local=True, actor_type="Group")


def offer(**overrides) -> Offer:
    values = dict(
        key="k3y", ap_id=f"{BASE}/offers/k3y", url=f"{BASE}/offers/k3y", author_id=1, local=True,
        town="Saint-Martin", purpose="offer", kind="sell", category="bricolage",
        title="Perceuse à percussion <Bosch>", description="750 W, avec mèches & coffret.\nPeu servi.\n\nLe soir.",
        terms={"type": "price", "price_cents": 1250, "currency": "EUR"}, exact_lat=48.11731, exact_lon=-1.67776,
        lat=48.1201, lon=-1.6741, neighbourhood="Centre-bourg", published=NOW, updated=None,
        expires_at=NOW + timedelta(days=30), status="open", visibility="public")
    values.update(overrides)
    return Offer(**values)


def build(row: Offer, language: str = "fr", media=None) -> dict:
    return offer_object(row, author(), base=BASE, town_name="Saint-Martin", language=language, town=town_group(),
                        media=media, now=NOW)


def visible_text(html_text: str) -> str:
    return " ".join(nh3.clean(html_text, tags=set()).replace("&amp;", "&").replace("&lt;", "<")
                    .replace("&gt;", ">").split())


# -- what we publish ------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["fr", "en"])
def test_content_survives_mastodon_sanitiser(language):
    row = offer()
    content = build(row, language)["content"]
    assert set(re.findall(r"</?([a-zA-Z0-9]+)", content)) <= OUR_TAGS
    cleaned = nh3.clean(content, tags=MASTODON_TAGS, attributes={"a": {"href", "class"}})
    text = visible_text(cleaned)
    assert "Perceuse à percussion <Bosch>" in text  # the title, escaped in HTML, intact as text
    assert "750 W, avec mèches & coffret." in text and "Peu servi." in text and "Le soir." in text
    assert ("12,50 €" if language == "fr" else "€12.50") in text  # the terms
    assert "Centre-bourg, Saint-Martin" in text  # the place
    assert "#bricolage" in text and ("#vente" if language == "fr" else "#forsale") in text
    assert f"{BASE}/offers/k3y" in cleaned  # the link survives as a link
    assert "<script" not in content and "<Bosch>" not in content


def test_content_status_and_terms_variants():
    swap = content_html(offer(kind="swap", terms={"type": "swap", "swap_for": "des cours de maths"}, status="reserved"),
                        town_name="Saint-Martin", language="fr", tag_url=BASE + "/tags/{tag}")
    assert "[Réservé]" in swap and "échange contre des cours de maths" in swap
    loan = content_html(offer(kind="lend", purpose="request", terms={"type": "loan"}), town_name="Saint-Martin",
                        language="en", tag_url=BASE + "/tags/{tag}")
    assert "Request · Borrowing — " in loan and "free loan" in loan
    carpool = content_html(offer(kind="carpool", terms={"type": "free"}, carpool={
        "from": "Mairie", "to": "Gare de Rennes", "when": "2030-05-02T07:30:00Z", "seats": 3}),
        town_name="Saint-Martin", language="fr", tag_url=BASE + "/tags/{tag}")
    assert "Mairie → Gare de Rennes, le 02/05/2030 07:30, 3 place(s)" in carpool


def test_offer_object_is_a_note_and_a_proposal():
    media = [OfferMedia(offer_id=1, path="offers/k3y/1.webp", mime="image/webp", width=800, height=600,
                        alt_text="Une perceuse verte sur un établi", position=0)]
    doc = build(offer(), media=media)
    assert doc["type"] == ["Note", "Proposal"]
    assert doc["id"] == f"{BASE}/offers/k3y" and doc["attributedTo"] == f"{BASE}/users/alice"
    assert doc["name"] == "Perceuse à percussion <Bosch>" and doc["purpose"] == "offer"
    assert doc["publishes"] == {"id": f"{BASE}/offers/k3y#primary", "type": "Intent", "action": "transfer",
                                "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"}}
    assert doc["reciprocal"]["resourceConformsTo"] == "https://www.wikidata.org/wiki/Q4916"
    assert doc["reciprocal"]["resourceQuantity"]["hasNumericalValue"] == "12.50"
    assert doc["location"] == {"type": "Place", "name": "Centre-bourg", "latitude": 48.1201, "longitude": -1.6741}
    assert doc["endTime"] == "2030-05-31T12:00:00Z" and doc["unitBased"] is False
    assert {"type": "Hashtag", "href": f"{BASE}/tags/bricolage", "name": "#bricolage"} in doc["tag"]
    assert doc["attachment"] == [{"type": "Image", "mediaType": "image/webp", "url": f"{BASE}/media/offers/k3y/1.webp",
                                  "name": "Une perceuse verte sur un établi", "width": 800, "height": 600}]
    assert "https://www.w3.org/ns/activitystreams#Public" in doc["to"]
    assert f"{BASE}/users/town/followers" in doc["cc"]
    terms = OFFER_CONTEXT[1]
    assert terms["vf"] == "https://w3id.org/valueflows/ont/vf#" and terms["purpose"] == "vf:purpose"
    assert terms["publishes"] == "vf:publishes" and terms["hasNumericalValue"] == "om2:hasNumericalValue"
    # The exact point never leaves the server (DESIGN.md §5).
    text = json.dumps(doc)
    assert "48.11731" not in text and "-1.67776" not in text


def test_round_trip_between_fedineighbour_towns():
    sent = offer(kind="co_purchase", category="jardin", terms={"type": "free"}, shares_total=4, shares_taken=1,
                 status="reserved", available_from=NOW, available_until=NOW + timedelta(days=3))
    doc = json.loads(json.dumps(build(sent)))
    got = offer_fields(parse_object(doc), now=NOW)
    for name in ("purpose", "kind", "category", "title", "status", "lat", "lon", "neighbourhood",
                 "shares_total", "shares_taken", "available_from", "available_until", "expires_at"):
        assert got[name] == getattr(sent, name), name
    assert got["description"] == sent.description
    assert got["terms"] == {"type": "free"} and got["ap_data"]["id"] == sent.ap_id
    loan = offer(kind="lend", terms={"type": "loan", "return_by": "2030-06-01T23:59:59Z"})
    assert offer_fields(parse_object(build(loan)))["terms"] == {"type": "loan", "return_by": "2030-06-01T23:59:59Z"}
    swap = offer(kind="swap", terms={"type": "swap", "swap_for": "un vélo"})
    assert offer_fields(parse_object(build(swap)))["terms"] == {"type": "swap", "swap_for": "un vélo"}
    hours = offer(kind="childcare", terms={"type": "time_credits", "hours": 2})
    assert offer_fields(parse_object(build(hours)))["terms"] == {"type": "time_credits", "hours": 2}


# -- what we understand ---------------------------------------------------------------------------------

def test_plain_fep0837_proposal():
    got = offer_fields(parse_object(load("fep0837_proposal.json")))
    assert got["purpose"] == "offer" and got["kind"] == "sell"
    assert got["title"] == "Remorque de vélo cargo"
    assert got["description"].startswith("Remorque pour vélo, 40 kg")
    assert got["terms"] == {"type": "price", "price_cents": 4500, "currency": "EUR"}
    assert (got["lat"], got["lon"]) == (48.1173, -1.6778)
    assert got["status"] == "open" and got["expires_at"] is None
    assert got["published"] == datetime(2025, 5, 3, 8, 41, 12, 204518, tzinfo=UTC)


def test_note_proposal_request():
    got = offer_fields(parse_object(load("fep0837_minimal_request.json")))
    assert got["purpose"] == "request" and got["kind"] == "help" and got["terms"] == {"type": "free"}
    assert got["title"] == "Help carrying a sofa"
    assert got["description"] == "Need two people on Saturday morning to carry a sofa to the 3rd floor."
    assert (got["lat"], got["lon"], got["neighbourhood"]) == (48.1101, -1.6795, "Old Town")
    assert got["expires_at"] == datetime(2031, 5, 10, 12, tzinfo=UTC)


def test_flohmarkt_item():
    create = parse_activity(load("flohmarkt_create_item.json"))
    got = offer_fields(create.object)
    assert got["purpose"] == "offer" and got["kind"] == "sell"
    assert got["title"] == "Röhrenradio Grundig"
    assert got["description"] == "Funktioniert, UKW und Mittelwelle. Abholung in der Altstadt."
    assert got["terms"] == {"type": "price", "price_cents": 2500, "currency": "EUR"}
    assert got["lat"] is None  # stock flohmarkt gives no place: the handler uses the origin town's centre
    assert create.object.attachments[0]["url"].startswith("https://floh.example/api/v1/image/")


def test_flohmarkt_give_away_with_coordinates():
    got = offer_fields(parse_object(load("flohmarkt_note_coordinates.json")))
    assert got["kind"] == "give" and got["terms"] == {"type": "free"}
    assert (got["lat"], got["lon"]) == (48.7758, 9.1829)
    assert got["title"] == "Kinderbett, Buche"


def test_a_plain_note_is_not_an_offer():
    note = {"id": "https://m.example/notes/1", "type": "Note", "content": "<p>hello</p>",
            "attributedTo": "https://m.example/users/a"}
    with pytest.raises(Unsupported):
        offer_fields(parse_object(note))


# -- NodeInfo town metadata -------------------------------------------------------------------------------

def test_town_from_nodeinfo():
    doc = {"version": "2.1", "software": {"name": "fedineighbour"},
           "metadata": {"town": {"name": "Saint-Martin", "code": "35001", "radius_km": 3,
                                 "centre": {"lat": 48.11, "lon": -1.68}}}}
    info = town_from_nodeinfo(doc, "a.example")
    assert (info.name, info.code, info.centre, info.radius_km, info.software) == (
        "Saint-Martin", "35001", (48.11, -1.68), 3.0, "fedineighbour")
    doc["metadata"]["town"]["centre"] = {"lat": 123, "lon": 0}
    assert town_from_nodeinfo(doc, "a.example").centre is None  # out of range: no centre, still a town
    assert town_from_nodeinfo({"metadata": {"town": {"name": " "}}}, "a.example") is None
    assert town_from_nodeinfo({"metadata": {}}, "a.example") is None
    assert town_from_nodeinfo("nope", "a.example") is None
