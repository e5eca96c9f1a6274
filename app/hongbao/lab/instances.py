"""Single lab hosts on demand (``hongbao lab instance up|down``), e.g. Molecule's instances.

Each instance is a network namespace on a shared bridge with its own sshd, like a host of
``hongbao lab up``, but made one at a time: scenarios that run at the same time share the
bridge, and an instance takes the lowest free address unless it is given one. The sshd runs
in a UTS namespace of its own, so the instance has its own hostname, and, with an overlay
over ``/etc``, in a mount namespace of its own, so whatever a role writes to ``/etc`` lands
in the instance's state directory and never in this machine's ``/etc``.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from hongbao.lab import netns, sshd
from hongbao.lab.errors import LabError
from hongbao.lab.paths import LabPaths
from hongbao.lab.sshclient import wait_for_port
from hongbao.lab.tools import run_tool, tool_path
from hongbao.lab.topology import (
    HOST_VETH_PREFIX,
    INTERFACE_NAME_MAX,
    RFC2544_RANGE,
    LabHost,
    LabTopology,
)

DEFAULT_BRIDGE = "hb-mol0"
# Inside RFC 2544, apart from the lab (198.18.0.0/15 on hb-br0: this /24 is more specific)
# and from the lab tests' 198.19.254.0/24.
DEFAULT_BRIDGE_ADDRESS = IPv4Interface("198.19.200.1/24")
DEFAULT_NAMESPACE_PREFIX = "hbm-"
FIRST_HOST_OFFSET = 10  # instances take .10 and up; lower offsets stay free for the bridge
LOCK_FILE = Path("/run/lock/hongbao-lab-instances.lock")  # one allocator at a time
RECORD_FILE = "instance.json"
INSTANCE_GROUP = "instance"
SSH_USER = "root"
_HOSTNAME_MAX = 64


@dataclass(frozen=True)
class InstanceNetwork:
    """The bridge every instance joins, and how instance namespaces are named."""

    bridge: str = DEFAULT_BRIDGE
    bridge_interface: IPv4Interface = DEFAULT_BRIDGE_ADDRESS
    namespace_prefix: str = DEFAULT_NAMESPACE_PREFIX

    def __post_init__(self) -> None:
        if not self.bridge_interface.network.subnet_of(RFC2544_RANGE):
            raise LabError(f"bridge address {self.bridge_interface} is outside the RFC 2544 "
                           f"range {RFC2544_RANGE}: use that range so no traffic leaves")
        longest_veth = self.host("", self.bridge_interface.network.broadcast_address).veth
        if len(longest_veth) > INTERFACE_NAME_MAX:
            raise LabError(f"namespace prefix {self.namespace_prefix!r} is too long: veth names "
                           f"like {longest_veth} exceed {INTERFACE_NAME_MAX} characters")

    def topology(self, paths: LabPaths, *hosts: LabHost) -> LabTopology:
        return LabTopology(self.bridge, self.bridge_interface, self.namespace_prefix,
                           paths.root, hosts)

    def host(self, name: str, address: IPv4Address) -> LabHost:
        """The lab host ``name`` at ``address``; its namespace is named after the address."""
        offset = int(address) - int(self.bridge_interface.network.network_address)
        namespace = f"{self.namespace_prefix}{offset}"
        return LabHost(name, INSTANCE_GROUP, namespace, HOST_VETH_PREFIX + namespace, address)

    def check_address(self, address: IPv4Address) -> None:
        network = self.bridge_interface.network
        reserved = (network.network_address, network.broadcast_address, self.bridge_interface.ip)
        if address not in network or address in reserved:
            raise LabError(f"address {address} is not a free host address of {network} "
                           f"(the bridge {self.bridge} holds {self.bridge_interface.ip})")

    def free_address(self, namespaces: set[str]) -> IPv4Address:
        """The lowest address whose namespace does not exist yet."""
        network = self.bridge_interface.network
        for address in list(network.hosts())[FIRST_HOST_OFFSET - 1:]:
            if self.host("", address).namespace not in namespaces:
                return address
        raise LabError(f"every address of {network} is taken: destroy old instances "
                       f"(ip netns list | grep {self.namespace_prefix})")

    def instance_namespaces(self, namespaces: set[str]) -> set[str]:
        return {name for name in namespaces if name.startswith(self.namespace_prefix)}


@dataclass(frozen=True)
class Instance:
    """One instance as recorded in its state directory."""

    host: LabHost
    overlay_etc: bool

    def login(self, paths: LabPaths) -> dict[str, Any]:
        """How to log in, with the keys of Molecule's instance config."""
        return {
            "instance": self.host.name,
            "address": str(self.host.address),
            "user": SSH_USER,
            "port": sshd.SSH_PORT,
            "identity_file": str(paths.client_key),
            "namespace": self.host.namespace,
        }


def etc_upper_dir(paths: LabPaths, name: str) -> Path:
    """Where an instance's writes to /etc land."""
    return paths.host_dir(name) / "etc-upper"


def etc_work_dir(paths: LabPaths, name: str) -> Path:
    return paths.host_dir(name) / "etc-work"


