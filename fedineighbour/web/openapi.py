"""The OpenAPI 3.1 document of the JSON API, served at /api/openapi.json. Written by hand, kept next to
the routes: every path of web/routes.py under /api/ appears here (tests/web/test_offers_api.py checks)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fedineighbour.config import LimitsSettings
from fedineighbour.neighbourhood.exchange.offer_rules import KINDS, PURPOSES, TERMS
from fedineighbour.neighbourhood.exchange.search import MAX_LIMIT, MAX_RADIUS_KM, ORDERS, STATUS_FILTERS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "422": {"$ref": "#/components/responses/Invalid"},
}
WRITE_ERRORS = {**ERRORS, "429": {"$ref": "#/components/responses/TooMany"}}
STATE_ERRORS = {**WRITE_ERRORS, "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"},
                "409": {"$ref": "#/components/responses/Conflict"}}
NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
BAD_BODY = {"400": {"$ref": "#/components/responses/BadRequest"}}
KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 32},
       "description": "the `key` of a local post"}


def _body_required(schema: dict[str, Any]) -> bool:
    """An empty body is read as {}: it may be left out exactly when no property is required."""
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return bool(schema.get("required"))


def _op(summary: str, responses: dict[str, Any], *, body: str | dict | None = None, params: list | None = None,
        auth: bool = True, tag: str = "offers") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        schema = _ref(body) if isinstance(body, str) else body
        op["requestBody"] = {"required": _body_required(schema),
                             "content": {"application/json": {"schema": schema}}}
        responses.update(BAD_BODY)  # a body that is not a JSON object
    if params:
        op["parameters"] = params
        if any(p["in"] == "path" for p in params):
            responses.update(NOT_FOUND)  # no such thing, or a path that no route takes (e.g. a non-integer id)
    if not auth:
        op["security"] = [{}, {"bearer": []}]
    return op


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


SEARCH_PARAMS = [
    _q("lat", {"type": "number", "minimum": -90, "maximum": 90}, "centre of the search (with lon)"),
    _q("lon", {"type": "number", "minimum": -180, "maximum": 180}, "centre of the search (with lat)"),
    _q("near", {"enum": ["home"]}, "search around the signed-in resident's home instead of lat/lon"),
    _q("radius_km", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS_KM},
       "default 10 when a centre is given; measured to the published (fuzzed) point of others' posts"),
    _q("q", {"type": "string"}, "words that must all appear in title, description or category "
                                "(case and accents ignored)"),
    _q("purpose", {"enum": list(PURPOSES)}, ""),
    _q("kind", {"enum": list(KINDS)}, ""),
    _q("category", {"type": "string"}, ""),
    _q("status", {"enum": list(STATUS_FILTERS), "default": "open"}, "open excludes expired posts"),
    _q("order", {"enum": list(ORDERS)}, "default distance with a centre, else date (newest first)"),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20}, ""),
    _q("cursor", {"type": "string", "format": "cursor"}, "next_cursor of the previous page (opaque)"),
]

DT = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}  # a row id: what the database's integer holds
NOT_BLANK = "[^\\s\\x1c-\\x1f\\x85]"  # a character Python's str.strip() keeps: the server checks with it
NOTE_TEXT = {"type": "string", "pattern": NOT_BLANK, "maxLength": 5000, "description": "not blank"}
DT_OR_DATE = {"type": "string", "description": "ISO 8601 date-time, or a date"}

SCHEMAS: dict[str, Any] = {
    "Errors": {"type": "object", "required": ["errors"], "properties": {
        "error": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "one message per field in error, e.g. {\"title\": \"required\"}"}}},
    "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
    "Point": {"type": "object", "required": ["lat", "lon"], "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180}}},
    "Terms": {"type": "object", "description": "what is asked in return (default from kind: give free, "
              "lend loan, sell price, swap swap, else free). A give-away has no price.", "properties": {
        "type": {"enum": list(TERMS)},
        "price_cents": {"type": "integer", "minimum": 1}, "currency": {"type": "string", "default": "EUR"},
        "swap_for": {"type": "string"}, "return_by": DT_OR_DATE, "hours": {"type": "number"}}},
    "Carpool": {"type": "object", "required": ["from", "to"], "properties": {
        "from": {"type": "string"}, "to": {"type": "string"}, "when": DT_OR_DATE,
        "seats": {"type": "integer", "minimum": 1, "maximum": 8, "default": 1}}},
    "OfferCreate": {"type": "object", "required": ["purpose", "kind", "title"], "properties": {
        "purpose": {"enum": list(PURPOSES)}, "kind": {"enum": list(KINDS)},
        "title": {"type": "string", "pattern": NOT_BLANK, "maxLength": 140},
        "description": {"type": "string", "maxLength": 5000},
        "category": {"type": "string", "pattern": "^[\\w-]{1,40}$"},
        "location": {**_ref("Point"), "description": "the exact point: stays on the server"},
        "use_home": {"type": "boolean", "description": "place the post at the resident's home instead"},
        "neighbourhood": {"type": "string", "description": "default: the nearest configured neighbourhood"},
        "terms": _ref("Terms"), "available_from": DT_OR_DATE, "available_until": DT_OR_DATE,
        "expires_at": {**DT_OR_DATE, "description": "in the future, at most a year ahead (default 30 days)"},
        "shares_total": {"type": "integer", "minimum": 1, "maximum": 100,
                         "description": "co_purchase: shares open to neighbours (default 2)"},
        "carpool": _ref("Carpool")},
        "description": "location or use_home is required"},
    "OfferEdit": {"type": "object", "additionalProperties": False,
                  "description": "any editable field of OfferCreate (not purpose or kind)",
                  "properties": {}},  # filled below from OfferCreate's
    "Offer": {"type": "object", "required": ["id", "key", "url", "title", "purpose", "kind", "distance_km",
                                             "town", "status"], "properties": {
        "id": {"type": "string", "description": "ActivityPub id"}, "key": {"type": ["string", "null"]},
        "url": {"type": "string"}, "local": {"type": "boolean"}, "town": {"type": "string"},
        "purpose": {"enum": list(PURPOSES)}, "kind": {"enum": list(KINDS)}, "category": {"type": "string"},
        "title": {"type": "string"}, "description": {"type": "string"}, "terms": _ref("Terms"),
        "status": {"enum": ["open", "reserved", "done", "closed", "expired"]},
        "neighbourhood": {"type": "string"},
        "location": {"type": "object", "description": "published fuzzed point", "properties": {
            "lat": {"type": "number"}, "lon": {"type": "number"}, "name": {"type": "string"},
            "approximate": {"const": True}}},
        "exact_location": {**_ref("Point"), "description": "the author's own view only"},
        "distance_km": {"type": ["number", "null"]},
        "available_from": {"type": ["string", "null"]}, "available_until": {"type": ["string", "null"]},
        "expires_at": {"type": ["string", "null"]}, "published": DT, "updated": {"type": ["string", "null"]},
        "author": {"type": "object"}, "mine": {"type": "boolean"},
        "shares_total": {"type": "integer"}, "shares_taken": {"type": "integer"},
        "shares_left": {"type": "integer"}, "carpool": _ref("Carpool"),
        "reserved_for": {"type": ["object", "null"], "description": "author only"},
        "reserved_for_me": {"type": "boolean"}, "return_by": {"type": ["string", "null"]},
        "media": {"type": "array", "items": {"type": "object"}}}},
    "OfferPage": {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": _ref("Offer")}, "next_cursor": {"type": ["string", "null"]}}},
    "Answer": {"type": "object", "properties": {
        "id": {"type": "integer"}, "kind": {"enum": ["answer", "join"]}, "message": {"type": "string"},
        "state": {"enum": ["open", "accepted", "withdrawn"]}, "shares": {"type": "integer"},
        "author": {"type": "object"}, "created_at": DT}},
    "Home": {"type": "object", "properties": {
        "lat": {"type": "number"}, "lon": {"type": "number"}, "neighbourhood": {"type": "string"},
        "published_point": _ref("Point")}},
    "SavedSearch": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "query": {"type": "object", "description": "parameters of /api/v1/offers/search (near=home is "
                                                   "resolved when saved)"},
        "last_notified_at": {"type": ["string", "null"]}}},
    "Items": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}},
    "NoteCreate": {"type": "object", "required": ["content"], "properties": {
        "content": NOTE_TEXT, "visibility": {"enum": ["public", "unlisted", "followers", "direct"]},
        "in_reply_to": {"type": "string", "description": "the ActivityPub id of a post this server has"},
        "summary": {"type": "string"}}},
    "Target": {"type": "object", "required": ["target"], "properties": {
        "target": {"type": "string", "pattern": NOT_BLANK, "description": "user@host or an actor URL"}}},
}

SCHEMAS["OfferEdit"]["properties"] = {k: v for k, v in SCHEMAS["OfferCreate"]["properties"].items()
                                      if k not in ("purpose", "kind")}
OFFER = _json(_ref("Offer"))
# The parameters of a saved search: those of /api/v1/offers/search that describe what to look for.
SAVED_QUERY = {"type": "object", "additionalProperties": False, "properties": {  # null: not given
    p["name"]: {"anyOf": [p["schema"], {"type": "null"}]} for p in SEARCH_PARAMS
    if p["name"] in ("lat", "lon", "radius_km", "q", "purpose", "kind", "category", "near")}}
ITEMS = _json(_ref("Items"))


def _paths() -> dict[str, Any]:
    k = [KEY]
    return {
        "/api/v1/offers": {
            "post": _op("Post an offer or a request", {"201": _json(_ref("Offer"), "Created"), **WRITE_ERRORS},
                        body="OfferCreate"),
            "get": _op("My posts, newest first", {"200": _json(_ref("OfferPage")), **ERRORS},
                       params=[p for p in SEARCH_PARAMS if p["name"] in ("q", "purpose", "kind", "category",
                                                                        "status", "limit", "cursor")])},
        "/api/v1/offers/search": {"get": _op("Search posts", {"200": _json(_ref("OfferPage")), **ERRORS},
                                             params=SEARCH_PARAMS, auth=False)},
        "/api/v1/offers/notifications": {"get": _op("Notifications of the exchange", {"200": ITEMS, **ERRORS},
                                                    params=[_q("max_id", ID, "older than")])},
        "/api/v1/offers/{key}": {
            "get": _op("One post", {"200": OFFER, "404": {"$ref": "#/components/responses/NotFound"}},
                       params=k, auth=False),
            "patch": _op("Edit a post (author)", {"200": OFFER, **STATE_ERRORS}, body="OfferEdit", params=k),
            "delete": _op("Delete a post (author)", {"200": _json({"type": "object"}), **STATE_ERRORS},
                          params=k)},
        "/api/v1/offers/{key}/close": {"post": _op("Close (author)", {"200": OFFER, **STATE_ERRORS}, params=k)},
        "/api/v1/offers/{key}/reserve": {
            "post": _op("Reserve for one answer (author)", {"200": OFFER, **STATE_ERRORS}, params=k,
                        body={"type": "object", "required": ["answer_id"],
                              "properties": {"answer_id": ID}}),
            "delete": _op("Cancel the reservation (author)", {"200": OFFER, **STATE_ERRORS}, params=k)},
        "/api/v1/offers/{key}/done": {"post": _op(
            "Mark done (author). A loan gets a return date and a reminder when due", {"200": OFFER, **STATE_ERRORS},
            params=k, body={"type": "object", "properties": {"return_by": DT_OR_DATE}})},
        "/api/v1/offers/{key}/join": {"post": _op(
            "Take shares of a co-purchase (until full: 409)", {"201": _json(_ref("Answer")), **STATE_ERRORS},
            params=k, body={"type": "object", "properties": {"shares": {"type": "integer", "default": 1},
                                                             "message": {"type": "string"}}})},
        "/api/v1/offers/{key}/answers": {
            "post": _op("Answer privately", {"201": _json(_ref("Answer")), **STATE_ERRORS}, params=k,
                        body={"type": "object", "required": ["message"],
                              "properties": {"message": {"type": "string", "maxLength": 2000}}}),
            "get": _op("Answers to my post (author only)", {"200": ITEMS, **STATE_ERRORS}, params=k)},
        "/api/v1/offers/{key}/answers/{id}": {"delete": _op(
            "Withdraw my answer (its author only)", {"200": _json(_ref("Answer")), **STATE_ERRORS},
            params=[KEY, {"name": "id", "in": "path", "required": True, "schema": ID}])},
        "/api/v1/answers": {"get": _op("My answers", {"200": ITEMS, **ERRORS})},
        "/api/v1/offers/{key}/media": {"post": {
            **_op("Add photos (author): JPEG, PNG or WebP, at most 8 per post and 10 MB each; resized, "
                  "metadata removed", {"201": OFFER, **STATE_ERRORS,
                                       "400": _json(_ref("Error"), "The body is not valid multipart/form-data"),
                                       "413": {"$ref": "#/components/responses/TooLarge"}}, params=k),
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {
                    "file": {"type": "array", "items": {"type": "string", "contentMediaType": "image/*"}},
                    "alt": {"type": "array", "items": {"type": "string"},
                            "description": "alt text of each file, in the same order"}}}}}}}},
        "/api/v1/offers/{key}/media/{id}": {
            "patch": _op("Alt text or position of a photo (author)", {"200": _json({"type": "object"}),
                                                                       **STATE_ERRORS},
                         params=[KEY, {"name": "id", "in": "path", "required": True, "schema": ID}],
                         body={"type": "object", "properties": {"alt": {"type": "string"},
                                                                "position": {"type": "integer"}}}),
            "delete": _op("Remove a photo (author)", {"200": _json({"type": "object"}), **STATE_ERRORS},
                          params=[KEY, {"name": "id", "in": "path", "required": True,
                                        "schema": ID}])},
        "/api/v1/accounts/me/home": {
            "get": _op("My home", {"200": _json(_ref("Home")), **ERRORS, **NOT_FOUND}),
            "patch": _op("Set my home (exact, never published)", {"200": _json(_ref("Home")), **WRITE_ERRORS},
                         body="Point"),
            "delete": _op("Forget my home", {"200": _json({"type": "object"}), **WRITE_ERRORS})},
        "/api/v1/saved_searches": {
            "get": _op("My saved searches", {"200": ITEMS, **ERRORS}),
            "post": _op("Save a search: new matching posts notify me", {"201": _json(_ref("SavedSearch")),
                                                                        **WRITE_ERRORS},
                        body={"type": "object", "required": ["query"], "properties": {
                            "name": {"type": "string", "maxLength": 200}, "query": SAVED_QUERY}})},
        "/api/v1/saved_searches/{id}": {"delete": _op(
            "Delete a saved search", {"200": _json({"type": "object"}), **WRITE_ERRORS},
            params=[{"name": "id", "in": "path", "required": True, "schema": ID}])},
        **_core_paths(),
    }


def _core_paths() -> dict[str, Any]:
    t = "core"
    target = "Target"
    key = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
    note = _json({"type": "object"})
    return {
        "/api/v1/follows": {"post": _op("Follow", {"201": note, **ERRORS, **NOT_FOUND}, body=target, tag=t),
                            "delete": _op("Unfollow", {"200": note, **ERRORS, **NOT_FOUND}, body=target, tag=t),
                            "get": _op("Accounts I follow", {"200": ITEMS, **ERRORS}, tag=t)},
        "/api/v1/followers": {"get": _op("My followers", {"200": ITEMS, **ERRORS}, tag=t)},
        "/api/v1/follow_requests/{id}/{action}": {"post": _op(
            "Authorize or reject a follow request", {"200": note, **ERRORS}, tag=t, params=[
                {"name": "id", "in": "path", "required": True, "schema": ID},
                {"name": "action", "in": "path", "required": True, "schema": {"enum": ["authorize", "reject"]}}])},
        "/api/v1/accounts/me": {"patch": _op("Edit my profile", {"200": note, **ERRORS}, tag=t, body={
            "type": "object", "properties": {"locked": {"type": "boolean"},
                                             "display_name": {"type": "string", "maxLength": 255},
                                             "summary": {"type": "string", "maxLength": 500},
                                             "hide_collections": {
                                                 "type": "boolean", "description": "hide your network: the "
                                                 "followers and following collections show only their totals"}}})},
        "/api/v1/notes": {"post": _op("Post a note", {"201": note, **ERRORS}, body="NoteCreate", tag=t)},
        "/api/v1/notes/lookup": {"get": _op("A stored post by ActivityPub id", {"200": note, **ERRORS, **NOT_FOUND},
                                            tag=t, params=[_q("id", {"type": "string"}, "ActivityPub id")])},
        "/api/v1/notes/{key}": {"get": _op("My note", {"200": note, **ERRORS}, params=key, tag=t),
                                "patch": _op("Edit my note", {"200": note, **ERRORS}, params=key, tag=t,
                                             body={"type": "object", "properties": {"content": NOTE_TEXT}}),
                                "delete": _op("Delete my note", {"200": note, **ERRORS}, params=key, tag=t)},
        "/api/v1/notifications": {"get": _op(
            "Notifications, social and of the exchange, newest first", {"200": ITEMS, **ERRORS}, tag=t,
            params=[_q("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "items per page (20)"),
                    _q("cursor", {"type": "string", "format": "cursor"},
                       "next_cursor of the previous page (opaque)")])},
        "/api/v1/timelines/home": {"get": _op("Home timeline", {"200": ITEMS, **ERRORS}, tag=t)},
        "/api/v1/instance/domain_blocks": {"get": _op("Suspended domains", {"200": _json({"type": "array"})},
                                                      auth=False, tag=t)},
    }


def build_document(base_url: str, title: str, limits: LimitsSettings | None = None) -> dict[str, Any]:
    limits = limits or LimitsSettings()
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{title} — fedineighbour API", "version": "1",
                 "description": "Bearer tokens come from `fedineighbour token create NAME`. Validation errors "
                                "are 422 {\"errors\": {\"<field>\": \"<message>\"}}. Writes are limited per "
                                f"account (per address when anonymous) to a burst of {limits.write_burst}, then "
                                f"{limits.writes_per_minute} a minute, searches to {limits.searches_per_minute} a "
                                "minute, per server process (429 with Retry-After)."},
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {
                "Invalid": _json(_ref("Errors"), "Invalid input: nothing was stored"),
                "BadRequest": _json(_ref("Error"), "The body is not a JSON object"),
                "Unauthorized": _json(_ref("Error"), "A valid bearer token is required"),
                "Forbidden": _json(_ref("Error"), "Not yours to do"),
                "NotFound": _json(_ref("Error"), "No such thing"),
                "Conflict": _json(_ref("Error"), "Not possible in the post's current state"),
                "TooLarge": _json(_ref("Error"), "A photo over 10 MB"),
                "TooMany": {"description": "Rate limited", "headers": {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
                    "content": {"application/json": {"schema": _ref("Error")}}},
            },
        },
    }


async def openapi_document(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    return JSONResponse(build_document(settings.base_url, settings.town.name or settings.instance.name,
                                       settings.limits))
