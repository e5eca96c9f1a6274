"""The always-written local sink: one append-only ``.lp`` file per process.

It is the embedded default and doubles as the spool: shippers read it from a saved
offset, so nothing is lost while a remote sink is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from hongbao.metrics.lineprotocol import Point, format_point, parse_line


def metrics_dir(run_dir: Path) -> Path:
    return run_dir / "metrics"


class PointFile:
    """Appends points to ``<run_dir>/metrics/<name>.lp`` and flushes every batch."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.path = metrics_dir(run_dir) / f"{name}.lp"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = self.path.open("a", encoding="utf-8")

    def write(self, points: list[Point]) -> None:
        self._file.write("".join(format_point(p) + "\n" for p in points))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_points(path: Path) -> Iterator[Point]:
    """Every complete line of a point file (a line cut by a crash is skipped)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n") and line.strip():
                yield parse_line(line)


def run_points(run_dir: Path) -> Iterator[Point]:
    for path in sorted(metrics_dir(run_dir).glob("*.lp")):
        yield from read_points(path)
