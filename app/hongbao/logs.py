"""One log format for every hongbao process (nodes, workers, tools)."""

from __future__ import annotations

import logging


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(processName)s %(levelname)s %(message)s"
    )
