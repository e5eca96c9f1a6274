"""One sshd per lab host, listening on the host's address inside its namespace.

All hosts share one generated host key and trust one generated client key; both live in
the lab's state directory.
"""

from __future__ import annotations

import time
from pathlib import Path

from hongbao.lab.errors import LabError
from hongbao.lab.netns import in_namespace
from hongbao.lab.paths import LabPaths
from hongbao.lab.processes import (
    command_line,
    pid_alive,
    pids_mentioning,
    read_pid_file,
    terminate,
)
from hongbao.lab.tools import run_tool, tool_path
from hongbao.lab.topology import LabHost

SSH_PORT = 22
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")  # sshd refuses to start without it
SSHD_START_TIMEOUT_S = 5.0
KEY_COMMENT = "hongbao-lab"
_POLL_S = 0.01
_LOG_LINES_ON_FAILURE = 5


def ensure_keys(paths: LabPaths) -> None:
    """The state directory with its marker, the host key, the client key and authorized_keys."""
    if paths.root.exists() and not paths.marker.exists() and any(paths.root.iterdir()):
        raise LabError(f"{paths.root} holds other files and no {paths.marker.name}: "
                       "give the lab an empty or new --state-dir")
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.marker.touch()
    for key in (paths.host_key, paths.client_key):
        if not key.exists():
            run_tool("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", KEY_COMMENT,
                     "-f", str(key))
    paths.authorized_keys.write_text(paths.client_public_key.read_text())
    paths.authorized_keys.chmod(0o600)


def sshd_config_text(host: LabHost, paths: LabPaths) -> str:
    return "\n".join([
        f"# sshd for lab host {host.name} (namespace {host.namespace}), written by hongbao lab up",
        f"ListenAddress {host.address}:{SSH_PORT}",
        f"HostKey {paths.host_key}",
        f"PidFile {paths.sshd_pid_file(host.name)}",
        f"AuthorizedKeysFile {paths.authorized_keys}",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "Subsystem sftp internal-sftp",
    ]) + "\n"


def running_sshd_pid(host: LabHost, paths: LabPaths) -> int | None:
    """The pid of this host's sshd if it runs, from this host's config, in this host's namespace."""
    pid = read_pid_file(paths.sshd_pid_file(host.name))
    if pid is None or not pid_alive(pid):
        return None
    if str(paths.sshd_config(host.name)) not in command_line(pid):
        return None
    return pid if in_namespace(pid, host.namespace) else None


def launch_sshd(host: LabHost, paths: LabPaths) -> None:
    """Start the host's sshd in its namespace; it daemonizes and writes its pid file."""
    config = paths.sshd_config(host.name)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(sshd_config_text(host, paths))
    paths.sshd_pid_file(host.name).unlink(missing_ok=True)
    PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
    run_tool("ip", "netns", "exec", host.namespace, tool_path("sshd"),
             "-f", str(config), "-E", str(paths.sshd_log(host.name)))


def wait_for_sshd(host: LabHost, paths: LabPaths,
                  timeout_s: float = SSHD_START_TIMEOUT_S) -> int:
    """The pid of the host's sshd once it has written its pid file."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = running_sshd_pid(host, paths)
        if pid is not None:
            return pid
        time.sleep(_POLL_S)
    raise LabError(
        f"sshd for {host.name} did not start within {timeout_s:.0f} s: "
        f"{_log_tail(paths.sshd_log(host.name))} (log {paths.sshd_log(host.name)})"
    )


def stop_sshd(host: LabHost, paths: LabPaths) -> int | None:
    """Stop the host's sshd; the pid it had, or None when none ran."""
    pid = running_sshd_pid(host, paths)
    if pid is not None:
        terminate([pid])
    paths.sshd_pid_file(host.name).unlink(missing_ok=True)
    return pid


def lab_sshd_pids(paths: LabPaths) -> list[int]:
    """Every sshd started with a config from this state dir, pid file or not."""
    return pids_mentioning(f"-f {paths.root / 'hosts'}/")


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text().strip().splitlines()
    except FileNotFoundError:
        return "no log written"
    return " | ".join(lines[-_LOG_LINES_ON_FAILURE:]) or "the log is empty"
