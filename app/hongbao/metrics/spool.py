"""Reading a point file as a spool: complete lines past a saved byte offset.

The offset lives in its own small file and is replaced atomically, only after the lines
before it were written to the sink. A crash between the write and the save replays a
batch; points carry explicit timestamps, so InfluxDB stores the replay as the same points.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 4 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Batch:
    lines: list[bytes]  # non-blank lines, without their newline
    consumed: int  # newline-terminated lines the batch covers, blank ones included
    end: int  # byte offset just after the batch


def read_offset(path: Path) -> int:
    """The saved offset, or 0 when there is none (a damaged file only costs a replay)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        log.warning("offset file %s holds %r, not a byte offset: shipping its spool "
                    "again from the start", path, text[:40])
        return 0
    return int(text)


def write_offset(path: Path, offset: int) -> None:
    """Replace the offset file atomically: readers see the old or the new offset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(f"{offset}\n", encoding="ascii")
    os.replace(temporary, path)


class SpoolCursor:
    """Where shipping stands in one point file, and how many complete lines remain."""

    def __init__(self, path: Path, offset_path: Path) -> None:
        self.path = path
        self.offset_path = offset_path
        self.offset = read_offset(offset_path)
        self.pending_lines = 0
        self._counted_to = self.offset

    def refresh(self) -> None:
        """Count the complete lines appended since the last refresh (a cut line waits)."""
        size = self.path.stat().st_size
        if size < self._counted_to:
            log.warning("%s shrank to %d bytes but %d were counted: shipping it again "
                        "from the start", self.path, size, self._counted_to)
            self.offset = self._counted_to = self.pending_lines = 0
        with self.path.open("rb") as handle:
            handle.seek(self._counted_to)
            position = self._counted_to
            while position < size:
                chunk = handle.read(min(READ_CHUNK_BYTES, size - position))
                if not chunk:
                    break
                position += len(chunk)
                last_newline = chunk.rfind(b"\n")
                if last_newline >= 0:
                    self.pending_lines += chunk.count(b"\n")
                    self._counted_to = position - len(chunk) + last_newline + 1

    def read_batch(self, max_lines: int, max_bytes: int = MAX_BATCH_BYTES) -> Batch | None:
        """Up to ``max_lines`` counted lines from the offset, or None when all are shipped."""
        available = self._counted_to - self.offset
        if available <= 0:
            return None
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(min(available, max_bytes))
            if b"\n" not in data:  # one line longer than max_bytes: take it whole
                data += handle.readline()
        raw_lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1][:max_lines]
        end = self.offset + sum(len(line) + 1 for line in raw_lines)
        return Batch([line for line in raw_lines if line.strip()], len(raw_lines), end)

    def advance(self, batch: Batch) -> None:
        """Mark ``batch`` as written to the sink and save the new offset."""
        self.offset = batch.end
        self.pending_lines -= batch.consumed
        write_offset(self.offset_path, self.offset)

    def restart(self) -> None:
        """Forget the saved offset: the whole file is shipped again."""
        self.offset = self._counted_to = self.pending_lines = 0
        write_offset(self.offset_path, 0)
