"""The baseline server of bench/inbox.py: a Starlette endpoint that reads the body, parses the JSON and
answers 202, served by uvicorn with the settings `fedineighbour serve` uses (cli.serve).

    python bench/trivial_app.py HOST PORT
"""

from __future__ import annotations

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def inbox(request: Request) -> Response:
    body = await request.body()
    try:
        json.loads(body)
    except ValueError:
        return Response(status_code=400)
    return Response(status_code=202)


app = Starlette(routes=[Route("/inbox", inbox, methods=["POST"]),
                        Route("/users/{username}/inbox", inbox, methods=["POST"])])

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    # Same as fedineighbour.cli.serve.
    uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                log_level="info", access_log=False)
