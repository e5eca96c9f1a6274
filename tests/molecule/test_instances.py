"""``hongbao lab instance up|down``: the single hosts Molecule's create and destroy make.

The root tests use their own bridge and network (hb-moltest, 198.19.201.0/24), so they
can run while real scenarios use hb-mol0.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from hongbao.lab import netns
from hongbao.lab.errors import LabError
from hongbao.lab.instances import (
    Instance,
    InstanceNetwork,
    etc_upper_dir,
    instance_down,
    instance_up,
)
from hongbao.lab.paths import LabPaths
from hongbao.lab.tools import require_tools
from tests.lab.smalllab import run_lab

TEST_NETWORK = InstanceNetwork("hb-moltest", IPv4Interface("198.19.201.1/24"), "hbmt-")
NETWORK_FLAGS = ("--bridge", TEST_NETWORK.bridge,
                 "--bridge-address", str(TEST_NETWORK.bridge_interface),
                 "--namespace-prefix", TEST_NETWORK.namespace_prefix)
PROBE_FILE = "hongbao-overlay-probe"

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="instances are network namespaces: run as root")


@dataclass(frozen=True)
class Instances:
    paths: LabPaths
    overlaid: Instance
    plain: Instance


def ssh(paths: LabPaths, instance: Instance, command: str) -> str:
    result = subprocess.run(
        ["ssh", "-i", str(paths.client_key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", f"root@{instance.host.address}", command],
        capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    if os.geteuid() != 0:
        pytest.skip("instances are network namespaces: run as root")
    try:
        require_tools()
    except LabError as error:
        pytest.skip(str(error))
    paths = LabPaths(tmp_path_factory.mktemp("instances") / "lab")
    try:
        overlaid, _ = instance_up("mol-a", paths, TEST_NETWORK, overlay_etc=True)
        plain, _ = instance_up("mol-b", paths, TEST_NETWORK)
        yield Instances(paths, overlaid, plain)
    finally:
        for name in ("mol-a", "mol-b"):
            instance_down(name, paths, TEST_NETWORK)


@needs_root
def test_instances_take_the_lowest_free_addresses_from_dot_10(instances: Instances) -> None:
    assert instances.overlaid.host.address == IPv4Address("198.19.201.10")
    assert instances.plain.host.address == IPv4Address("198.19.201.11")
    assert instances.overlaid.host.namespace == "hbmt-10"


@needs_root
def test_each_instance_has_its_own_hostname(instances: Instances) -> None:
    assert ssh(instances.paths, instances.overlaid, "hostname") == "mol-a"
    assert ssh(instances.paths, instances.plain, "hostname") == "mol-b"
    assert os.uname().nodename not in ("mol-a", "mol-b")


@needs_root
def test_writes_to_etc_land_in_the_overlay_not_in_this_machines_etc(
        instances: Instances) -> None:
    ssh(instances.paths, instances.overlaid, f"echo probe > /etc/{PROBE_FILE}")
    assert ssh(instances.paths, instances.overlaid, f"cat /etc/{PROBE_FILE}") == "probe"
    assert not Path("/etc", PROBE_FILE).exists()
    upper = etc_upper_dir(instances.paths, "mol-a")
    assert (upper / PROBE_FILE).read_text() == "probe\n"


@needs_root
def test_instances_reach_each_other_over_the_bridge(instances: Instances) -> None:
    ssh(instances.paths, instances.plain, f"ping -c 1 -W 2 {instances.overlaid.host.address}")


@needs_root
def test_up_again_keeps_the_running_instance(instances: Instances) -> None:
    again, created = instance_up("mol-a", instances.paths, TEST_NETWORK, overlay_etc=True)
    assert not created
    assert again == instances.overlaid


@needs_root
def test_cli_prints_the_login_molecule_needs(instances: Instances,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run_lab("instance", "up", "mol-b", "--state-dir", str(instances.paths.root),
                   *NETWORK_FLAGS) == 0
    login = json.loads(capsys.readouterr().out)
    assert login == {
        "instance": "mol-b", "address": "198.19.201.11", "user": "root", "port": 22,
        "identity_file": str(instances.paths.client_key), "namespace": "hbmt-11",
        "created": False,
    }


@needs_root
def test_down_removes_everything_and_the_last_takes_bridge_and_state_dir(
        tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "lab")
    first, _ = instance_up("mol-x", paths, TEST_NETWORK, overlay_etc=True)
    second, _ = instance_up("mol-y", paths, TEST_NETWORK)
    try:
        instance_down("mol-x", paths, TEST_NETWORK)
        assert first.host.namespace not in netns.existing_namespaces()
        assert not paths.host_dir("mol-x").exists()
        assert paths.root.exists()
    finally:
        instance_down("mol-y", paths, TEST_NETWORK)
    assert second.host.namespace not in netns.existing_namespaces()
    assert not paths.root.exists()
    if not TEST_NETWORK.instance_namespaces(netns.existing_namespaces()):
        assert TEST_NETWORK.bridge not in netns.existing_links()
    assert instance_down("mol-y", paths, TEST_NETWORK) == []


def test_instance_names_must_be_host_names(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="instance name 'a b'"):
        instance_up("a b", LabPaths(tmp_path), TEST_NETWORK)


def test_the_bridge_network_must_lie_in_the_rfc2544_range() -> None:
    with pytest.raises(LabError, match="outside the RFC 2544 range"):
        InstanceNetwork("hb-x", IPv4Interface("10.1.2.1/24"), "hbx-")
