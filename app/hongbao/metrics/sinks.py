"""Remote sinks for line-protocol batches: InfluxDB 1.x (``/write``) and 2.x/3.x.

A sink either stores a batch or raises one of two errors, and the shipper acts on the
difference:

- ``SinkUnavailable``: try the same batch again later (unreachable, 5xx, wrong
  credentials, missing database or bucket). Nothing is dropped; the spool keeps it.
- ``SinkRejected``: the data itself is refused (400 bad line, field type conflict,
  413 too large). Sending it again cannot help. InfluxDB 1.x and 3.x store the good
  points of a rejected batch ("partial write"); 2.x may refuse the whole batch, so the
  shipper splits a rejected batch until it finds the lines to drop.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.client
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 10.0
GZIP_LEVEL = 5
ERROR_TEXT_LIMIT = 300
# 400/413/422 name a problem with the data, unless the text says the target is missing.
DATA_REJECTED_STATUSES = frozenset({400, 413, 422})
MISSING_TARGET = re.compile(r"(database|retention policy|bucket|org\w*)\b.*not found"
                            r"|not found\b.*(database|retention policy|bucket|org)",
                            re.IGNORECASE)
# What a request that got no HTTP answer raises (URLError and TimeoutError are OSErrors).
CONNECTION_ERRORS = (OSError, http.client.HTTPException)
# The 1.x sink speaks plain urllib on a thread (aiohttp would add about 13 MB to each node),
# like aiohttp's default without proxies from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SinkError(Exception):
    """A batch was not stored; the message says where and why."""


class SinkUnavailable(SinkError):
    """The sink cannot store anything right now: keep the batch and try again later."""


class SinkRejected(SinkError):
    """The sink refused the data of this batch for good: resending cannot help."""


class Sink(Protocol):
    @property
    def key(self) -> str:
        """Names the destination in file names (shipped offsets are kept per destination)."""
        ...

    def describe(self) -> str: ...

    async def write(self, lines: Sequence[bytes]) -> None:
        """Store the lines or raise ``SinkUnavailable`` / ``SinkRejected``."""
        ...

    async def close(self) -> None:
        """Release connections; the next ``write`` opens new ones (in any event loop)."""
        ...


def check_http_url(url: str, flag: str) -> str:
    """``url`` without a trailing slash; a ValueError naming ``flag`` if it is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{flag} {url!r} is not an http(s) URL: use e.g. http://127.0.0.1:8086")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{flag} {url!r} has a bad port number") from None
    return url.rstrip("/")


