"""Remote offers -> Offer row values: FEP-0837 `Proposal` (alone or with `Note`), flohmarkt's
`flohmarkt:data` Notes, and our own objects (offers_to_ap.py), whose extra terms keep kind, category and
status. Pure functions: no database, no network. The caller adds author, town, listed and local=False.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fedineighbour.federation.convert.ap_json import as_list, date_of, float_of, id_of, str_of
from fedineighbour.federation.convert.from_ap import ParsedObject, Unsupported
from fedineighbour.federation.convert.html import html_to_text
from fedineighbour.federation.convert.offers_to_ap import CURRENCIES, LABELS
from fedineighbour.federation.convert.to_ap import iso
from fedineighbour.neighbourhood.exchange.offer_rules import CATEGORY_RE, KINDS, PURPOSES, STATUSES, TERMS

TITLE_MAX = 255
DESCRIPTION_MAX = 5000
CURRENCY_BY_ITEM = {url.rsplit("/", 1)[-1]: code for code, url in CURRENCIES.items()}
SYMBOL_CURRENCY = {"€": "EUR", "$": "USD", "£": "GBP"}
KIND_BY_TAG = {tag: kind for lang in LABELS.values() for kind, tag in lang["tags"].items() if kind in KINDS}
NUMBER_RE = re.compile(r"\d+(?:[.,]\d{1,2})?")


def _text(value: Any, limit: int) -> str:
    text = str_of(value) or ""
    return " ".join(text.split())[:limit] if limit <= TITLE_MAX else text.strip()[:limit]


def _price_cents(value: Any) -> int | None:
    """"25", "1 €", "12,50", 30 -> cents; None when there is no positive number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        m = NUMBER_RE.search(str_of(value) or "")
        if not m:
            return None
        number = float(m.group(0).replace(",", "."))
    cents = round(number * 100)
    return cents if 0 < cents <= 100_000_000 else None


def _currency(value: Any, fallback_text: str = "") -> str:
    code = (id_of(value) or str_of(value) or "").strip()
    if code.rsplit("/", 1)[-1] in CURRENCY_BY_ITEM:
        return CURRENCY_BY_ITEM[code.rsplit("/", 1)[-1]]
    if re.fullmatch(r"[A-Za-z]{3}", code):
        return code.upper()
    for symbol, currency in SYMBOL_CURRENCY.items():
        if symbol in fallback_text:
            return currency
    return "EUR"


def _quantity(intent: Any) -> tuple[str | None, str | None]:
    q = intent.get("resourceQuantity") if isinstance(intent, dict) else None
    if not isinstance(q, dict):
        return None, None
    value = q.get("hasNumericalValue")
    return (str_of(q.get("hasUnit")) or id_of(q.get("hasUnit"))), (str(value) if isinstance(value, int | float)
                                                                    and not isinstance(value, bool) else str_of(value))


def _terms_fep(raw: dict, kind: str) -> dict[str, Any]:
    """Terms from the reciprocal Intent (and our termsType/swapFor/returnBy when present)."""
    reciprocal = next((r for r in as_list(raw.get("reciprocal")) if isinstance(r, dict)), None)
    declared = str_of(raw.get("termsType"))
    terms: dict[str, Any] = {"type": "free"}
    if reciprocal is not None:
        unit, value = _quantity(reciprocal)
        action = (str_of(reciprocal.get("action")) or "").removeprefix("vf:")
        conforms = id_of(reciprocal.get("resourceConformsTo")) or ""
        cents = _price_cents(value)
        if unit == "hour" or (action == "deliverService" and declared == "time_credits"):
            hours = float_of(value, 100) or 1
            terms = {"type": "time_credits", "hours": int(hours) if hours == int(hours) else hours}
        elif cents and (conforms or declared == "price") and declared != "swap":
            terms = {"type": "price", "price_cents": cents, "currency": _currency(conforms)}
        else:
            terms = {"type": "swap"}
            swap_for = str_of(reciprocal.get("name")) or str_of(raw.get("swapFor"))
            if swap_for:
                terms["swap_for"] = swap_for[:200]
    elif declared == "loan" or kind == "lend":
        terms = {"type": "loan"}
    if terms["type"] == "loan" or declared == "loan":
        terms["type"] = "loan"
        back = date_of(raw.get("returnBy"))
        if back:
            terms["return_by"] = iso(back)
    return terms


def _kind(raw: dict, obj: ParsedObject, terms: dict, proposal: dict) -> str:
    declared = str_of(raw.get("offerKind"))
    if declared in KINDS:
        return declared
    for tag in obj.hashtags:
        kind = KIND_BY_TAG.get(tag.lower())
        if kind:
            return kind
    action = ((proposal.get("publishes") or {}).get("action") or "").removeprefix("vf:")
    if action == "transferCustody":
        return "lend"
    if action == "deliverService":
        return "help"
    return {"price": "sell", "swap": "swap", "loan": "lend"}.get(terms["type"], "give")


