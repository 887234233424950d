"""What an offer or request may contain: pure validation, no database.

`validate_offer` turns a JSON body into model values, or raises `OfferInvalid` carrying every problem
as {"<field>": "<message>"} (the API answers 422 with it). Nested fields are named by their top-level
field, with the detail in the message (`"terms": "a give-away has no price"`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fedineighbour.neighbourhood.places import valid_point

PURPOSES = ("offer", "request")
KINDS = ("lend", "give", "sell", "swap", "co_purchase", "help", "carpool", "childcare", "solidarity", "housing")
TERMS = ("free", "loan", "price", "swap", "time_credits")
STATUSES = ("open", "reserved", "done", "closed")
DEFAULT_TERMS = {"lend": "loan", "give": "free", "sell": "price", "swap": "swap"}
DEFAULT_EXPIRY = timedelta(days=30)
MAX_EXPIRY = timedelta(days=365)
DEFAULT_LOAN = timedelta(days=14)
DEFAULT_SHARES = 2
TITLE_MAX = 140
DESCRIPTION_MAX = 5000
CATEGORY_RE = re.compile(r"^[\w-]{1,40}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_PRICE_CENTS = 100_000_000
EDITABLE = ("title", "description", "category", "terms", "available_from", "available_until", "expires_at",
            "location", "use_home", "neighbourhood", "shares_total", "carpool")


class OfferInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_time(value: object, *, end_of_day: bool = False) -> datetime:
    """ISO 8601 date or date-time. A bare date is midnight UTC (or the last second of the day)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected an ISO 8601 date or date-time")
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            t = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return t + timedelta(days=1, seconds=-1) if end_of_day else t
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected an ISO 8601 date or date-time such as 2025-06-01T18:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(errors: dict, data: dict, field: str, maximum: int, *, required: bool = False) -> str | None:
    if field not in data or data[field] is None:
        if required:
            errors[field] = "required"
        return None
    value = data[field]
    if not isinstance(value, str):
        errors[field] = "expected text"
        return None
    value = value.strip()
    if required and not value:
        errors[field] = "required"
        return None
    if len(value) > maximum:
        errors[field] = f"at most {maximum} characters"
        return None
    return value


