"""After a phase's load stops (roles/testbed_phase/tasks/catch_up.yml), run by
ansible-playbook on local hosts, each reading its own /status from a local HTTP server: the
play waits while a saturated node's workers serve their backlog, passes once they tick
again, and fails naming the host when they never do or a worker exited (without waiting)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ansible.test_phase_gate import PLAYBOOK, REPO, status
from tests.doubles.status_api import serving_json

PLAY = """\
- name: Let each node catch up
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Catch up
      ansible.builtin.include_role:
        name: testbed_phase
        tasks_from: catch_up
      vars:
        testbed_phase_node_control: "{{ status_url }}/{{ inventory_hostname }}"
        testbed_phase_catch_up_seconds: 3
        testbed_phase_catch_up_poll_s: 1
"""

Workers = list[tuple[int | None, float | None]]
FRESH = [(101, 0.4), (102, 0.8)]
BEHIND = [(101, 150.2), (102, 380.0)]  # what a 1M-connection server showed at 30k QPS
CATCHING_UP = [(101, 0.4), (102, 40.0)]  # ticks again, but not yet every second
QUIET, BUSY = 12.0, 0.4  # seconds since the node's requests last moved
# host -> what its /status shows read after read (the last one repeats): the workers and
# how long no shake arrived; the reads the play makes; what the gate says (None: it passes)
NODES: dict[str, tuple[list[tuple[Workers, float]], int, str | None]] = {
    "fresh": ([(FRESH, QUIET)], 1, None),
    "behind": ([(BEHIND, BUSY), (CATCHING_UP, BUSY), (FRESH, QUIET)], 3, None),
    # ticks every second, but still reads its backlog out of its sockets
    "reading": ([(FRESH, BUSY), (FRESH, 1.4), (FRESH, 3.1)], 3, None),
    # never quiet within the wait: the play says so and goes on (its workers are live)
    "busy": ([(FRESH, BUSY)], 4, None),
    "hung": ([(BEHIND, QUIET)], 4, "2 of 2 workers running, last tick ages [150.2, 380.0]"),
    "exited": ([([(101, 150.2), (None, 9.0)], BUSY)], 1, "1 of 2 workers running"),
}


@pytest.fixture
def status_server() -> Iterator[tuple[str, Counter[str]]]:
    reads: Counter[str] = Counter()

    def document_for(path: str) -> dict[str, Any]:
        host = path.strip("/").split("/")[0]
        shown, _, _ = NODES[host]
        workers, quiet_s = shown[min(reads[host], len(shown) - 1)]
        reads[host] += 1
        return {**status(workers), "requests_quiet_s": quiet_s}

    with serving_json(document_for) as url:
        yield url, reads


@pytest.mark.skipif(not PLAYBOOK.exists(), reason="make installs ansible into the venv")
def test_the_play_waits_for_a_node_to_catch_up_and_fails_only_when_it_never_does(
        tmp_path: Path, status_server: tuple[str, Counter[str]]) -> None:
    url, reads = status_server
    (tmp_path / "play.yml").write_text(PLAY)
    result = subprocess.run(
        [str(PLAYBOOK), "-i", ",".join(NODES) + ",", str(tmp_path / "play.yml"),
         "-e", f"status_url={url}", "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "NO_COLOR": "1"})
    output = " ".join(result.stdout.split())  # undo YAML's line folding
    failed = dict(re.findall(r"(\w+) : ok=\d+ changed=\d+ unreachable=\d+ failed=(\d+)", output))
    assert failed == {host: "1" if says else "0" for host, (_, _, says) in NODES.items()}, output
    assert dict(reads) == {host: count for host, (_, count, _) in NODES.items()}, output
    for host, (_, _, says) in NODES.items():
        if says:
            assert f"{host}: server status is not live: {says}" in output, output[-4000:]
    busy = re.findall(r"(\w+): shakes were still counted ([\d.]+) s ago, after 3 s of waiting",
                      output)
    assert busy == [("busy", str(BUSY))], output[-4000:]
