"""Reaching lab hosts from this machine: an ssh_config naming every host, and probes."""

from __future__ import annotations

import socket
import subprocess
import time
from ipaddress import IPv4Address

from hongbao.lab.paths import LabPaths
from hongbao.lab.sshd import SSH_PORT
from hongbao.lab.tools import tool_path
from hongbao.lab.topology import LabTopology

CONNECT_TIMEOUT_S = 5
PORT_WAIT_S = 5.0
_POLL_S = 0.02


def ssh_config_text(topology: LabTopology, paths: LabPaths) -> str:
    lines = [f"# Lab hosts, written by hongbao lab up: ssh -F {paths.ssh_config} HOST", ""]
    for host in topology.hosts:
        lines += [f"Host {host.name}", f"    HostName {host.address}", ""]
    lines += [
        "Host *",
        "    User root",
        f"    Port {SSH_PORT}",
        f"    IdentityFile {paths.client_key}",
        "    IdentitiesOnly yes",
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
        "    LogLevel ERROR",
        "    BatchMode yes",
        f"    ConnectTimeout {CONNECT_TIMEOUT_S}",
    ]
    return "\n".join(lines) + "\n"


def write_ssh_config(topology: LabTopology, paths: LabPaths) -> None:
    paths.ssh_config.write_text(ssh_config_text(topology, paths))


def ssh_command(paths: LabPaths, host_name: str, *command: str) -> list[str]:
    return [tool_path("ssh"), "-F", str(paths.ssh_config), host_name, *command]


def ssh_reachable(paths: LabPaths, host_name: str) -> bool:
    """True when a real login to ``host_name`` runs a command."""
    try:
        result = subprocess.run(ssh_command(paths, host_name, "true"), capture_output=True,
                                timeout=CONNECT_TIMEOUT_S * 2, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def wait_for_port(address: IPv4Address, port: int = SSH_PORT,
                  timeout_s: float = PORT_WAIT_S) -> bool:
    """True once ``address:port`` accepts a TCP connection, False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((str(address), port), timeout=timeout_s):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
