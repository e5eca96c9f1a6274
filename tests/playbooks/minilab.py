"""A 4-host lab (server, monitor, two clients) on its own bridge and range, built with
the real 'hongbao lab' and the real lab group_vars, for running the real playbooks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HONGBAO = [sys.executable, "-m", "hongbao.cli"]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

HOSTS = """\
all:
  vars:
    lab_bridge: hb-pbt0
    lab_bridge_address: 198.19.110.1/24
    lab_namespace_prefix: hbpbt-
    lab_state_dir: {state}
  children:
    server:
      hosts:
        server: {{ansible_host: 198.19.110.10}}
    monitor:
      hosts:
        monitor: {{ansible_host: 198.19.110.11}}
    clients:
      hosts:
        client01: {{ansible_host: 198.19.110.21, lab_source_addresses: [198.19.110.121]}}
        client02: {{ansible_host: 198.19.110.22, lab_source_addresses: [198.19.110.122]}}
"""
MONITOR_INFLUX = "http://198.19.110.11:8086"
# Everything the playbooks install and write on the hosts goes under a directory of the
# test's own (not /opt/hongbao or /var/lib/hongbao, nor what an earlier run left there).
# It lies under /var/tmp, not pytest's 0700 temp: InfluxDB runs as its own user there.
INSTALL_PARENT = Path("/var/tmp")
INSTALL_PREFIX = "hongbao-playbooks-"
PATHS = """\
testbed_home: {root}/home
testbed_venv: {root}/opt/venv
hongbao_app_wheelhouse: {root}/opt/wheelhouse
hongbao_app_controller_wheelhouse: {root}/controller/wheelhouse
"""


def make_install_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix=INSTALL_PREFIX, dir=INSTALL_PARENT))
    root.chmod(0o755)
    return root


def write_inventory(root: Path, hosts: str = HOSTS, install_root: Path | None = None) -> Path:
    inventory = root / "inventory"
    inventory.mkdir(parents=True, exist_ok=True)
    (inventory / "hosts.yml").write_text(hosts.format(state=root / "state"))
    shutil.copytree(REPO / "inventory" / "lab" / "group_vars", inventory / "group_vars",
                    dirs_exist_ok=True)
    (inventory / "group_vars" / "all" / "test_paths.yml").write_text(
        PATHS.format(root=install_root or root))
    return inventory


def lab(action: str, inventory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HONGBAO, "lab", action, "--inventory", str(inventory)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def playbook(name: str, inventory: Path, *extra: str,
             timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), f"playbooks/{name}", *extra],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