def _category(raw: dict, obj: ParsedObject, kind: str) -> str:
    declared = (str_of(raw.get("offerCategory")) or "").strip().lower()
    if declared and CATEGORY_RE.match(declared):
        return declared
    skip = set(LABELS["fr"]["tags"].values()) | set(LABELS["en"]["tags"].values())
    for tag in obj.hashtags:
        if tag.lower() not in skip and CATEGORY_RE.match(tag.lower()):
            return tag.lower()[:40]
    return ""


def _description(raw: dict, obj: ParsedObject) -> str:
    source = raw.get("source")
    if isinstance(source, dict) and (str_of(source.get("mediaType")) or "text/plain").startswith("text/plain"):
        text = str_of(source.get("content"))
        if text is not None:
            return text.strip()[:DESCRIPTION_MAX]
    return html_to_text(obj.content or "")[:DESCRIPTION_MAX]


def _point(obj: ParsedObject, proposal: dict) -> tuple[float | None, float | None, str]:
    place = obj.location or proposal.get("location") or {}
    return place.get("latitude"), place.get("longitude"), (place.get("name") or "")[:255]


def _carpool(raw: dict) -> dict[str, Any] | None:
    start, end = str_of(raw.get("carpoolFrom")), str_of(raw.get("carpoolTo"))
    if not (start and end):
        return None
    out: dict[str, Any] = {"from": start[:200], "to": end[:200]}
    when = date_of(raw.get("carpoolWhen"))
    if when:
        out["when"] = iso(when)
    seats = raw.get("carpoolSeats")
    out["seats"] = seats if isinstance(seats, int) and not isinstance(seats, bool) and 1 <= seats <= 8 else 1
    return out


def _flohmarkt(obj: ParsedObject, proposal: dict) -> dict[str, Any]:
    data = obj.raw.get("flohmarkt:data") or {}
    title = _text(data.get("name"), TITLE_MAX) or _text(obj.name, TITLE_MAX)
    description = (str_of(data.get("description")) or html_to_text(obj.content or "")).strip()[:DESCRIPTION_MAX]
    price_raw = data.get("price")
    cents = _price_cents(price_raw)
    terms: dict[str, Any] = {"type": "free"}
    if cents:
        terms = {"type": "price", "price_cents": cents,
                 "currency": _currency(data.get("currency"), str_of(price_raw) or "")}
    return {"purpose": "offer", "kind": "sell" if cents else "give", "category": "", "title": title,
            "description": description, "terms": terms}


def offer_fields(obj: ParsedObject, *, now: datetime | None = None) -> dict[str, Any]:
    """Offer model values from a parsed remote object; Unsupported when it is not a usable offer."""
    if not obj.is_proposal or not obj.proposal:
        raise Unsupported("not an offer: neither a Proposal nor a flohmarkt item")
    raw, proposal = obj.raw, obj.proposal
    if proposal.get("source") == "flohmarkt":
        values = _flohmarkt(obj, proposal)
    else:
        purpose = proposal.get("purpose") if proposal.get("purpose") in PURPOSES else "offer"
        provisional = _terms_fep(raw, str_of(raw.get("offerKind")) or "")
        kind = _kind(raw, obj, provisional, proposal)
        terms = _terms_fep(raw, kind)
        title = _text(obj.name, TITLE_MAX) or _text(html_to_text(obj.content or ""), 140)
        values = {"purpose": purpose, "kind": kind, "category": _category(raw, obj, kind), "title": title,
                  "description": _description(raw, obj), "terms": terms}
    if not values["title"]:
        raise Unsupported("offer without a title or text")
    if values["terms"].get("type") not in TERMS:
        values["terms"] = {"type": "free"}
    lat, lon, place_name = _point(obj, proposal)
    status = str_of(raw.get("offerStatus"))
    shares_total = raw.get("sharesTotal")
    shares_taken = raw.get("sharesTaken")
    values.update(
        ap_id=obj.ap_id, url=obj.url or obj.ap_id, lat=lat, lon=lon, neighbourhood=place_name,
        content_html=obj.content or "", status=status if status in STATUSES else "open",
        expires_at=obj.end_time, published=obj.published or now or datetime.now(UTC), updated=obj.updated,
        available_from=date_of(raw.get("availableFrom")), available_until=date_of(raw.get("availableUntil")),
        carpool=_carpool(raw) if values["kind"] == "carpool" else None,
        shares_total=shares_total if isinstance(shares_total, int) and not isinstance(shares_total, bool) else None,
        shares_taken=shares_taken if isinstance(shares_taken, int) and not isinstance(shares_taken, bool) else 0,
        ap_data=raw, visibility="public",
    )
    return values  # search_text is derived by Offer.save()


def town_claimed(obj: ParsedObject) -> str | None:
    """The origin town's name as the object states it (our own `town` term), if any."""
    name = str_of(obj.raw.get("town"))
    return " ".join(name.split())[:255] if name and name.strip() else None
