"""ansible-lint with the production profile over roles/ and playbooks/ (config: .ansible-lint)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ANSIBLE_LINT = VENV_BIN / "ansible-lint"
LINT_TIMEOUT_S = 600
LINTED = ("roles", "playbooks")


@pytest.mark.skipif(not ANSIBLE_LINT.exists(),
                    reason=f"no {ANSIBLE_LINT}: make installs the test extras")
def test_roles_and_playbooks_pass_ansible_lint_production_profile() -> None:
    result = subprocess.run(
        [str(ANSIBLE_LINT), "--profile", "production", "--offline", "--format", "pep8",
         "--nocolor", *LINTED],
        cwd=REPO, capture_output=True, text=True, timeout=LINT_TIMEOUT_S, check=False,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
             "NO_COLOR": "1"},
    )
    assert result.returncode == 0, (
        f"ansible-lint found problems (exit {result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )
