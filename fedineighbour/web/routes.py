"""Every route of the application, in one list."""

from __future__ import annotations

from starlette.routing import Route

from fedineighbour.web import activitypub as ap
from fedineighbour.web import api_instance, api_social, pages, wellknown


def build_routes() -> list[Route]:
    return [
        Route("/", pages.home),
        Route("/.well-known/webfinger", wellknown.webfinger),
        Route("/.well-known/host-meta", wellknown.host_meta),
        Route("/.well-known/nodeinfo", wellknown.nodeinfo_links),
        Route("/nodeinfo/2.1", wellknown.nodeinfo),
        Route("/actor", ap.actor),
        Route("/actor/inbox", ap.inbox, methods=["POST"]),
        Route("/actor/outbox", ap.outbox),
        Route("/inbox", ap.inbox, methods=["POST"]),
        Route("/users/{username}", ap.actor),
        Route("/users/{username}/inbox", ap.inbox, methods=["POST"]),
        Route("/users/{username}/outbox", ap.outbox),
        Route("/users/{username}/followers", ap.followers),
        Route("/users/{username}/following", ap.following),
        Route("/users/{username}/featured", ap.featured),
        Route("/notes/{key}", ap.note),
        Route("/notes/{key}/activity", ap.note_activity),
        Route("/activities/{key}", ap.activity),
        Route("/api/v1/follows", api_social.follow, methods=["POST"]),
        Route("/api/v1/follows", api_social.unfollow, methods=["DELETE"]),
        Route("/api/v1/follows", api_social.list_following, methods=["GET"]),
        Route("/api/v1/followers", api_social.list_followers, methods=["GET"]),
        Route("/api/v1/follow_requests/{id:int}/{action:str}", api_social.answer_follow_request, methods=["POST"]),
        Route("/api/v1/accounts/me", api_social.update_me, methods=["PATCH"]),
        Route("/api/v1/notes", api_social.create_note, methods=["POST"]),
        Route("/api/v1/notes/lookup", api_social.lookup_note, methods=["GET"]),
        Route("/api/v1/notes/{key}", api_social.note_detail, methods=["GET", "PATCH", "DELETE"]),
        Route("/api/v1/notifications", api_social.notifications, methods=["GET"]),
        Route("/api/v1/timelines/home", api_social.home_timeline, methods=["GET"]),
        Route("/api/v1/instance/domain_blocks", api_instance.domain_blocks, methods=["GET"]),
    ]
