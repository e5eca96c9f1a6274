"""The lab's network: a bridge, and per host a namespace joined to it by a veth pair.

Every function is idempotent: it creates what is missing and keeps what is there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from hongbao.lab.processes import terminate
from hongbao.lab.tools import run_tool, tool_path
from hongbao.lab.topology import LabHost, LabTopology

NAMESPACES_DIR = Path("/run/netns")  # where `ip netns add` pins namespaces
NAMESPACE_INTERFACE = "eth0"  # the namespace end of every host's veth pair
EXTRA_ADDRESS_PREFIX_LENGTH = 32  # extra addresses add no routes of their own
NAMESPACE_SYSCTLS = {
    "net.ipv4.ip_local_port_range": "1024 65535",
    "net.core.somaxconn": "65535",
    "net.ipv4.tcp_tw_reuse": "1",
    "net.ipv4.tcp_fin_timeout": "15",
}


def existing_namespaces() -> set[str]:
    listing = run_tool("ip", "-j", "netns", "list").strip()
    return {entry["name"] for entry in json.loads(listing)} if listing else set()


def existing_links() -> set[str]:
    return {link["ifname"] for link in json.loads(run_tool("ip", "-j", "link", "show"))}


def ensure_bridge(topology: LabTopology, links: set[str]) -> bool:
    """Make the bridge, up, holding the gateway address; True when it was missing."""
    created = topology.bridge not in links
    if created:
        run_tool("ip", "link", "add", topology.bridge, "type", "bridge")
    run_tool("ip", "addr", "replace", str(topology.bridge_interface), "dev", topology.bridge)
    run_tool("ip", "link", "set", topology.bridge, "up")
    return created


def ensure_host(topology: LabTopology, host: LabHost, namespaces: set[str],
                links: set[str]) -> bool:
    """Make the host's namespace and veth, address and route them; True when either was new."""
    created = False
    if host.namespace not in namespaces:
        run_tool("ip", "netns", "add", host.namespace)
        created = True
    if created and host.veth in links:  # left over from a namespace deleted while in use
        run_tool("ip", "link", "del", host.veth)
    if created or host.veth not in links:
        run_tool("ip", "link", "add", host.veth, "type", "veth",
                 "peer", "name", NAMESPACE_INTERFACE, "netns", host.namespace)
        created = True
    run_tool("ip", "link", "set", host.veth, "master", topology.bridge, "up")
    run_tool("ip", "-n", host.namespace, "-batch", "-", stdin=_namespace_setup(topology, host))
    run_tool("ip", "netns", "exec", host.namespace, tool_path("sysctl"), "-q", "-w",
             *(f"{key}={value}" for key, value in NAMESPACE_SYSCTLS.items()))
    return created


def flush_neighbours(topology: LabTopology, namespaces: Iterable[str]) -> None:
    """Forget cached MAC addresses, so re-created hosts are reached at their new veth."""
    run_tool("ip", "neigh", "flush", "dev", topology.bridge)
    for namespace in namespaces:
        run_tool("ip", "-n", namespace, "neigh", "flush", "dev", NAMESPACE_INTERFACE)


def remove_host(host: LabHost, namespaces: set[str], links: set[str]) -> None:
    """Stop every process in the host's namespace, then delete its veth and namespace."""
    if host.namespace in namespaces:
        stop_processes(host)
    if host.veth in links:
        run_tool("ip", "link", "del", host.veth)
    if host.namespace in namespaces:
        run_tool("ip", "netns", "del", host.namespace)


def stop_processes(host: LabHost) -> None:
    terminate(namespace_pids(host.namespace))


def remove_bridge(topology: LabTopology, links: set[str]) -> None:
    if topology.bridge in links:
        run_tool("ip", "link", "del", topology.bridge)


def in_namespace(pid: int, namespace: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(NAMESPACES_DIR / namespace).st_ino
    except FileNotFoundError:
        return False


def namespace_pids(namespace: str) -> list[int]:
    return [int(pid) for pid in run_tool("ip", "netns", "pids", namespace).split()]


def route_device(topology: LabTopology, host: LabHost) -> str | None:
    """The interface this machine sends ``host``'s traffic through (the bridge, if all is well)."""
    routes = json.loads(run_tool("ip", "-j", "route", "get", str(host.address)))
    return routes[0].get("dev") if routes else None


def _namespace_setup(topology: LabTopology, host: LabHost) -> str:
    prefix_length = topology.network.prefixlen
    commands = [
        "link set lo up",
        f"addr replace {host.address}/{prefix_length} dev {NAMESPACE_INTERFACE}",
        *(f"addr replace {extra}/{EXTRA_ADDRESS_PREFIX_LENGTH} dev {NAMESPACE_INTERFACE}"
          for extra in host.extra_addresses),
        f"link set {NAMESPACE_INTERFACE} up",
        f"route replace default via {topology.gateway} dev {NAMESPACE_INTERFACE}",
    ]
    return "\n".join(commands) + "\n"