def _int(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _terms(errors: dict, raw: object, kind: str, now: datetime) -> dict[str, Any] | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors["terms"] = "expected an object such as {\"type\": \"free\"}"
        return None
    ttype = raw.get("type", DEFAULT_TERMS.get(kind, "free"))
    if ttype not in TERMS:
        errors["terms"] = f"type: expected one of {', '.join(TERMS)}"
        return None
    has_price = raw.get("price_cents") not in (None, 0)
    if kind == "give" and (ttype == "price" or has_price):
        errors["terms"] = "a give-away has no price"
        return None
    terms: dict[str, Any] = {"type": ttype}
    if ttype == "price":  # without price_cents: a price to agree on
        if raw.get("price_cents") is not None:
            price = _int(raw.get("price_cents"), 1, MAX_PRICE_CENTS)
            if price is None:
                errors["terms"] = f"price_cents: a whole number of cents from 1 to {MAX_PRICE_CENTS}"
                return None
            terms["price_cents"] = price
        currency = raw.get("currency", "EUR")
        if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
            errors["terms"] = "currency: a three-letter code such as EUR"
            return None
        terms["currency"] = currency
    elif has_price:
        errors["terms"] = f"price_cents: only with type price (this is {ttype})"
        return None
    if ttype == "swap" and raw.get("swap_for") is not None:
        if not isinstance(raw["swap_for"], str) or len(raw["swap_for"]) > 200:
            errors["terms"] = "swap_for: text of at most 200 characters"
            return None
        terms["swap_for"] = raw["swap_for"].strip()
    if ttype == "loan" and raw.get("return_by") is not None:
        try:
            return_by = parse_time(raw["return_by"], end_of_day=True)
        except ValueError as exc:
            errors["terms"] = f"return_by: {exc}"
            return None
        if return_by <= now:
            errors["terms"] = "return_by: must be in the future"
            return None
        terms["return_by"] = return_by.strftime("%Y-%m-%dT%H:%M:%SZ")
    if ttype == "time_credits":
        hours = raw.get("hours", 1)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 100:
            errors["terms"] = "hours: a number of hours from 0 to 100"
            return None
        terms["hours"] = hours
    return terms


def _carpool(errors: dict, raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        errors["carpool"] = "expected {\"from\", \"to\", \"when\", \"seats\"}"
        return None
    out: dict[str, Any] = {}
    for end in ("from", "to"):
        value = raw.get(end)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            errors["carpool"] = f"{end}: required, text of at most 200 characters"
            return None
        out[end] = value.strip()
    if raw.get("when") is not None:
        try:
            out["when"] = parse_time(raw["when"]).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError as exc:
            errors["carpool"] = f"when: {exc}"
            return None
    seats = _int(raw.get("seats", 1), 1, 8)
    if seats is None:
        errors["carpool"] = "seats: a whole number from 1 to 8"
        return None
    out["seats"] = seats
    return out


def _location(errors: dict, raw: object) -> tuple[float, float] | None:
    if not isinstance(raw, dict):
        errors["location"] = "expected {\"lat\": …, \"lon\": …}"
        return None
    problem = valid_point(raw.get("lat"), raw.get("lon"))
    if problem:
        errors["location"] = problem
        return None
    return float(raw["lat"]), float(raw["lon"])


def _times(errors: dict, data: dict, now: datetime, *, partial: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("available_from", "available_until", "expires_at"):
        if data.get(field) is None:
            if field in data and field != "expires_at":
                out[field] = None  # explicitly cleared
            continue
        try:
            out[field] = parse_time(data[field], end_of_day=field != "available_from")
        except ValueError as exc:
            errors[field] = str(exc)
    if "expires_at" in out:
        if out["expires_at"] <= now:
            errors["expires_at"] = "must be in the future"
        elif out["expires_at"] > now + MAX_EXPIRY:
            errors["expires_at"] = f"at most {MAX_EXPIRY.days} days ahead"
    elif not partial:
        out["expires_at"] = now + DEFAULT_EXPIRY
    return out


def validate_offer(data: dict[str, Any], *, now: datetime, current: dict[str, Any] | None = None,
                   neighbourhoods: tuple[str, ...] = ()) -> dict[str, Any]:
    """Model values from a create body, or (with `current`, the offer's values) from an edit body.

    Returns the fields to store plus `location` ((lat, lon) or None) and `use_home` (bool)."""
    partial = current is not None
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if current is not None:
        for field in ("purpose", "kind"):
            if field in data and data[field] != current[field]:
                errors[field] = "cannot be changed: close this post and write a new one"
        unknown = [k for k in data if k not in EDITABLE and k not in ("purpose", "kind")]
        if unknown:
            errors[unknown[0]] = "not editable"
        purpose, kind = current["purpose"], current["kind"]
    else:
        purpose, kind = data.get("purpose"), data.get("kind")
        if purpose not in PURPOSES:
            errors["purpose"] = f"expected one of {', '.join(PURPOSES)}"
        if kind not in KINDS:
            errors["kind"] = f"expected one of {', '.join(KINDS)}"
        out.update(purpose=purpose, kind=kind)
    title = _text(errors, data, "title", TITLE_MAX, required=not partial or "title" in data)
    if title is not None:
        out["title"] = title
    description = _text(errors, data, "description", DESCRIPTION_MAX)
    if description is not None or not partial:
        out["description"] = description or ""
    if data.get("category") is not None or not partial:
        category = data.get("category") or ""
        if not isinstance(category, str) or (category and not CATEGORY_RE.match(category.strip().lower())):
            errors["category"] = "one word of at most 40 letters, digits, - or _"
        else:
            out["category"] = category.strip().lower()
    if kind in KINDS and ("terms" in data or not partial):
        terms = _terms(errors, data.get("terms"), kind, now)
        if terms is not None:
            out["terms"] = terms
    out.update(_times(errors, data, now, partial=partial))
    starts = out.get("available_from", (current or {}).get("available_from"))
    ends = out.get("available_until", (current or {}).get("available_until"))
    if starts and ends and ends < starts and "available_until" not in errors:
        errors["available_until"] = "must not be before available_from"
    if data.get("shares_total") is not None or (not partial and kind == "co_purchase"):
        if kind != "co_purchase":
            errors["shares_total"] = "only for kind co_purchase"
        else:
            shares = _int(data.get("shares_total", DEFAULT_SHARES), 1, 100)
            if shares is None:
                errors["shares_total"] = "a whole number from 1 to 100"
            elif current is not None and shares < current.get("shares_taken", 0):
                errors["shares_total"] = f"{current['shares_taken']} shares are already taken"
            else:
                out["shares_total"] = shares
    if data.get("carpool") is not None:
        if kind != "carpool":
            errors["carpool"] = "only for kind carpool"
        else:
            carpool = _carpool(errors, data["carpool"])
            if carpool is not None:
                out["carpool"] = carpool
    use_home = data.get("use_home", False)
    if not isinstance(use_home, bool):
        errors["use_home"] = "expected true or false"
        use_home = False
    out["use_home"] = use_home
    out["location"] = None
    if data.get("location") is not None and not use_home:
        out["location"] = _location(errors, data["location"])
    elif not use_home and not partial:
        errors["location"] = "required: {\"lat\": …, \"lon\": …}, or \"use_home\": true"
    if data.get("neighbourhood") is not None:
        name = data["neighbourhood"]
        match = [n for n in neighbourhoods if isinstance(name, str) and n.casefold() == name.strip().casefold()]
        if neighbourhoods and not match:
            errors["neighbourhood"] = f"expected one of {', '.join(neighbourhoods)}"
        elif not isinstance(name, str) or len(name) > 100:
            errors["neighbourhood"] = "text of at most 100 characters"
        else:
            out["neighbourhood"] = match[0] if match else name.strip()
    if errors:
        raise OfferInvalid(errors)
    return out
