from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from hongbao.lab.errors import LabInventoryError
from hongbao.lab.topology import (
    INTERFACE_NAME_MAX,
    RFC2544_RANGE,
    load_topology,
    topology_from_inventory,
)
from tests.lab.smalllab import small_inventory, write_inventory

REPO_LAB = Path(__file__).resolve().parents[2] / "inventory" / "lab"


def _children(inventory: dict) -> dict:
    return inventory["all"]["children"]


def test_repo_lab_has_one_server_17_clients_and_one_monitor() -> None:
    topology = load_topology(REPO_LAB)
    groups = [host.group for host in topology.hosts]
    assert groups.count("server") == 1 and groups.count("monitor") == 1
    assert [h.name for h in topology.hosts if h.group == "clients"] == [
        f"client{n:02d}" for n in range(1, 18)]
    assert topology.bridge == "hb-br0"
    assert topology.host("client01").namespace == "hb-client01"


def test_repo_lab_addresses_are_unique_and_stay_inside_the_rfc2544_range() -> None:
    topology = load_topology(REPO_LAB)
    addresses = [a for host in topology.hosts for a in host.addresses] + [topology.gateway]
    assert len(addresses) == len(set(addresses))
    assert topology.network == RFC2544_RANGE
    assert all(address in RFC2544_RANGE for address in addresses)


def test_repo_lab_clients_each_have_extra_source_addresses() -> None:
    topology = load_topology(REPO_LAB)
    assert all(host.extra_addresses for host in topology.hosts if host.group == "clients")


def test_repo_lab_interface_names_fit_the_kernel_limit() -> None:
    topology = load_topology(REPO_LAB)
    names = [topology.bridge, *(host.veth for host in topology.hosts)]
    assert all(len(name) <= INTERFACE_NAME_MAX for name in names)


def test_inventory_directory_and_its_hosts_file_load_the_same(tmp_path: Path) -> None:
    directory = write_inventory(tmp_path / "lab", small_inventory(), tmp_path / "state")
    assert load_topology(directory) == load_topology(directory / "hosts.yml")


def test_small_lab_loads_addresses_extras_and_state_dir() -> None:
    topology = topology_from_inventory(small_inventory())
    client = topology.host("client01")
    assert client.address == IPv4Address("198.19.254.21")
    assert client.extra_addresses == (IPv4Address("198.19.254.31"), IPv4Address("198.19.254.32"))
    assert client.veth == "vhbt-client01"
    assert topology.network == IPv4Network("198.19.254.0/24")
    assert topology.state_dir == Path("/var/tmp/hongbao-lab-test")


def test_missing_inventory_names_the_path_it_looked_at(tmp_path: Path) -> None:
    with pytest.raises(LabInventoryError, match=r"no lab inventory at .*hosts\.yml"):
        load_topology(tmp_path)


def test_host_without_address_is_rejected_naming_the_host() -> None:
    inventory = small_inventory()
    del _children(inventory)["server"]["hosts"]["server"]["ansible_host"]
    with pytest.raises(LabInventoryError, match="host 'server' has no ansible_host"):
        topology_from_inventory(inventory)


def test_duplicate_address_is_rejected_naming_both_hosts() -> None:
    inventory = small_inventory()
    _children(inventory)["monitor"]["hosts"]["monitor"]["ansible_host"] = "198.19.254.10"
    with pytest.raises(LabInventoryError,
                       match=re.escape("198.19.254.10 is used by both server and monitor")):
        topology_from_inventory(inventory)


def test_extra_address_taken_by_another_host_is_rejected() -> None:
    inventory = small_inventory()
    client = _children(inventory)["clients"]["hosts"]["client01"]
    client["lab_source_addresses"].append("198.19.254.11")
    _children(inventory)["monitor"]["hosts"]["monitor"]["ansible_host"] = "198.19.254.12"
    _children(inventory)["server"]["hosts"]["server"]["ansible_host"] = "198.19.254.11"
    with pytest.raises(LabInventoryError, match="used by both server and client01"):
        topology_from_inventory(inventory)


def test_host_address_equal_to_the_bridge_address_is_rejected() -> None:
    inventory = small_inventory()
    _children(inventory)["server"]["hosts"]["server"]["ansible_host"] = "198.19.254.1"
    with pytest.raises(LabInventoryError, match=r"used by both the bridge .* and server"):
        topology_from_inventory(inventory)


def test_address_outside_the_lab_network_is_rejected() -> None:
    inventory = small_inventory()
    _children(inventory)["server"]["hosts"]["server"]["ansible_host"] = "198.19.253.10"
    with pytest.raises(LabInventoryError,
                       match=re.escape("198.19.253.10 is outside the lab network 198.19.254.0/24")):
        topology_from_inventory(inventory)


def test_bridge_outside_the_rfc2544_range_is_rejected() -> None:
    inventory = small_inventory()
    inventory["all"]["vars"]["lab_bridge_address"] = "10.0.0.1/24"
    with pytest.raises(LabInventoryError,
                       match=re.escape("outside the RFC 2544 range 198.18.0.0/15")):
        topology_from_inventory(inventory)


def test_empty_group_is_rejected_naming_the_group() -> None:
    inventory = small_inventory()
    _children(inventory)["clients"]["hosts"] = {}
    with pytest.raises(LabInventoryError, match="inventory group 'clients' is empty"):
        topology_from_inventory(inventory)


def test_host_in_two_groups_is_rejected() -> None:
    inventory = small_inventory()
    _children(inventory)["monitor"]["hosts"]["server"] = {"ansible_host": "198.19.254.12"}
    with pytest.raises(LabInventoryError, match="'server' appears in more than one group"):
        topology_from_inventory(inventory)


def test_namespace_too_long_for_its_veth_name_is_rejected() -> None:
    inventory = small_inventory()
    inventory["all"]["vars"]["lab_namespace_prefix"] = "hongbao-lab-"
    with pytest.raises(LabInventoryError, match="longer than 15 characters"):
        topology_from_inventory(inventory)


def test_missing_lab_variable_is_named() -> None:
    inventory = small_inventory()
    del inventory["all"]["vars"]["lab_bridge"]
    with pytest.raises(LabInventoryError, match=re.escape("all.vars.lab_bridge is missing")):
        topology_from_inventory(inventory)
