"""What of the lab runs: per host its namespace, its sshd, and whether ssh gets in."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hongbao.lab import netns
from hongbao.lab.paths import LabPaths
from hongbao.lab.sshclient import ssh_reachable
from hongbao.lab.sshd import running_sshd_pid
from hongbao.lab.topology import LabHost, LabTopology

MAX_PARALLEL_PROBES = 32
_HEADER = ("host", "namespace", "address", "sshd pid", "ssh")


@dataclass(frozen=True)
class HostStatus:
    host: LabHost
    namespace_exists: bool
    sshd_pid: int | None
    ssh_reachable: bool


@dataclass(frozen=True)
class LabStatus:
    bridge_exists: bool
    hosts: tuple[HostStatus, ...]

    @property
    def fully_up(self) -> bool:
        return self.bridge_exists and all(status.ssh_reachable for status in self.hosts)


def collect_status(topology: LabTopology, paths: LabPaths) -> LabStatus:
    namespaces = netns.existing_namespaces()
    pids = {host.name: running_sshd_pid(host, paths) if host.namespace in namespaces else None
            for host in topology.hosts}
    probed = [host for host in topology.hosts
              if pids[host.name] is not None and paths.ssh_config.exists()]
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_PROBES) as pool:
        reachable = dict(zip((host.name for host in probed),
                             pool.map(lambda host: ssh_reachable(paths, host.name), probed),
                             strict=True))
    return LabStatus(
        bridge_exists=topology.bridge in netns.existing_links(),
        hosts=tuple(HostStatus(host, host.namespace in namespaces, pids[host.name],
                               reachable.get(host.name, False))
                    for host in topology.hosts),
    )


def format_status(topology: LabTopology, status: LabStatus) -> str:
    rows = [_HEADER] + [
        (entry.host.name,
         entry.host.namespace if entry.namespace_exists else f"{entry.host.namespace} (missing)",
         str(entry.host.address),
         str(entry.sshd_pid) if entry.sshd_pid is not None else "not running",
         "yes" if entry.ssh_reachable else "no")
        for entry in status.hosts
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADER))]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    bridge = "present" if status.bridge_exists else "missing"
    verdict = "up" if status.fully_up else "not (fully) up"
    return "\n".join([f"bridge {topology.bridge} {topology.bridge_interface}: {bridge}",
                      *table, f"lab is {verdict}"])