def line_body(lines: Sequence[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def _file_safe(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(part for part in parts if part))


def influx_error_text(body: str) -> str:
    """The message of an InfluxDB error body (1.x ``error``, 2.x ``message``), shortened."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        body = str(decoded.get("error") or decoded.get("message") or body)
    text = " ".join(body.split())
    return text[:ERROR_TEXT_LIMIT] or "(empty response)"


def failure_for_status(status: int, detail: str, where: str) -> SinkError:
    """Classify a non-2xx answer: rejected data, or a sink that is not usable now."""
    message = f"{where} answered HTTP {status}: {detail}"
    if status in DATA_REJECTED_STATUSES and not MISSING_TARGET.search(detail):
        return SinkRejected(message)
    if status in (401, 403):
        message += " (check the InfluxDB credentials)"
    return SinkUnavailable(message)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """POST and return (status, body text), an HTTP error status included (blocking)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with DIRECT.open(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(errors="replace")


def unreachable(where: str, error: BaseException) -> SinkUnavailable:
    reason = str(error) or type(error).__name__
    return SinkUnavailable(f"{where} is unreachable: {reason}")


class InfluxV1Sink:
    """InfluxDB 1.x: gzip-compressed ``POST /write?db=..&precision=s``.

    The database is created on first use (``CREATE DATABASE`` is idempotent on 1.x). A
    user without admin rights cannot create it; that is logged and writes go ahead,
    since the database may exist. A retention policy, if given, must already exist.
    """

    def __init__(self, url: str, database: str, username: str | None = None,
                 password: str | None = None, retention_policy: str | None = None,
                 timeout: float = WRITE_TIMEOUT_S) -> None:
        self.url = check_http_url(url, "InfluxDB URL")
        if not database:
            raise ValueError("InfluxDB 1.x needs a database name")
        self.database = database
        self.retention_policy = retention_policy
        credentials = f"{username}:{password or ''}".encode()
        self._auth_headers = (
            {"Authorization": f"Basic {base64.b64encode(credentials).decode()}"}
            if username else {})
        self._timeout = timeout
        write_params = {"db": database, "precision": "s"}
        if retention_policy:
            write_params["rp"] = retention_policy
        self._write_path = f"/write?{urlencode(write_params)}"
        self._database_ready = False

    @property
    def key(self) -> str:
        parts = urlsplit(self.url)
        return _file_safe("influxdb1", parts.hostname or "", str(parts.port or ""),
                          self.database, self.retention_policy or "")

    def describe(self) -> str:
        return f"InfluxDB 1.x at {self.url} (database {self.database!r})"

    async def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """POST on a thread and return (status, body text); no answer -> SinkUnavailable."""
        try:
            return await asyncio.to_thread(post, f"{self.url}{path}", body,
                                           {**self._auth_headers, **headers}, self._timeout)
        except CONNECTION_ERRORS as error:
            raise unreachable(self.describe(), error) from None

    async def _create_database(self) -> None:
        name = self.database.replace("\\", "\\\\").replace('"', '\\"')
        status, body = await self._post(
            "/query", urlencode({"q": f'CREATE DATABASE "{name}"'}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        if status >= 500:
            raise failure_for_status(status, influx_error_text(body), self.describe())
        results = _query_results(body)
        error = next((r["error"] for r in results if "error" in r), None)
        if status >= 300 or error:
            log.warning("%s: cannot create the database (%s); writing anyway, it may exist",
                        self.describe(), error or f"HTTP {status}: {influx_error_text(body)}")
        self._database_ready = True

    async def write(self, lines: Sequence[bytes]) -> None:
        if not self._database_ready:
            await self._create_database()
        status, body = await self._post(
            self._write_path, gzip.compress(line_body(lines), compresslevel=GZIP_LEVEL),
            {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"})
        if 200 <= status < 300:
            return
        if status == 404:
            self._database_ready = False  # dropped meanwhile: create it again next time
        raise failure_for_status(status, influx_error_text(body), self.describe())

    async def close(self) -> None:
        """Nothing to release: each write is one request."""


def _query_results(body: str) -> list[dict[str, object]]:
    try:
        decoded = json.loads(body)
    except ValueError:
        return []
    return decoded.get("results", []) if isinstance(decoded, dict) else []


class InfluxV2Sink:
    """InfluxDB 2.x/3.x through ``influxdb-client``: ``POST /api/v2/write?org=..&bucket=..
    &precision=s`` with ``Authorization: Token ...`` and a gzip body."""

    def __init__(self, url: str, token: str, org: str, bucket: str,
                 timeout: float = WRITE_TIMEOUT_S) -> None:
        self.url = check_http_url(url, "InfluxDB URL")
        for name, value in (("token", token), ("org", org), ("bucket", bucket)):
            if not value:
                raise ValueError(f"InfluxDB 2.x needs a {name}")
        self.token = token
        self.org = org
        self.bucket = bucket
        self._timeout_ms = int(timeout * 1000)
        self._client: InfluxDBClientAsync | None = None

    @property
    def key(self) -> str:
        parts = urlsplit(self.url)
        return _file_safe("influxdb2", parts.hostname or "", str(parts.port or ""),
                          self.org, self.bucket)

    def describe(self) -> str:
        return f"InfluxDB 2.x at {self.url} (org {self.org!r}, bucket {self.bucket!r})"

    def _open_client(self) -> InfluxDBClientAsync:
        if self._client is None:
            # Imported here: influxdb_client takes about a second to import.
            from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

            self._client = InfluxDBClientAsync(url=self.url, token=self.token, org=self.org,
                                               enable_gzip=True, timeout=self._timeout_ms)
        return self._client

    async def write(self, lines: Sequence[bytes]) -> None:
        import aiohttp  # influxdb-client's async API runs on it; only this sink loads it
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        write_api = self._open_client().write_api()
        try:
            await write_api.write(bucket=self.bucket, org=self.org, record=line_body(lines),
                                  write_precision=WritePrecision.S)
        except ApiException as error:
            body = error.body
            text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
            detail = influx_error_text(text or str(error.reason or ""))
            raise failure_for_status(error.status or 0, detail, self.describe()) from None
        except (*CONNECTION_ERRORS, aiohttp.ClientError) as error:
            raise unreachable(self.describe(), error) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
