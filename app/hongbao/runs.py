"""Run identity and run directories: ``<runs root>/<run_id>/{metrics,ledger,logs}``."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def new_run_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S")


def resolve_run_id(given: str | None) -> str:
    run_id = given or os.environ.get("HONGBAO_RUN_ID") or new_run_id()
    if not RUN_ID_PATTERN.match(run_id):
        raise ValueError(f"run id {run_id!r} may hold only letters, digits, '_', '.' and '-'")
    return run_id


def resolve_run_dir(given: str | None, run_id: str) -> Path:
    """The run directory, created; ValueError (one line) when it cannot be written."""
    root = Path(os.environ.get("HONGBAO_RUNS", "runs"))
    run_dir = Path(given) if given else root / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as error:
        raise ValueError(f"run directory {run_dir} cannot be written: "
                         f"{error.strerror or error}") from None
    return run_dir
