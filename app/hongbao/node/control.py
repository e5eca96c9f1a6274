"""Small JSON-over-HTTP control APIs (aiohttp), shared by the server and client nodes.
What each route accepts, and the checks, are in ``control_params``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hongbao.node.control_params import ROUTES, BadParameter, Query, authorized, parse_query

Handler = Callable[[Query], Awaitable[dict[str, Any]]]


def json_route(handler: Handler, params: tuple[Any, ...],
               token: str | None) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        if token is not None and not authorized(request.headers.get("Authorization"), token):
            return web.json_response({"error": "missing or wrong 'Authorization: Bearer' token"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await handler(parse_query(request.query.items(), params))
        except BadParameter as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(body, dumps=lambda d: json.dumps(d, indent=1))

    return wrapped


def build_app(role: str, handlers: dict[str, Handler], token: str | None) -> web.Application:
    """GET and POST both work on every route, like the original's endpoints."""
    missing = set(ROUTES[role]) ^ set(handlers)
    if missing:
        raise ValueError(f"{role} control API: routes and handlers differ on {sorted(missing)}")
    app = web.Application()
    for path, handler in handlers.items():
        route = json_route(handler, ROUTES[role][path], token)
        app.router.add_route("GET", path, route)
        app.router.add_route("POST", path, route)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
