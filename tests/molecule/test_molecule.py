"""``molecule test`` for every role with a ``molecule/default`` scenario, as root.

Each run creates the scenario's instances (namespaces with sshd, molecule/shared/create.yml),
converges, converges again expecting no change, verifies and destroys. Roles that gain a
scenario later are picked up by the glob.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MOLECULE = VENV_BIN / "molecule"
SCENARIO_TIMEOUT_S = 600  # a hang guard: make test runs other tests beside molecule
DESTROY_TIMEOUT_S = 120
OUTPUT_TAIL_LINES = 80
NEEDED_TOOLS = ("ip", "sshd", "unshare")
# The hongbao roles' scenarios share one venv and wheelhouse here (molecule.yml): the first
# scenario installs, the others find it. It starts empty, so no run depends on an earlier one.
SHARED_INSTALL_DIR = Path("/var/tmp/hongbao-molecule")


def roles_with_scenarios() -> list[str]:
    return sorted(path.parents[2].name
                  for path in (REPO / "roles").glob("*/molecule/default/molecule.yml"))


def molecule_env(ephemeral_dir: Path) -> dict[str, str]:
    """Molecule runs ansible-playbook and ansible-config by name: the venv's come first.

    The scenario's state goes to ``ephemeral_dir``, not to the ~/.ansible/tmp directory a
    hand-run ``molecule test`` of the same role would use at the same time.
    """
    return {
        **os.environ,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral_dir),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def run_molecule(role: str, action: str, ephemeral_dir: Path,
                 timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``molecule ACTION`` in roles/ROLE; on timeout it is killed with all its descendants."""
    with subprocess.Popen([str(MOLECULE), action], cwd=REPO / "roles" / role,
                          env=molecule_env(ephemeral_dir), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
            output, _ = process.communicate()
            output += f"\n... killed after {timeout_s:.0f} s"
        return subprocess.CompletedProcess(process.args, process.returncode, output)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and its descendants: molecule starts ansible-playbook in a session
    of its own, so killing molecule's process group would leave it running."""
    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(tree, timeout=10)


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module", autouse=True)
def fresh_shared_install() -> None:
    if os.geteuid() == 0:
        shutil.rmtree(SHARED_INSTALL_DIR, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="molecule instances are network namespaces with sshd: run as root")
@pytest.mark.skipif(not MOLECULE.exists(), reason=f"no {MOLECULE}: make installs the test extras")
@pytest.mark.parametrize("role", roles_with_scenarios())
def test_role_converges_idempotently_and_verifies(role: str, tmp_path: Path) -> None:
    missing = [tool for tool in NEEDED_TOOLS if shutil.which(tool) is None
               and not Path("/usr/sbin", tool).exists()]
    if missing:
        pytest.skip(f"molecule instances need {', '.join(missing)}: "
                    "bash scripts/install-debian-packages.sh")
    started = time.monotonic()
    ephemeral_dir = tmp_path / "molecule"
    result = run_molecule(role, "test", ephemeral_dir, SCENARIO_TIMEOUT_S)
    took = time.monotonic() - started
    print(f"molecule test of {role}: {took:.1f} s, exit {result.returncode}")
    if result.returncode != 0:
        destroyed = run_molecule(role, "destroy", ephemeral_dir, DESTROY_TIMEOUT_S)
        pytest.fail(f"molecule test of role {role} failed (exit {result.returncode}, "
                    f"{took:.0f} s); destroy exit {destroyed.returncode}; last lines:\n"
                    f"{tail(result.stdout)}", pytrace=False)
