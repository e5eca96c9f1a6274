"""The phase gate (roles/testbed_phase/tasks/check_node.yml), run by ansible-playbook on
local hosts, each with its own /status document: a starved worker that ticks late passes, a
hung or exited one fails the gate with a message naming the host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hongbao.node.pool import STALE_AFTER_S

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAY = """\
- name: Gate each node's status
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: The gate
      ansible.builtin.include_role:
        name: testbed_phase
        tasks_from: check_node
      vars:
        testbed_phase_node_status:
          json: "{{ lookup('file', status_dir ~ '/' ~ inventory_hostname ~ '.json') | from_json }}"
"""

# host -> its workers (pid, last tick age), and what the gate says (None: it passes)
NODES: dict[str, tuple[list[tuple[int | None, float | None]], str | None]] = {
    "ticking": ([(101, 0.4), (102, 0.9)], None),
    "starved": ([(101, 0.4), (102, 23.0)], None),  # a connect storm: late, not hung
    "hung": ([(101, 0.4), (102, 75.0)], "2 of 2 workers running, last tick ages [0.4, 75.0]"),
    "exited": ([(101, 0.4), (None, 9.0)], "1 of 2 workers running"),
    "silent": ([(101, 0.4), (102, None)], "2 of 2 workers running, last tick ages [0.4, None]"),
}


def status(workers: list[tuple[int | None, float | None]]) -> dict[str, Any]:
    per_worker = [{"index": i, "pid": pid, "last_tick_age_s": age, "restarts": 0,
                   "live": pid is not None and age is not None and age <= STALE_AFTER_S}
                  for i, (pid, age) in enumerate(workers)]
    return {"role": "server", "workers": len(workers), "worker_restarts": 0,
            "per_worker": per_worker}


@pytest.mark.skipif(not PLAYBOOK.exists(), reason="make installs ansible into the venv")
def test_the_gate_fails_on_hung_or_exited_workers_only(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(PLAY)
    for host, (workers, _) in NODES.items():
        (tmp_path / f"{host}.json").write_text(json.dumps(status(workers)))
    result = subprocess.run(
        [str(PLAYBOOK), "-i", ",".join(NODES) + ",", str(tmp_path / "play.yml"),
         "-e", f"status_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "NO_COLOR": "1"})
    output = " ".join(result.stdout.split())  # undo YAML's line folding
    failed = dict(re.findall(r"(\w+) : ok=\d+ changed=\d+ unreachable=\d+ failed=(\d+)", output))
    assert failed == {host: "1" if says else "0" for host, (_, says) in NODES.items()}, output
    for host, (_, says) in NODES.items():
        if says:
            assert f"{host}: server status is not live: {says}" in output, output[-4000:]
