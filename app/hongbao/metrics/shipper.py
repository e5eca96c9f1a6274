"""Ships a node's point files to a remote sink, in order, without losing a line.

Each file is read from a saved byte offset; complete lines go out in batches, and the
offset moves only after the sink stored a batch. While the sink is down the lines wait
in the file (the spool) and go out, in order, once it is back. Offsets are kept per
destination under ``<run_dir>/metrics/.shipped/<sink key>/<file>.offset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from hongbao.backoff import capped_exponential
from hongbao.metrics.pointfile import metrics_dir
from hongbao.metrics.ratelimitedlog import RateLimitedLog
from hongbao.metrics.sinks import Sink, SinkRejected, SinkUnavailable
from hongbao.metrics.spool import Batch, SpoolCursor

log = logging.getLogger(__name__)

BATCH_LINES = 5000
POLL_INTERVAL_S = 1.0
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 16.0
FINAL_FLUSH_TIMEOUT_S = 10.0
LOGGED_LINE_CHARS = 200


def shipped_dir(run_dir: Path, sink: Sink) -> Path:
    return metrics_dir(run_dir) / ".shipped" / sink.key


async def _wait_for_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Shipper:
    """Tails the point files of one run directory that match ``patterns`` into ``sink``."""

    def __init__(self, run_dir: Path, patterns: Sequence[str], sink: Sink, *,
                 batch_lines: int = BATCH_LINES, poll_interval: float = POLL_INTERVAL_S,
                 first_retry: float = FIRST_RETRY_S, max_retry: float = MAX_RETRY_S,
                 final_flush_timeout: float = FINAL_FLUSH_TIMEOUT_S,
                 on_batch: Callable[[Shipper], None] | None = None) -> None:
        if not patterns:
            raise ValueError("a shipper needs at least one file pattern, e.g. '*.lp'")
        self.run_dir = run_dir
        self.patterns = list(patterns)
        self.sink = sink
        self.batch_lines = batch_lines
        self.poll_interval = poll_interval
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.final_flush_timeout = final_flush_timeout
        self._on_batch = on_batch
        self._offsets_dir = shipped_dir(run_dir, sink)
        self._cursors: dict[Path, SpoolCursor] = {}
        self._limited = RateLimitedLog(log)
        self._stall_deadline: tuple[asyncio.Timeout, float] | None = None
        self.lines_shipped = 0
        self.lines_dropped = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_shipped_at: float | None = None

    @property
    def lines_pending(self) -> int:
        """Complete lines counted in the files but not shipped yet."""
        return sum(cursor.pending_lines for cursor in self._cursors.values())

    def status(self) -> dict[str, Any]:
        return {
            "sink": self.sink.describe(),
            "files": len(self._cursors),
            "lines_shipped": self.lines_shipped,
            "lines_pending": self.lines_pending,
            "lines_dropped": self.lines_dropped,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_shipped_at": self.last_shipped_at,
        }

    def next_delay(self) -> float:
        if self.consecutive_failures == 0:
            return self.poll_interval
        return capped_exponential(self.consecutive_failures, self.first_retry, self.max_retry)

    def restart_from_beginning(self) -> None:
        """Forget what was shipped to this sink: every matching file goes out again."""
        self._discover()
        for cursor in self._cursors.values():
            cursor.restart()

    def matching_files(self) -> list[Path]:
        """The point files the patterns select right now."""
        self._discover()
        return sorted(self._cursors)

    def _discover(self) -> None:
        directory = metrics_dir(self.run_dir)
        for pattern in self.patterns:
            for path in sorted(directory.glob(pattern)):
                if path not in self._cursors and path.is_file():
                    offset_path = self._offsets_dir / f"{path.name}.offset"
                    self._cursors[path] = SpoolCursor(path, offset_path)

    def _file_problem(self, cursor: SpoolCursor, error: OSError) -> None:
        self._limited.log("file", logging.ERROR,
                          f"cannot ship {cursor.path}: {error}; will try again")

    def _refresh(self) -> bool:
        """Find new files and count new lines; False if a file could not be read."""
        self._discover()
        readable = True
        for path, cursor in list(self._cursors.items()):
            try:
                cursor.refresh()
            except FileNotFoundError:
                log.warning("%s disappeared; %d of its lines were not shipped",
                            path, cursor.pending_lines)
                del self._cursors[path]
            except OSError as error:
                self._file_problem(cursor, error)
                readable = False
        return readable

    async def ship_pass(self) -> bool:
        """Ship every complete line counted now; True when all went out (or were
        rejected for good), False when the sink failed and the rest waits for a retry."""
        caught_up = self._refresh()
        for cursor in list(self._cursors.values()):
            try:
                while (batch := cursor.read_batch(self.batch_lines)) is not None:
                    dropped = await self._deliver(batch.lines)
                    cursor.advance(batch)
                    self._delivered(batch, dropped)
            except SinkUnavailable as error:
                self._failed(error)
                return False
            except OSError as error:
                self._file_problem(cursor, error)
                caught_up = False
        self.consecutive_failures = 0
        return caught_up

    async def _deliver(self, lines: list[bytes]) -> int:
        """Write ``lines``; returns how many the sink refused for good. A refused batch is
        split in halves until the refused lines are alone, so good lines still get in."""
        if not lines:
            return 0
        try:
            await self.sink.write(lines)
            return 0
        except SinkRejected as error:
            if len(lines) > 1:
                middle = len(lines) // 2
                return await self._deliver(lines[:middle]) + await self._deliver(lines[middle:])
            self.last_error = str(error)
            self.last_error_at = time.time()
            line = lines[0].decode(errors="replace")[:LOGGED_LINE_CHARS]
            self._limited.log("rejected", logging.ERROR,
                              f"{error}; dropping the line it refuses: {line!r}")
            return 1

    def _delivered(self, batch: Batch, dropped: int) -> None:
        if self.consecutive_failures:
            log.info("%s stores points again after %d failed attempts; replaying %d spooled "
                     "lines", self.sink.describe(), self.consecutive_failures,
                     self.lines_pending + batch.consumed)
            self.consecutive_failures = 0
        self.lines_shipped += len(batch.lines) - dropped
        self.lines_dropped += dropped
        self.last_shipped_at = time.time()
        if self._stall_deadline is not None:
            deadline, seconds = self._stall_deadline
            deadline.reschedule(asyncio.get_running_loop().time() + seconds)
        if self._on_batch is not None:
            self._on_batch(self)

    def _failed(self, error: SinkUnavailable) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = str(error)
        self.last_error_at = time.time()
        self._limited.log("unavailable", logging.WARNING,
                          f"{error}; {self.lines_pending} lines stay spooled, next try in "
                          f"{self.next_delay():g} s")

    async def flush(self, timeout: float, *, extend_on_progress: bool = False) -> bool:
        """Ship until nothing is pending, retrying with backoff. Returns False after
        ``timeout`` seconds, or with ``extend_on_progress`` after ``timeout`` seconds in
        which no batch went out (a long replay that progresses is not cut short)."""
        try:
            async with asyncio.timeout(timeout) as deadline:
                if extend_on_progress:
                    self._stall_deadline = (deadline, timeout)
                while not await self.ship_pass():
                    await asyncio.sleep(self.next_delay())
        except TimeoutError:
            return False
        finally:
            self._stall_deadline = None
        return True

    async def _background_pass(self) -> None:
        """A pass that never ends the background task: an unexpected error is counted and
        logged (once a second at most) like a failing sink, and the next pass retries."""
        try:
            await self.ship_pass()
        except Exception as error:
            self._failed(SinkUnavailable(f"shipping to {self.sink.describe()} failed "
                                         f"unexpectedly: {error!r}"))

    async def run(self, stop: asyncio.Event) -> bool:
        """Ship every ``poll_interval`` (backing off while the sink fails) until ``stop``
        is set, then try a final flush for ``final_flush_timeout`` and close the sink.
        Returns True when the final flush left nothing behind."""
        log.info("shipping %s of %s to %s", ", ".join(self.patterns),
                 metrics_dir(self.run_dir), self.sink.describe())
        try:
            while not stop.is_set():
                await self._background_pass()
                await _wait_for_stop(stop, self.next_delay())
            flushed = await self.flush(self.final_flush_timeout)
            if not flushed:
                log.warning("%d lines not shipped to %s (%s); they stay in %s: ship them "
                            "later with 'hongbao ship %s'", self.lines_pending,
                            self.sink.describe(), self.last_error, metrics_dir(self.run_dir),
                            self.run_dir)
            return flushed
        finally:
            await self.sink.close()

    def ship_once(self) -> bool:
        """One pass, from code without a running event loop (a CLI); True when caught up."""
        return asyncio.run(self._then_close(self.ship_pass()))

    def ship_all(self, timeout: float) -> bool:
        """Ship everything, from code without a running event loop; False once ``timeout``
        seconds pass without a batch going out (the sink stays down)."""
        return asyncio.run(self._then_close(self.flush(timeout, extend_on_progress=True)))

    async def _then_close(self, work: Awaitable[bool]) -> bool:
        try:
            return await work
        finally:
            await self.sink.close()
