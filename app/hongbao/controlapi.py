"""Small JSON-over-HTTP control APIs (aiohttp), shared by the server and client nodes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[dict[str, Any]]]


class BadParameter(ValueError):
    pass


def number(request: web.Request, name: str, default: float | None = None,
           minimum: float = 0, integer: bool = True) -> float:
    """A numeric query parameter, with a 400-worthy message when it is bad or missing."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadParameter(f"missing query parameter '{name}'")
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise BadParameter(f"query parameter '{name}' must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise BadParameter(f"query parameter '{name}' must be >= {minimum}, got {value}")
    return value


def json_route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            body = await handler(request)
        except BadParameter as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(body, dumps=lambda d: json.dumps(d, indent=1))

    return wrapped


def build_app(routes: dict[str, Handler]) -> web.Application:
    """GET and POST both work on every route, like the original's endpoints."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("GET", path, json_route(handler))
        app.router.add_route("POST", path, json_route(handler))
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner

