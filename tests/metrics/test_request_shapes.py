"""The HTTP requests the sinks send, and how they read InfluxDB's answers."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from hongbao.metrics.sinks import InfluxV1Sink, InfluxV2Sink, Sink, SinkRejected, SinkUnavailable
from tests.metrics.capturing_http import CapturingServer, capturing_server

LINES = [b"server,host=h1,run_id=r1,worker=0 requests=5i 1750000000",
         b"server,host=h1,run_id=r1,worker=0 requests=7i 1750000001"]


def _write_once(make_sink: type[Sink] | object, status: int = 204,
                answer: str = "") -> tuple[CapturingServer, BaseException | None]:
    """Send LINES through the sink ``make_sink(url)`` to a server answering ``status``."""

    async def scenario() -> tuple[CapturingServer, BaseException | None]:
        async with capturing_server() as server:
            server.status, server.answer = status, answer
            sink = make_sink(server.url)  # type: ignore[operator]
            failure = None
            try:
                await sink.write(LINES)
            except (SinkRejected, SinkUnavailable) as error:
                failure = error
            finally:
                await sink.close()
            return server, failure

    return asyncio.run(scenario())


def _v2(url: str) -> InfluxV2Sink:
    return InfluxV2Sink(url, token="secret-token", org="hongbao-org", bucket="metrics")


def test_v2_writes_gzip_line_protocol_with_token_org_bucket_and_second_precision() -> None:
    server, failure = _write_once(_v2)
    assert failure is None
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/api/v2/write")
    assert request.query == {"org": "hongbao-org", "bucket": "metrics", "precision": "s"}
    assert request.headers["Authorization"] == "Token secret-token"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"].startswith("text/plain")
    assert request.body == b"\n".join(LINES) + b"\n"


def test_v2_malformed_data_answer_is_a_rejection_with_influxdb_text() -> None:
    answer = json.dumps({"code": "invalid", "message": "unable to parse 'x': missing fields"})
    _, failure = _write_once(_v2, 400, answer)
    assert isinstance(failure, SinkRejected)
    assert "HTTP 400: unable to parse 'x': missing fields" in str(failure)


@pytest.mark.parametrize(("status", "message", "hint"), [
    (401, "unauthorized access", "check the InfluxDB credentials"),
    (404, 'bucket "metrics" not found', 'bucket "metrics" not found'),
    (503, "service unavailable", "HTTP 503"),
])
def test_v2_answers_that_keep_the_batch_spooled(status: int, message: str, hint: str) -> None:
    answer = json.dumps({"code": "x", "message": message})
    _, failure = _write_once(_v2, status, answer)
    assert isinstance(failure, SinkUnavailable)
    assert hint in str(failure)
    assert "InfluxDB 2.x at http://127.0.0.1:" in str(failure)


def test_v1_creates_the_database_then_writes_gzip_with_basic_auth() -> None:
    server, failure = _write_once(
        lambda url: InfluxV1Sink(url, "hb", username="writer", password="pw",
                                 retention_policy="week"))
    assert failure is None
    create, write = server.requests
    assert (create.method, create.path) == ("POST", "/query")
    assert create.body == b"q=CREATE+DATABASE+%22hb%22"
    assert (write.method, write.path) == ("POST", "/write")
    assert write.query == {"db": "hb", "precision": "s", "rp": "week"}
    assert write.headers["Content-Encoding"] == "gzip"
    assert write.headers["Authorization"] == "Basic " + base64.b64encode(b"writer:pw").decode()
    assert write.body == b"\n".join(LINES) + b"\n"


def test_v1_partial_write_answer_is_a_rejection_with_influxdb_text() -> None:
    answer = json.dumps({"error": "partial write: field type conflict dropped=1"})
    _, failure = _write_once(lambda url: InfluxV1Sink(url, "hb"), 400, answer)
    assert isinstance(failure, SinkRejected)
    assert str(failure).endswith("HTTP 400: partial write: field type conflict dropped=1")
