"""The real thing, as root: a three-host lab up, reached over SSH, rebuilt, and down again.

The tests run in file order against one lab; the last one takes it down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hongbao.lab import autogroup, netns
from hongbao.lab.errors import LabError
from hongbao.lab.lifecycle import leftovers
from hongbao.lab.paths import LabPaths
from hongbao.lab.processes import command_line, terminate
from hongbao.lab.sshclient import ssh_command
from hongbao.lab.sshd import lab_sshd_pids, running_sshd_pid
from hongbao.lab.tools import require_tools, run_tool
from hongbao.lab.topology import LabTopology, load_topology
from tests.lab.smalllab import run_lab, small_inventory, write_inventory

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the lab needs root: run the lab tests as root")


@dataclass(frozen=True)
class SmallLab:
    topology: LabTopology
    paths: LabPaths
    flags: tuple[str, ...]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallLab]:
    try:
        require_tools()
    except LabError as error:
        pytest.skip(str(error))
    base = tmp_path_factory.mktemp("lab")
    inventory = write_inventory(base / "inventory", small_inventory(), base / "state")
    topology = load_topology(inventory)
    small_lab = SmallLab(topology, LabPaths(topology.state_dir),
                         ("--inventory", str(inventory)))
    try:
        run_lab("down", *small_lab.flags)  # whatever an interrupted earlier run left behind
        assert run_lab("up", *small_lab.flags) == 0
        yield small_lab
    finally:
        run_lab("down", *small_lab.flags)


def _ping(namespace: str, address: object) -> bool:
    result = subprocess.run(["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "2",
                             str(address)], capture_output=True, check=False)
    return result.returncode == 0


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not so within {timeout_s} s"
        time.sleep(0.05)


def _sshd_pids(lab: SmallLab) -> dict[str, int | None]:
    return {host.name: running_sshd_pid(host, lab.paths) for host in lab.topology.hosts}


def test_up_makes_a_namespace_per_host_and_a_bridge(lab: SmallLab) -> None:
    namespaces = netns.existing_namespaces()
    assert {host.namespace for host in lab.topology.hosts} <= namespaces
    assert lab.topology.bridge in netns.existing_links()


def test_up_turns_cfs_autogroup_off_and_keeps_the_machines_setting(lab: SmallLab) -> None:
    # Every host on one kernel: each ssh session must not get an equal share of the CPU.
    # (Whether it comes back at `lab down` depends on other labs up: the unit tests.)
    if not autogroup.SETTING.exists():
        pytest.skip("this kernel has no CFS autogroup")
    assert autogroup.SETTING.read_text().strip() == "0"
    held = autogroup.HELD_FILE.read_text().split()
    assert held[0] in ("0", "1") and str(lab.paths.root) in held[1:]


def test_lab_traffic_is_routed_through_the_lab_bridge(lab: SmallLab) -> None:
    assert all(netns.route_device(lab.topology, host) == lab.topology.bridge
               for host in lab.topology.hosts)


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping: apt-get install iputils-ping")
def test_every_host_pings_every_other_host_and_its_extra_addresses(lab: SmallLab) -> None:
    hosts = lab.topology.hosts
    unreachable = [(source.name, str(address)) for source in hosts for target in hosts
                   if target is not source for address in target.addresses
                   if not _ping(source.namespace, address)]
    assert unreachable == []


def test_ssh_into_a_host_runs_commands_inside_its_namespace(lab: SmallLab) -> None:
    client = lab.topology.host("client01")
    result = subprocess.run(ssh_command(lab.paths, client.name, "ip", "-4", "addr"),
                            capture_output=True, text=True, timeout=30, check=True)
    assert all(f"inet {address}/" in result.stdout for address in client.addresses)
    assert f"inet {lab.topology.host('server').address}/" not in result.stdout


def test_second_up_keeps_every_namespace_and_sshd(lab: SmallLab,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = _sshd_pids(lab)
    capsys.readouterr()
    assert run_lab("up", *lab.flags) == 0
    output = capsys.readouterr().out
    assert _sshd_pids(lab) == before
    assert output.count("namespace kept") == len(lab.topology.hosts)
    assert "created" not in output and "started" not in output


def test_up_rebuilds_a_removed_host_and_others_reach_it_at_once(lab: SmallLab) -> None:
    monitor = lab.topology.host("monitor")
    server = lab.topology.host("server")
    assert _ping(server.namespace, monitor.address)  # the server caches monitor's old MAC
    terminate(netns.namespace_pids(monitor.namespace))
    run_tool("ip", "netns", "del", monitor.namespace)
    assert run_lab("up", *lab.flags) == 0
    assert _ping(server.namespace, monitor.address)
    assert running_sshd_pid(monitor, lab.paths) is not None


def test_status_shows_every_host_reachable_over_ssh(lab: SmallLab,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run_lab("status", *lab.flags) == 0
    rows = capsys.readouterr().out.splitlines()
    for host in lab.topology.hosts:
        row = next(line for line in rows if line.startswith(f"{host.name} "))
        assert row.split()[-1] == "yes", row


def test_down_ends_ssh_sessions_and_leaves_nothing_of_the_lab(lab: SmallLab) -> None:
    monitor = lab.topology.host("monitor")
    session = subprocess.Popen(ssh_command(lab.paths, monitor.name, "sleep", "60"))
    try:
        _wait_until(lambda: any(command_line(pid).startswith("sleep 60")
                                for pid in netns.namespace_pids(monitor.namespace)))
        assert run_lab("down", *lab.flags) == 0
        session.wait(timeout=5)  # the session's end reached this side: no half-open connection
    finally:
        session.kill()
        session.wait()
    assert leftovers(lab.topology, lab.paths) == []
    assert not {host.namespace for host in lab.topology.hosts} & netns.existing_namespaces()
    assert lab.topology.bridge not in netns.existing_links()
    assert lab_sshd_pids(lab.paths) == []
    assert not Path(lab.paths.root).exists()
