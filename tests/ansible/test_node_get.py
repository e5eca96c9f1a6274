"""A GET of a node's control API (roles/testbed_phase/tasks/node_get.yml: phase 1's status
reads, the phase tags), run by ansible-playbook on local hosts against a real HTTP server on
loopback: a node that answers gives the body for the path asked, query included; one that
does not fails the GET in one line, naming the host, the path and the reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hongbao.local.node_process import free_port
from tests.doubles.status_api import serving_json

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAY = """\
- name: Read each node's status
  hosts: server:clients
  connection: local
  gather_facts: false
  tasks:
    - name: The GET
      ansible.builtin.include_role:
        name: testbed_phase
        tasks_from: node_get
      vars:
        testbed_phase_node_path: /phase?name=phase1&x=*
    - name: What it read
      ansible.builtin.debug:
        msg: "read {{ inventory_hostname }}: {{ (testbed_phase_node_answer.stdout
          | from_json).path }}"
"""


@pytest.fixture
def control_api() -> Iterator[str]:
    with serving_json(lambda path: {"role": "server", "path": path}) as url:
        yield url


@pytest.mark.skipif(not PLAYBOOK.exists(), reason="make installs ansible into the venv")
def test_a_node_that_answers_is_read_and_one_that_does_not_fails_in_one_line(
        tmp_path: Path, control_api: str) -> None:
    up, closed = control_api, f"http://127.0.0.1:{free_port()}"
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "hosts.ini").write_text(
        f"[server]\nserver1 testbed_phase_server_control={up}\n"
        f"[clients]\nclient1 testbed_phase_client_control={up}\n"
        f"client2 testbed_phase_client_control={closed}\n")
    result = subprocess.run(
        [str(PLAYBOOK), "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "play.yml"),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "NO_COLOR": "1"})
    output = " ".join(result.stdout.split())  # undo YAML's line folding
    failed = dict(re.findall(r"(\w+) : ok=\d+ changed=\d+ unreachable=\d+ failed=(\d+)", output))
    assert failed == {"server1": "0", "client1": "0", "client2": "1"}, output[-4000:]
    assert "read server1: /phase?name=phase1&x=*" in output, output[-4000:]
    assert "read client1: /phase?name=phase1&x=*" in output, output[-4000:]
    assert ("client2: no answer from the node's control API at /phase?name=phase1&x=*: "
            "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>"
            ) in output, output[-4000:]
