"""Every route of the application, in one list."""

from __future__ import annotations

from starlette.routing import Route

from fedineighbour.web import activitypub as ap
from fedineighbour.web import activitypub_offers as ap_offers
from fedineighbour.web import (
    api_instance,
    api_notifications,
    api_offer_media,
    api_offers,
    api_social,
    openapi,
    pages,
    wellknown,
)
from fedineighbour.web.inbox_endpoint import inbox
from fedineighbour.web.path_params import register_path_convertors


def build_routes() -> list[Route]:
    """Path parameters are typed (web/path_params.py): a key, username or id out of its format is a 404."""
    register_path_convertors()
    return [
        # Inboxes first: on a federated server they take most requests, and starlette tries routes in order.
        Route("/inbox", inbox, methods=["POST"]),
        Route("/users/{username:username}/inbox", inbox, methods=["POST"]),
        Route("/", pages.home),
        Route("/.well-known/webfinger", wellknown.webfinger),
        Route("/.well-known/host-meta", wellknown.host_meta),
        Route("/.well-known/nodeinfo", wellknown.nodeinfo_links),
        Route("/nodeinfo/2.1", wellknown.nodeinfo),
        Route("/actor", ap.actor),
        Route("/actor/inbox", inbox, methods=["POST"]),
        Route("/actor/outbox", ap.outbox),
        Route("/users/{username:username}", ap.actor),
        Route("/users/{username:username}/outbox", ap.outbox),
        Route("/users/{username:username}/followers", ap.followers),
        Route("/users/{username:username}/following", ap.following),
        Route("/users/{username:username}/featured", ap.featured),
        Route("/notes/{key:key}", ap.note),
        Route("/notes/{key:key}/activity", ap.note_activity),
        Route("/offers/{key:key}", ap_offers.offer),
        Route("/activities/{key:key}", ap.activity),
        Route("/api/v1/follows", api_social.follow, methods=["POST"]),
        Route("/api/v1/follows", api_social.unfollow, methods=["DELETE"]),
        Route("/api/v1/follows", api_social.list_following, methods=["GET"]),
        Route("/api/v1/followers", api_social.list_followers, methods=["GET"]),
        Route("/api/v1/follow_requests/{id:rowid}/{action:str}", api_social.answer_follow_request, methods=["POST"]),
        Route("/api/v1/accounts/me", api_social.update_me, methods=["PATCH"]),
        Route("/api/v1/notes", api_social.create_note, methods=["POST"]),
        Route("/api/v1/notes/lookup", api_social.lookup_note, methods=["GET"]),
        Route("/api/v1/notes/{key:key}", api_social.note_detail, methods=["GET", "PATCH", "DELETE"]),
        Route("/api/v1/notifications", api_notifications.notifications, methods=["GET"]),
        Route("/api/v1/timelines/home", api_social.home_timeline, methods=["GET"]),
        Route("/api/v1/instance/domain_blocks", api_instance.domain_blocks, methods=["GET"]),
        # The exchange (offers and requests): fixed paths before /api/v1/offers/{key}.
        Route("/api/openapi.json", openapi.openapi_document, methods=["GET"]),
        Route("/api/v1/accounts/me/home", api_offers.home, methods=["GET", "PATCH", "DELETE"]),
        Route("/api/v1/offers", api_offers.create_offer, methods=["POST"]),
        Route("/api/v1/offers", api_offers.my_offers, methods=["GET"]),
        Route("/api/v1/offers/search", api_offers.search_offers, methods=["GET"]),
        Route("/api/v1/offers/notifications", api_offers.notifications, methods=["GET"]),
        Route("/api/v1/offers/{key:key}", api_offers.get_offer, methods=["GET"]),
        Route("/api/v1/offers/{key:key}", api_offers.edit_offer, methods=["PATCH", "DELETE"]),
        Route("/api/v1/offers/{key:key}/close", api_offers.close_offer, methods=["POST"]),
        Route("/api/v1/offers/{key:key}/reserve", api_offers.reserve_offer, methods=["POST", "DELETE"]),
        Route("/api/v1/offers/{key:key}/done", api_offers.done_offer, methods=["POST"]),
        Route("/api/v1/offers/{key:key}/join", api_offers.join_offer, methods=["POST"]),
        Route("/api/v1/offers/{key:key}/answers", api_offers.post_answer, methods=["POST"]),
        Route("/api/v1/offers/{key:key}/answers", api_offers.list_answers, methods=["GET"]),
        Route("/api/v1/offers/{key:key}/answers/{id:rowid}", api_offers.withdraw_answer, methods=["DELETE"]),
        Route("/api/v1/answers", api_offers.my_answers, methods=["GET"]),
        Route("/api/v1/saved_searches", api_offers.saved_search_collection, methods=["GET", "POST"]),
        Route("/api/v1/saved_searches/{id:rowid}", api_offers.delete_saved_search, methods=["DELETE"]),
        Route("/api/v1/offers/{key:key}/media", api_offer_media.upload, methods=["POST"]),
        Route("/api/v1/offers/{key:key}/media/{id:rowid}", api_offer_media.photo, methods=["PATCH", "DELETE"]),
        Route("/media/{name:path}", api_offer_media.serve_media, methods=["GET"]),
    ]