def instance_up(name: str, paths: LabPaths, network: InstanceNetwork,
                address: IPv4Address | None = None, overlay_etc: bool = False) -> tuple[
                    Instance, bool]:
    """Create the instance, or finish creating it; the instance and whether anything was new."""
    _check_name(name)
    with _allocation_lock():
        sshd.ensure_keys(paths)
        namespaces = netns.existing_namespaces()
        instance = _recorded(paths, name)
        if instance is None or instance.host.namespace not in namespaces:
            instance = _new_instance(name, network, namespaces, address, overlay_etc)
        elif address is not None and address != instance.host.address:
            raise LabError(f"instance {name} already runs at {instance.host.address}, not "
                           f"{address}: bring it down first")
        _write_record(paths, instance)
        topology = network.topology(paths, instance.host)
        links = netns.existing_links()
        netns.ensure_bridge(topology, links)
        created = netns.ensure_host(topology, instance.host, namespaces, links)
        if created:  # a re-used address may still be cached with the old veth's MAC address
            netns.flush_neighbours(topology, [])
    device = netns.route_device(topology, instance.host)
    if device != network.bridge:
        raise LabError(f"traffic to {instance.host.address} would leave through {device}, not "
                       f"{network.bridge}: remove the other route to {topology.network}")
    if sshd.running_sshd_pid(instance.host, paths) is None:
        _launch_sshd(instance, paths)
        created = True
    pid = sshd.wait_for_sshd(instance.host, paths)
    if not wait_for_port(instance.host.address):
        raise LabError(f"sshd {pid} of instance {name} does not accept on "
                       f"{instance.host.address}: see {paths.sshd_log(name)}")
    return instance, created


def instance_down(name: str, paths: LabPaths, network: InstanceNetwork) -> list[str]:
    """Remove the instance, its files, and the state dir and bridge once nothing uses them."""
    _check_name(name)
    removed: list[str] = []
    with _allocation_lock():
        instance = _recorded(paths, name)
        if instance is not None:
            pid = sshd.stop_sshd(instance.host, paths)
            if pid is not None:
                removed.append(f"sshd {pid}")
            namespaces = netns.existing_namespaces()
            links = netns.existing_links()
            if instance.host.namespace in namespaces or instance.host.veth in links:
                netns.remove_host(instance.host, namespaces, links)
                removed.append(f"namespace {instance.host.namespace}")
        if paths.host_dir(name).exists():
            shutil.rmtree(paths.host_dir(name))
            removed.append(f"files of {name}")
        if paths.marker.exists() and not any(paths.host_dir(name).parent.glob(f"*/{RECORD_FILE}")):
            shutil.rmtree(paths.root)
            removed.append(f"state dir {paths.root}")
        if (not network.instance_namespaces(netns.existing_namespaces())
                and network.bridge in netns.existing_links()):
            netns.remove_bridge(network.topology(paths), {network.bridge})
            removed.append(f"bridge {network.bridge}")
    return removed


def _new_instance(name: str, network: InstanceNetwork, namespaces: set[str],
                  address: IPv4Address | None, overlay_etc: bool) -> Instance:
    if address is None:
        address = network.free_address(namespaces)
    network.check_address(address)
    host = network.host(name, address)
    if host.namespace in namespaces:
        raise LabError(f"address {address} is taken by another instance (namespace "
                       f"{host.namespace}): pick another --address or leave it out")
    return Instance(host, overlay_etc)


def _launch_sshd(instance: Instance, paths: LabPaths) -> None:
    """Start the sshd in the instance's namespace, with its hostname and /etc overlay."""
    host = instance.host
    config = paths.sshd_config(host.name)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(sshd.sshd_config_text(host, paths))
    paths.sshd_pid_file(host.name).unlink(missing_ok=True)
    sshd.PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
    # $1 is the hostname, $2 the overlay's mount options or "", the rest the sshd command.
    script = ('printf %s "$1" > /proc/sys/kernel/hostname || exit; '
              'if [ -n "$2" ]; then mount -t overlay hongbao-etc -o "$2" /etc || exit; fi; '
              'shift 2; exec "$@"')
    unshare = ["unshare", "--uts"]
    overlay_options = ""
    if instance.overlay_etc:
        upper, work = etc_upper_dir(paths, host.name), etc_work_dir(paths, host.name)
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        unshare += ["--mount", "--propagation", "private"]
        overlay_options = f"lowerdir=/etc,upperdir={upper},workdir={work}"
    run_tool("ip", "netns", "exec", host.namespace, *unshare, "--", "/bin/sh", "-c", script,
             "sh", host.name, overlay_options,
             tool_path("sshd"), "-f", str(config), "-E", str(paths.sshd_log(host.name)))


def _recorded(paths: LabPaths, name: str) -> Instance | None:
    try:
        data = json.loads((paths.host_dir(name) / RECORD_FILE).read_text())
        return Instance(LabHost(name, INSTANCE_GROUP, data["namespace"], data["veth"],
                                IPv4Address(data["address"])), bool(data["overlay_etc"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as error:
        raise LabError(f"{paths.host_dir(name) / RECORD_FILE} is damaged ({error}): "
                       f"remove namespace and file by hand") from None


def _write_record(paths: LabPaths, instance: Instance) -> None:
    paths.host_dir(instance.host.name).mkdir(parents=True, exist_ok=True)
    (paths.host_dir(instance.host.name) / RECORD_FILE).write_text(json.dumps({
        "namespace": instance.host.namespace,
        "veth": instance.host.veth,
        "address": str(instance.host.address),
        "overlay_etc": instance.overlay_etc,
    }) + "\n")


def _check_name(name: str) -> None:
    if (not name or len(name) > _HOSTNAME_MAX or name[0] in "-."
            or not all(char.isalnum() or char in "-._" for char in name) or not name.isascii()):
        raise LabError(f"instance name {name!r} must be up to {_HOSTNAME_MAX} letters, digits, "
                       "'.', '_' or '-', starting with a letter or digit")


@contextmanager
def _allocation_lock() -> Iterator[None]:
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
