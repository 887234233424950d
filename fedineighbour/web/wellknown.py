"""WebFinger, host-meta, NodeInfo 2.1 (with FEP-2677's Application link)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fedineighbour.neighbourhood.addresses import INSTANCE_ACTOR_USERNAME
from fedineighbour.storage.models import Account, Note

NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"


async def webfinger(request: Request) -> Response:
    rt = request.app.state.rt
    resource = request.query_params.get("resource", "").strip()
    if not resource:
        return JSONResponse({"error": "resource is required"}, status_code=400)
    account = None
    if resource.startswith(("http://", "https://")):
        if rt.urls.is_local(resource):
            account = await Account.filter(ap_id=resource, local=True, deleted_at=None).first()
            if account is None:
                account = await Account.filter(url=resource, local=True, deleted_at=None).first()
    else:
        user, _, host = resource.removeprefix("acct:").lstrip("@").partition("@")
        if host.lower() == rt.settings.host.lower():
            account = await Account.filter(username=user, local=True, deleted_at=None).first()
    if account is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    links = [
        {"rel": "self", "type": "application/activity+json", "href": account.ap_id},
        {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": account.url or account.ap_id},
    ]
    return JSONResponse({"subject": f"acct:{account.username}@{rt.settings.host}", "aliases": [account.ap_id],
                         "links": links}, media_type="application/jrd+json",
                        headers={"Access-Control-Allow-Origin": "*"})


async def host_meta(request: Request) -> Response:
    base = request.app.state.rt.urls.base
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
           f'  <Link rel="lrdd" template="{base}/.well-known/webfinger?resource={{uri}}"/>\n</XRD>\n')
    return Response(xml, media_type="application/xrd+xml")


async def nodeinfo_links(request: Request) -> Response:
    rt = request.app.state.rt
    return JSONResponse({"links": [
        {"rel": NODEINFO_SCHEMA, "href": f"{rt.urls.base}/nodeinfo/2.1"},
        {"rel": "https://www.w3.org/ns/activitystreams#Application",
         "href": rt.urls.actor(INSTANCE_ACTOR_USERNAME)},
    ]})


async def nodeinfo(request: Request) -> Response:
    rt = request.app.state.rt
    settings = rt.settings
    users = await Account.filter(local=True, actor_type__in=["Person", "Organization"], deleted_at=None).count()
    posts = await Note.filter(local=True, deleted_at=None).count()
    town = settings.town
    metadata = {"nodeName": settings.instance.name, "nodeDescription": settings.instance.description,
                "town": {"name": town.name, "code": town.code, "radius_km": town.radius_km,
                         "centre": ({"lat": float(town.centre["lat"]), "lon": float(town.centre["lon"])}
                                    if town.centre else None)}}
    return JSONResponse({
        "version": "2.1",
        "software": {"name": "fedineighbour", "version": "0.1.0",
                     "repository": "https://example.invalid/fedineighbour", "homepage": settings.base_url},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": settings.instance.registrations == "open",
        "usage": {"users": {"total": users}, "localPosts": posts},
        "metadata": metadata,
    }, media_type=f'application/json; profile="{NODEINFO_SCHEMA}#"')
