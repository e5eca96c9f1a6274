"""Bring the whole lab up (idempotently) and take every trace of it down again."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from hongbao.lab import autogroup, netns, sshd
from hongbao.lab.errors import LabError
from hongbao.lab.paths import LabPaths
from hongbao.lab.processes import terminate
from hongbao.lab.sshclient import wait_for_port, write_ssh_config
from hongbao.lab.topology import LabTopology

Report = Callable[[str], None]


def bring_up(topology: LabTopology, paths: LabPaths, report: Report = print) -> None:
    started = time.monotonic()
    sshd.ensure_keys(paths)
    autogroup.turn_off(paths.root, report)  # before any host's processes start
    links = netns.existing_links()
    namespaces = netns.existing_namespaces()
    bridge_created = netns.ensure_bridge(topology, links)
    report(f"bridge {topology.bridge} {topology.bridge_interface}: "
           f"{'created' if bridge_created else 'kept'}")

    created: set[str] = set()
    launched: set[str] = set()
    for host in topology.hosts:
        if netns.ensure_host(topology, host, namespaces, links):
            created.add(host.name)
        if sshd.running_sshd_pid(host, paths) is None:
            sshd.launch_sshd(host, paths)
            launched.add(host.name)
    if created:  # hosts that were kept may still cache a re-created host's old MAC address
        netns.flush_neighbours(topology, [host.namespace for host in topology.hosts
                                          if host.name not in created])

    for host in topology.hosts:
        pid = sshd.wait_for_sshd(host, paths)
        if not wait_for_port(host.address):
            raise LabError(f"sshd {pid} of {host.name} does not accept on {host.address}: "
                           f"see {paths.sshd_log(host.name)}")
        report(f"  {host.name:<10} {host.namespace:<14} {host.address!s:<15} "
               f"namespace {'created' if host.name in created else 'kept':<7}  "
               f"sshd {pid} {'started' if host.name in launched else 'running'}")

    _check_route_stays_on_bridge(topology)
    write_ssh_config(topology, paths)
    report(f"lab up: {len(topology.hosts)} hosts in {time.monotonic() - started:.2f} s")
    report(f"log in with: ssh -F {paths.ssh_config} {topology.hosts[0].name}")


def tear_down(topology: LabTopology, paths: LabPaths, report: Report = print) -> None:
    started = time.monotonic()
    for host in topology.hosts:
        pid = sshd.stop_sshd(host, paths)
        if pid is not None:
            report(f"  stopped sshd {pid} of {host.name}")
    strays = sshd.lab_sshd_pids(paths)
    if strays:
        terminate(strays)
        report(f"  stopped sshd {', '.join(map(str, strays))} (no pid file)")
    links = netns.existing_links()
    namespaces = netns.existing_namespaces()
    # Stop every host's processes before any link goes, so their last packets (the FINs
    # that end Ansible's persistent ssh connections) still reach this machine.
    for host in topology.hosts:
        if host.namespace in namespaces:
            netns.stop_processes(host)
    for host in topology.hosts:
        if host.namespace in namespaces or host.veth in links:
            netns.remove_host(host, namespaces, links)
            report(f"  removed {host.namespace} and {host.veth}")
    netns.remove_bridge(topology, links)
    autogroup.put_back(paths.root, report)
    _remove_state_dir(paths, report)
    remaining = leftovers(topology, paths)
    if remaining:
        raise LabError(f"lab down left {', '.join(remaining)} behind: remove them by hand")
    report(f"lab down: nothing left ({time.monotonic() - started:.2f} s)")


def leftovers(topology: LabTopology, paths: LabPaths) -> list[str]:
    """What of this lab still exists: namespaces, links, processes (sshd), the state dir."""
    links = netns.existing_links()
    namespaces = netns.existing_namespaces()
    remaining = [f"namespace {host.namespace}" for host in topology.hosts
                 if host.namespace in namespaces]
    remaining += [f"link {name}" for name in (topology.bridge, *(h.veth for h in topology.hosts))
                  if name in links]
    remaining += [f"sshd {pid}" for pid in sshd.lab_sshd_pids(paths)]
    if paths.root.exists():
        remaining.append(f"state dir {paths.root}")
    return remaining


def _check_route_stays_on_bridge(topology: LabTopology) -> None:
    for host in topology.hosts:
        device = netns.route_device(topology, host)
        if device != topology.bridge:
            raise LabError(
                f"traffic to {host.name} ({host.address}) would leave through {device}, not "
                f"{topology.bridge}: remove the other route to {topology.network}"
            )


def _remove_state_dir(paths: LabPaths, report: Report) -> None:
    if not paths.root.exists():
        return
    if not paths.marker.exists():
        raise LabError(f"refusing to remove {paths.root}: it has no {paths.marker.name}, "
                       "so it is not a lab state dir; check --state-dir")
    shutil.rmtree(paths.root)
    report(f"  removed state dir {paths.root}")
