"""Small JSON-over-HTTP control APIs, shared by the server and client nodes. What each route
accepts, and the checks, are in ``control_params``.

The API is served by the standard library's ``ThreadingHTTPServer`` on its own threads, and
each request's handler runs on the node's event loop. That keeps it light (aiohttp's server
alone added about 13 MB to each of the 18 node processes at 1M connections; issue 8 asks for
at most 40 MB a node) and off the workers' hot path: the node process forwards commands and
sums statuses, it handles no connection of the load.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hongbao.node.control_params import ROUTES, BadParameter, Query, authorized, parse_query

log = logging.getLogger(__name__)

Handler = Callable[[Query], Awaitable[dict[str, Any]]]
HANDLER_TIMEOUT_S = 30.0  # a handler that takes longer gets 503: the node is stuck
MAX_BODY_BYTES = 64 * 1024  # a POST's body is read and ignored, like the original's
REQUEST_TIMEOUT_S = 10.0  # a client that sends its request this slowly is dropped


class ControlServer(ThreadingHTTPServer):
    """The control API of one node: routes to handlers that run on the node's loop."""

    def __init__(self, role: str, handlers: dict[str, Handler], token: str | None,
                 loop: asyncio.AbstractEventLoop, host: str, port: int,
                 handler_timeout: float = HANDLER_TIMEOUT_S) -> None:
        missing = set(ROUTES[role]) ^ set(handlers)
        if missing:
            raise ValueError(f"{role} control API: routes and handlers differ on "
                             f"{sorted(missing)}")
        self.routes = {path: (handler, ROUTES[role][path]) for path, handler in handlers.items()}
        self.token = token
        self.loop = loop
        self.handler_timeout = handler_timeout
        self.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        super().__init__((host, port), ControlRequest)
        self._thread = threading.Thread(target=self.serve_forever, name="control-api",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def close(self) -> None:
        """Stop taking requests (``shutdown`` waits for the serving thread's next poll)."""
        await asyncio.to_thread(self.shutdown)
        self.server_close()

    def answer(self, path: str, query: list[tuple[str, str]],
               authorization: str | None) -> tuple[HTTPStatus, dict[str, Any]]:
        """The status and JSON body for one request; called on a request's own thread."""
        route = self.routes.get(path)
        if route is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no route {path!r}; routes: "
                                                   f"{', '.join(sorted(self.routes))}"}
        if self.token is not None and not authorized(authorization, self.token):
            return (HTTPStatus.UNAUTHORIZED,
                    {"error": "missing or wrong 'Authorization: Bearer' token"})
        handler, params = route
        try:
            parsed = parse_query(query, params)
        except BadParameter as error:
            return HTTPStatus.BAD_REQUEST, {"error": str(error)}
        if self.loop.is_closed():
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the node is stopping"}
        future = asyncio.run_coroutine_threadsafe(handler(parsed), self.loop)
        try:
            return HTTPStatus.OK, future.result(timeout=self.handler_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return (HTTPStatus.SERVICE_UNAVAILABLE,
                    {"error": f"the node did not answer {path} in {self.handler_timeout:g} s"})
        except BadParameter as error:
            return HTTPStatus.BAD_REQUEST, {"error": str(error)}
        except Exception as error:  # a handler's bug: say so, keep serving
            log.exception("control API %s failed", path)
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: "
                                                               f"{error}"}


class ControlRequest(BaseHTTPRequestHandler):
    """GET and POST both work on every route, like the original's endpoints."""

    server: ControlServer
    timeout = REQUEST_TIMEOUT_S

    def do_GET(self) -> None:
        self._respond()

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"a body of at most {MAX_BODY_BYTES} bytes, and ignored"})
            return
        self.rfile.read(int(length))
        self._respond()

    def _respond(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        status, body = self.server.answer(parts.path, query, self.headers.get("Authorization"))
        self._send(status, body)

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the nodes' logs are for the run."""
