"""A run directory that cannot be written stops a node at start-up with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("role", [["server", "--port", "0"], ["client", "--server", "127.0.0.1:1"]])
def test_a_run_directory_that_cannot_be_written_is_one_line(tmp_path: Path,
                                                             role: list[str]) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "hongbao.cli", *role, "--run-dir", str(not_a_directory / "run")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == (f"hongbao {role[0]}: error: run directory "
                             f"{not_a_directory / 'run'} cannot be written: Not a directory\n")
