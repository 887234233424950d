"""Offer rows -> ActivityPub: a `["Note", "Proposal"]` object (DESIGN.md §4, FEP-0837).

`content` reads well alone on Mastodon (title, description, terms, place, hashtags, link) and uses only
p, br, a, strong, em, ul and li. FEP-0837 consumers read `purpose`, `publishes`, `reciprocal`,
`location` and `endTime`; fedineighbour peers also read our own terms (`offerKind`, `offerStatus`, ...,
namespace FN_NS) so that a copy in a neighbouring town keeps the kind, category and status. The
description travels as plain text in `source` (as Mastodon and Misskey do for the text they render).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from fedineighbour.federation.convert.to_ap import iso
from fedineighbour.neighbourhood.addresses import AS_PUBLIC

VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
FN_NS = "https://w3id.org/fedineighbour/ns#"  # an identifier for our terms, not fetched by anyone
FN_TERMS = ("offerKind", "offerStatus", "offerCategory", "town", "termsType", "swapFor", "sharesTotal",
            "sharesTaken", "carpoolFrom", "carpoolTo", "carpoolSeats")
FN_DATES = ("returnBy", "availableFrom", "availableUntil", "carpoolWhen")
OFFER_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    {
        "toot": "http://joinmastodon.org/ns#",
        "Hashtag": "as:Hashtag",
        "sensitive": "as:sensitive",
        "om2": OM2,
        "vf": VF,
        "Proposal": "vf:Proposal",
        "Intent": "vf:Intent",
        "Agreement": "vf:Agreement",
        "Commitment": "vf:Commitment",
        "action": "vf:action",
        "purpose": "vf:purpose",
        "unitBased": "vf:unitBased",
        "publishes": "vf:publishes",
        "reciprocal": "vf:reciprocal",
        "resourceConformsTo": {"@id": "vf:resourceConformsTo", "@type": "@id"},
        "resourceQuantity": "vf:resourceQuantity",
        "availableQuantity": "vf:availableQuantity",
        "stipulates": "vf:stipulates",
        "stipulatesReciprocal": "vf:stipulatesReciprocal",
        "satisfies": {"@id": "vf:satisfies", "@type": "@id"},
        "hasUnit": "om2:hasUnit",
        "hasNumericalValue": "om2:hasNumericalValue",
        "fn": FN_NS,
        **{term: f"fn:{term}" for term in FN_TERMS},
        **{term: {"@id": f"fn:{term}", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"}
           for term in FN_DATES},
    },
]
# Wikidata items of currencies, as in FEP-0837's example (Q4917 is the US dollar).
CURRENCIES = {"EUR": "https://www.wikidata.org/wiki/Q4916", "USD": "https://www.wikidata.org/wiki/Q4917",
              "GBP": "https://www.wikidata.org/wiki/Q25224", "CHF": "https://www.wikidata.org/wiki/Q25344",
              "CAD": "https://www.wikidata.org/wiki/Q1104069"}
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
GOODS = ("give", "sell", "swap", "co_purchase")
ACTIONS = {"lend": "transferCustody"}  # the rest: goods "transfer", services "deliverService"

LABELS: dict[str, dict[str, Any]] = {
    "fr": {
        "purpose": {"offer": "Offre", "request": "Demande"},
        "kind": {"lend": "Prêt", "give": "Don", "sell": "Vente", "swap": "Échange", "co_purchase": "Achat groupé",
                 "help": "Coup de main", "carpool": "Covoiturage", "childcare": "Garde d'enfants",
                 "solidarity": "Solidarité", "housing": "Logement"},
        "borrow": "Emprunt",
        "status": {"reserved": "Réservé", "done": "Terminé", "closed": "Clos", "expired": "Expiré"},
        "terms": "En échange", "free": "gratuit", "loan": "prêt gratuit", "return_by": "à rendre le {d}",
        "swap": "échange", "swap_for": "échange contre {x}", "time_credits": "{h} h de temps (banque de temps)",
        "place": "Lieu", "approx": "approximatif", "available": "Disponible", "from": "à partir du {d}",
        "until": "jusqu'au {d}", "expires": "Annonce valable jusqu'au {d}", "trip": "Trajet", "on": "le {d}",
        "seats": "{n} place(s)", "shares": "Parts", "shares_fmt": "{taken} sur {total} déjà prises",
        "reply": "Répondez à ce message pour contacter l'auteur.", "date": "%d/%m/%Y", "time": "%d/%m/%Y %H:%M",
        "tags": {"offer": "offre", "request": "demande", "lend": "pret", "give": "don", "sell": "vente",
                 "swap": "troc", "co_purchase": "achatgroupe", "help": "entraide", "carpool": "covoiturage",
                 "childcare": "gardedenfants", "solidarity": "solidarite", "housing": "logement"},
    },
    "en": {
        "purpose": {"offer": "Offer", "request": "Request"},
        "kind": {"lend": "Lending", "give": "Give-away", "sell": "For sale", "swap": "Swap",
                 "co_purchase": "Group purchase", "help": "Helping hand", "carpool": "Carpool",
                 "childcare": "Childcare", "solidarity": "Solidarity", "housing": "Housing"},
        "borrow": "Borrowing",
        "status": {"reserved": "Reserved", "done": "Done", "closed": "Closed", "expired": "Expired"},
        "terms": "In return", "free": "free", "loan": "free loan", "return_by": "back by {d}", "swap": "swap",
        "swap_for": "swap for {x}", "time_credits": "{h} h of time (time bank)", "place": "Place",
        "approx": "approximate", "available": "Available", "from": "from {d}", "until": "until {d}",
        "expires": "Listed until {d}", "trip": "Trip", "on": "on {d}", "seats": "{n} seat(s)",
        "shares": "Shares", "shares_fmt": "{taken} of {total} taken",
        "reply": "Reply to this post to contact the author.",
        "date": "%Y-%m-%d", "time": "%Y-%m-%d %H:%M",
        "tags": {"offer": "offer", "request": "request", "lend": "lending", "give": "giveaway", "sell": "forsale",
                 "swap": "swap", "co_purchase": "grouppurchase", "help": "mutualaid", "carpool": "carpool",
                 "childcare": "childcare", "solidarity": "solidarity", "housing": "housing"},
    },
}


def labels(language: str) -> dict[str, Any]:
    return LABELS.get(language, LABELS["en"])


def tag_name(text: str) -> str:
    """A hashtag name from a category: letters and digits only ("bricolage", "jardin2")."""
    return re.sub(r"[\W_]+", "", text or "")


def hashtags(offer: Any, language: str) -> list[str]:
    words = labels(language)["tags"]
    out = [words.get(offer.purpose, offer.purpose), words.get(offer.kind, tag_name(offer.kind))]
    category = tag_name(offer.category)
    if category and category.lower() not in out:
        out.append(category.lower())
    return [t for t in out if t]


def _date(value: Any, fmt: str) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.strftime(fmt) if isinstance(value, datetime) else ""


def price_text(cents: int, currency: str, language: str) -> str:
    amount = f"{cents / 100:.2f}".removesuffix(".00")
    symbol = SYMBOLS.get(currency)
    if language == "fr":
        return f"{amount.replace('.', ',')} {symbol or currency}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


def terms_text(terms: dict, language: str) -> str:
    lab = labels(language)
    kind = (terms or {}).get("type", "free")
    if kind == "price" and terms.get("price_cents"):
        return price_text(int(terms["price_cents"]), str(terms.get("currency") or "EUR"), language)
    if kind == "loan":
        back = _date(terms.get("return_by"), lab["date"])
        return lab["loan"] + (", " + lab["return_by"].format(d=back) if back else "")
    if kind == "swap":
        return lab["swap_for"].format(x=terms["swap_for"]) if terms.get("swap_for") else lab["swap"]
    if kind == "time_credits":
        return lab["time_credits"].format(h=f"{terms.get('hours', 1):g}")
    return lab["free"]


def status_of(offer: Any, now: datetime | None = None) -> str:
    if offer.deleted_at is not None:
        return "closed"
    if offer.status in ("open", "reserved") and offer.expires_at is not None and now and offer.expires_at <= now:
        return "expired"
    return offer.status


def _paragraphs(text: str) -> str:
    parts = [p for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]
    return "".join("<p>" + "<br>".join(_esc(line.strip()) for line in p.split("\n")) + "</p>" for p in parts)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def place_name(offer: Any, town_name: str) -> str:
    return offer.neighbourhood or offer.town or town_name


def content_html(offer: Any, *, town_name: str, language: str, tag_url: str,
                 now: datetime | None = None) -> str:
    """The HTML a Mastodon reader sees: only p, br, a, strong, em, ul, li."""
    lab = labels(language)
    esc, attr = _esc, html.escape
    kind = lab["borrow"] if (offer.kind == "lend" and offer.purpose == "request") else lab["kind"].get(offer.kind,
                                                                                                    offer.kind)
    head = f"{lab['purpose'].get(offer.purpose, offer.purpose)} · {kind} — {offer.title}"
    status = status_of(offer, now)
    if status != "open":
        head = f"[{lab['status'].get(status, status)}] {head}"
    out = [f"<p><strong>{esc(head)}</strong></p>", _paragraphs(offer.description)]
    items = [(lab["terms"], terms_text(offer.terms or {}, language))]
    where = place_name(offer, town_name)
    if offer.neighbourhood and town_name and town_name != offer.neighbourhood:
        where = f"{offer.neighbourhood}, {town_name}"
    items.append((lab["place"], f"{where} ({lab['approx']})"))
    if offer.carpool:
        trip = f"{offer.carpool.get('from', '')} → {offer.carpool.get('to', '')}"
        if offer.carpool.get("when"):
            trip += ", " + lab["on"].format(d=_date(offer.carpool["when"], lab["time"]))
        if offer.carpool.get("seats"):
            trip += ", " + lab["seats"].format(n=offer.carpool["seats"])
        items.append((lab["trip"], trip))
    if offer.kind == "co_purchase" and offer.shares_total:
        items.append((lab["shares"], lab["shares_fmt"].format(taken=offer.shares_taken, total=offer.shares_total)))
    window = [lab["from"].format(d=_date(offer.available_from, lab["date"]))] if offer.available_from else []
    if offer.available_until:
        window.append(lab["until"].format(d=_date(offer.available_until, lab["date"])))
    if window:
        items.append((lab["available"], " ".join(window)))
    out.append("<ul>" + "".join(f"<li><strong>{esc(k)} :</strong> {esc(v)}</li>" if language == "fr" else
                                f"<li><strong>{esc(k)}:</strong> {esc(v)}</li>" for k, v in items) + "</ul>")
    if offer.expires_at:
        out.append(f"<p><em>{esc(lab['expires'].format(d=_date(offer.expires_at, lab['date'])))}</em></p>")
    tags = " ".join(f'<a href="{attr(tag_url.format(tag=t))}" class="mention hashtag" rel="tag">#{esc(t)}</a>'
                    for t in hashtags(offer, language))
    link = offer.url or offer.ap_id
    out.append(f"<p>{tags}</p>")
    out.append(f'<p><a href="{attr(link)}">{esc(link)}</a><br>{esc(lab["reply"])}</p>')
    return "".join(part for part in out if part)


def _quantity(unit: str, value: Any) -> dict[str, str]:
    return {"hasUnit": unit, "hasNumericalValue": str(value)}


def intents(offer: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """FEP-0837 `publishes` and `reciprocal` (None: nothing asked in return)."""
    action = ACTIONS.get(offer.kind) or ("transfer" if offer.kind in GOODS else "deliverService")
    primary: dict[str, Any] = {"id": f"{offer.ap_id}#primary", "type": "Intent", "action": action,
                               "resourceQuantity": _quantity("one", 1)}
    if offer.kind == "co_purchase" and offer.shares_total:
        primary["availableQuantity"] = _quantity("one", max(0, offer.shares_total - offer.shares_taken))
    terms = offer.terms or {}
    kind = terms.get("type", "free")
    reciprocal: dict[str, Any] | None = None
    if kind == "price" and terms.get("price_cents"):
        currency = str(terms.get("currency") or "EUR")
        reciprocal = {"action": "transfer", "resourceConformsTo": CURRENCIES.get(currency, currency),
                      "resourceQuantity": _quantity("one", f"{int(terms['price_cents']) / 100:.2f}")}
    elif kind == "swap":
        reciprocal = {"action": "transfer", "resourceQuantity": _quantity("one", 1)}
        if terms.get("swap_for"):
            reciprocal["name"] = terms["swap_for"]
    elif kind == "time_credits":
        reciprocal = {"action": "deliverService", "resourceQuantity": _quantity("hour", f"{terms.get('hours', 1):g}")}
    if reciprocal is not None:
        reciprocal = {"id": f"{offer.ap_id}#reciprocal", "type": "Intent", **reciprocal}
    return primary, reciprocal


def addressing(offer: Any, author: Any, town: Any | None) -> tuple[list[str], list[str]]:
    followers = [u for u in (author.followers_url, getattr(town, "followers_url", None)) if u]
    if offer.visibility == "unlisted":
        return followers, [AS_PUBLIC]
    if offer.visibility == "followers":
        return followers, []
    return [AS_PUBLIC], followers


def media_url(media: Any, base: str) -> str:
    return media.remote_url or f"{base}/media/{media.path}"


def offer_object(offer: Any, author: Any, *, base: str, town_name: str, language: str = "fr",
                 town: Any | None = None, media: list | None = None, context: bool = True,
                 now: datetime | None = None) -> dict[str, Any]:
    """The object for Create/Update and for GET /offers/{key}. `town` is the town Group account."""
    to, cc = addressing(offer, author, town)
    tag_url = base + "/tags/{tag}"
    primary, reciprocal = intents(offer)
    point_name = place_name(offer, town_name)
    obj: dict[str, Any] = {
        "id": offer.ap_id,
        "type": ["Note", "Proposal"],
        "attributedTo": author.ap_id,
        "name": offer.title,
        "content": content_html(offer, town_name=town_name, language=language, tag_url=tag_url, now=now),
        "source": {"content": offer.description or "", "mediaType": "text/plain"},
        "url": offer.url or offer.ap_id,
        "published": iso(offer.published),
        "to": to,
        "cc": cc,
        "sensitive": False,
        "purpose": offer.purpose,
        "publishes": primary,
        "unitBased": offer.kind == "co_purchase",
        "location": {"type": "Place", "name": point_name, "latitude": offer.lat, "longitude": offer.lon},
        "tag": [{"type": "Hashtag", "href": tag_url.format(tag=t), "name": f"#{t}"}
                for t in hashtags(offer, language)],
        "attachment": [{"type": "Image", "mediaType": m.mime, "url": media_url(m, base), "name": m.alt_text or "",
                        **({"width": m.width, "height": m.height} if m.width and m.height else {})}
                       for m in media or []],
        "offerKind": offer.kind,
        "offerStatus": status_of(offer),
        "town": offer.town or town_name,
        "termsType": (offer.terms or {}).get("type", "free"),
    }
    if language:
        obj["contentMap"] = {language: obj["content"]}
    if reciprocal is not None:
        obj["reciprocal"] = reciprocal
    if offer.expires_at:
        obj["endTime"] = iso(offer.expires_at)
    if offer.updated:
        obj["updated"] = iso(offer.updated)
    if offer.category:
        obj["offerCategory"] = offer.category
    terms = offer.terms or {}
    if terms.get("swap_for"):
        obj["swapFor"] = terms["swap_for"]
    if terms.get("return_by"):
        obj["returnBy"] = terms["return_by"]
    if offer.available_from:
        obj["availableFrom"] = iso(offer.available_from)
    if offer.available_until:
        obj["availableUntil"] = iso(offer.available_until)
    if offer.kind == "co_purchase" and offer.shares_total:
        obj.update(sharesTotal=offer.shares_total, sharesTaken=offer.shares_taken)
    if offer.carpool:
        obj.update(carpoolFrom=offer.carpool.get("from"), carpoolTo=offer.carpool.get("to"),
                   carpoolSeats=offer.carpool.get("seats"))
        if offer.carpool.get("when"):
            obj["carpoolWhen"] = offer.carpool["when"]
    if context:
        obj = {"@context": OFFER_CONTEXT, **obj}
    return obj


def tombstone(offer: Any) -> dict[str, Any]:
    return {"id": offer.ap_id, "type": "Tombstone", "formerType": "Note", "deleted": iso(offer.deleted_at)}
