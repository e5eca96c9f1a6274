"""A tiny HTTP server on 127.0.0.1 that records requests and answers as told."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class CapturedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes

    @property
    def body(self) -> bytes:
        """The body, gunzipped when the request says it is gzip."""
        if self.headers.get("Content-Encoding") == "gzip":
            return gzip.decompress(self.raw_body)
        return self.raw_body


@dataclass
class CapturingServer:
    url: str = ""
    requests: list[CapturedRequest] = field(default_factory=list)
    status: int = 204
    answer: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(CapturedRequest(
            request.method, request.path, dict(request.query), dict(request.headers),
            await request.read()))
        return web.Response(status=self.status, text=self.answer or None,
                            content_type="application/json")


@asynccontextmanager
async def capturing_server() -> AsyncIterator[CapturingServer]:
    server = CapturingServer()
    app = web.Application(handler_args={"auto_decompress": False})  # see the raw body
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
