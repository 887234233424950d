"""Public instance information, shaped like Mastodon's."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fedineighbour.storage.models import DomainBlock


async def domain_blocks(request: Request) -> Response:
    rows = await DomainBlock.all().order_by("domain")
    return JSONResponse([{"domain": r.domain, "digest": hashlib.sha256(r.domain.encode()).hexdigest(),
                          "severity": r.severity, "comment": r.public_comment or None} for r in rows])
