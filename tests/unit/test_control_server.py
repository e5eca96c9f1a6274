"""The control API's HTTP side on loopback, with fake handlers: routing, GET and POST, bad
parameters, the token, a failing handler and a stuck one. The real routes are exercised
against real nodes in tests/faults/test_bad_peers.py."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from hongbao.node.control import ControlServer
from hongbao.node.control_params import ROUTES, Query

TIMEOUT_S = 0.5


def fetch(port: int, path: str, method: str = "GET", body: bytes | None = None,
          token: str | None = None) -> tuple[int, dict[str, Any], str]:
    """(HTTP status, JSON body, WWW-Authenticate) of one request."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), ""
    except urllib.error.HTTPError as error:
        with error:
            return (error.code, json.loads(error.read()),
                    error.headers.get("WWW-Authenticate", ""))


def serve(handlers: dict[str, Callable[[Query], Awaitable[dict[str, Any]]]],
          requests: Callable[[int], Any], token: str | None = None) -> Any:
    """Run a client control API with these handlers (the rest echo their query), and call
    ``requests(port)`` on a thread while the loop serves; returns what it returns."""

    async def echo(query: Query) -> dict[str, Any]:
        return {"query": query}

    async def run() -> Any:
        routes = {path: handlers.get(path, echo) for path in ROUTES["client"]}
        server = ControlServer("client", routes, token, asyncio.get_running_loop(),
                               "127.0.0.1", 0, handler_timeout=TIMEOUT_S)
        server.start()
        try:
            return await asyncio.to_thread(requests, server.server_address[1])
        finally:
            await server.close()

    return asyncio.run(run())


def test_get_and_post_reach_the_handler_with_the_parsed_query() -> None:
    got = serve({}, lambda port: (fetch(port, "/qps?qps=25"),
                                  fetch(port, "/qps?qps=25", "POST", b"ignored=1")))
    assert got[0] == (200, {"query": {"qps": 25}}, "")
    assert got[1] == got[0]


def test_an_unknown_route_is_404_naming_the_routes() -> None:
    status, body, _ = serve({}, lambda port: fetch(port, "/nope"))
    assert status == 404
    assert "'/nope'" in body["error"] and "/status" in body["error"]


def test_a_bad_parameter_is_400_with_its_reason() -> None:
    status, body, _ = serve({}, lambda port: fetch(port, "/qps?qps=-1"))
    assert status == 400 and "qps" in body["error"]


def test_a_token_is_required_when_set() -> None:
    got = serve({}, lambda port: (fetch(port, "/status"), fetch(port, "/status", token="no"),
                                  fetch(port, "/status", token="secret")), token="secret")
    assert [status for status, _, _ in got] == [401, 401, 200]
    assert got[0][2] == "Bearer"


def test_a_failing_handler_is_500_and_the_api_keeps_serving() -> None:
    async def broken(_query: Query) -> dict[str, Any]:
        raise RuntimeError("boom")

    got = serve({"/status": broken},
                lambda port: (fetch(port, "/status"), fetch(port, "/qps?qps=1")))
    assert got[0][0] == 500 and got[0][1] == {"error": "RuntimeError: boom"}
    assert got[1][0] == 200


def test_a_stuck_handler_is_503_after_the_timeout() -> None:
    async def stuck(_query: Query) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    status, body, _ = serve({"/status": stuck}, lambda port: fetch(port, "/status"))
    assert status == 503
    assert body == {"error": f"the node did not answer /status in {TIMEOUT_S:g} s"}


def test_an_oversized_post_body_is_refused() -> None:
    status, body, _ = serve({}, lambda port: fetch(port, "/qps?qps=1", "POST", b"x" * 70_000))
    assert status == 413 and "at most" in body["error"]
