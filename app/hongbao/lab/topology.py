"""The lab inventory (``inventory/lab/hosts.yml``) as data: its bridge, network and hosts."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from hongbao.lab.errors import LabInventoryError

RFC2544_RANGE = IPv4Network("198.18.0.0/15")
GROUPS = ("server", "clients", "monitor")
INVENTORY_FILE = "hosts.yml"
INTERFACE_NAME_MAX = 15  # the kernel's IFNAMSIZ minus the terminating NUL
HOST_VETH_PREFIX = "v"  # the bridge-side veth end is "v" + the namespace name
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class LabHost:
    name: str
    group: str
    namespace: str
    veth: str  # the bridge-side end of the host's veth pair; the namespace end is eth0
    address: IPv4Address
    extra_addresses: tuple[IPv4Address, ...] = ()

    @property
    def addresses(self) -> tuple[IPv4Address, ...]:
        return (self.address, *self.extra_addresses)


@dataclass(frozen=True)
class LabTopology:
    bridge: str
    bridge_interface: IPv4Interface
    namespace_prefix: str
    state_dir: Path
    hosts: tuple[LabHost, ...]

    @property
    def network(self) -> IPv4Network:
        return self.bridge_interface.network

    @property
    def gateway(self) -> IPv4Address:
        return self.bridge_interface.ip

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in the lab: hosts are {[h.name for h in self.hosts]}")


def load_topology(inventory: Path) -> LabTopology:
    """Read ``inventory`` (a directory holding hosts.yml, or the file itself)."""
    path = inventory / INVENTORY_FILE if inventory.is_dir() else inventory
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LabInventoryError(
            f"no lab inventory at {path}: pass --inventory inventory/lab or a hosts.yml"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LabInventoryError(f"{path} is not valid YAML: {error}") from None
    return topology_from_inventory(data, source=str(path))


def topology_from_inventory(data: Any, source: str = "the lab inventory") -> LabTopology:
    everything = _mapping(data, source, "the top level")
    all_group = _mapping(everything.get("all"), source, "all")
    lab_vars = _mapping(all_group.get("vars"), source, "all.vars")
    children = _mapping(all_group.get("children"), source, "all.children")

    bridge = _name(_required(lab_vars, "lab_bridge", source), source, "lab_bridge")
    _check_interface_length(bridge, source, "lab_bridge")
    bridge_interface = _bridge_interface(_required(lab_vars, "lab_bridge_address", source), source)
    prefix = str(_required(lab_vars, "lab_namespace_prefix", source))
    state_dir = Path(str(_required(lab_vars, "lab_state_dir", source)))

    owners = {bridge_interface.ip: "the bridge (lab_bridge_address)"}
    hosts: list[LabHost] = []
    for group in GROUPS:
        members = _mapping(_mapping(children.get(group), source, f"group {group!r}").get("hosts"),
                           source, f"group {group!r} hosts")
        if not members:
            raise LabInventoryError(f"{source}: inventory group {group!r} is empty: add hosts")
        for name, host_vars in members.items():
            host = _host(str(name), group, host_vars or {}, prefix, bridge_interface.network,
                         source)
            _claim_addresses(host, owners, source)
            hosts.append(host)
    _check_unique_names(hosts, source)
    return LabTopology(bridge, bridge_interface, prefix, state_dir, tuple(hosts))


def _host(name: str, group: str, host_vars: Any, prefix: str, network: IPv4Network,
          source: str) -> LabHost:
    where = f"host {name!r}"
    host_vars = _mapping(host_vars, source, where)
    namespace = _name(prefix + _name(name, source, where), source, f"{where} namespace")
    veth = HOST_VETH_PREFIX + namespace
    _check_interface_length(veth, source, f"{where} veth")
    if "ansible_host" not in host_vars:
        raise LabInventoryError(
            f"{source}: {where} has no ansible_host: give it a lab address in {network}"
        )
    address = _lab_address(host_vars["ansible_host"], network, source, f"{where} ansible_host")
    extras = host_vars.get("lab_source_addresses") or []
    if not isinstance(extras, list):
        raise LabInventoryError(f"{source}: {where} lab_source_addresses must be a list")
    extra_addresses = tuple(
        _lab_address(extra, network, source, f"{where} lab_source_addresses") for extra in extras
    )
    return LabHost(name, group, namespace, veth, address, extra_addresses)


def _bridge_interface(value: Any, source: str) -> IPv4Interface:
    try:
        interface = IPv4Interface(str(value))
    except ValueError as error:
        raise LabInventoryError(f"{source}: lab_bridge_address: {error}") from None
    if interface.network.prefixlen == interface.max_prefixlen:
        raise LabInventoryError(
            f"{source}: lab_bridge_address {value} needs a prefix length, e.g. 198.18.0.1/15"
        )
    if not interface.network.subnet_of(RFC2544_RANGE):
        raise LabInventoryError(
            f"{source}: lab_bridge_address {value} is outside the RFC 2544 range "
            f"{RFC2544_RANGE}: use that range so lab traffic never leaves the machine"
        )
    return interface


def _lab_address(value: Any, network: IPv4Network, source: str, where: str) -> IPv4Address:
    try:
        address = IPv4Address(str(value))
    except ipaddress.AddressValueError as error:
        raise LabInventoryError(f"{source}: {where}: {error}") from None
    if address not in network or address in (network.network_address, network.broadcast_address):
        raise LabInventoryError(
            f"{source}: {where} {address} is outside the lab network {network} "
            "(lab_bridge_address): pick a host address inside it"
        )
    return address


def _claim_addresses(host: LabHost, owners: dict[IPv4Address, str], source: str) -> None:
    for address in host.addresses:
        owner = owners.get(address)
        if owner is not None:
            raise LabInventoryError(
                f"{source}: address {address} is used by both {owner} and {host.name}: "
                "give every lab address to one host only"
            )
        owners[address] = host.name


def _check_unique_names(hosts: list[LabHost], source: str) -> None:
    seen: set[str] = set()
    for host in hosts:
        if host.name in seen:
            raise LabInventoryError(
                f"{source}: host {host.name!r} appears in more than one group: keep it in one"
            )
        seen.add(host.name)


def _check_interface_length(name: str, source: str, where: str) -> None:
    if len(name) > INTERFACE_NAME_MAX:
        raise LabInventoryError(
            f"{source}: {where} name {name!r} is longer than {INTERFACE_NAME_MAX} characters: "
            "shorten lab_namespace_prefix or the host name"
        )


def _name(value: str, source: str, where: str) -> str:
    if not _NAME.fullmatch(value):
        raise LabInventoryError(
            f"{source}: {where} {value!r} must be letters, digits, '.', '_' or '-'"
        )
    return value


def _required(mapping: Mapping[str, Any], key: str, source: str) -> Any:
    if mapping.get(key) in (None, ""):
        raise LabInventoryError(f"{source}: all.vars.{key} is missing: see inventory/lab/hosts.yml")
    return mapping[key]


def _mapping(value: Any, source: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LabInventoryError(f"{source}: {where} must be a mapping, got {type(value).__name__}")
    return value
