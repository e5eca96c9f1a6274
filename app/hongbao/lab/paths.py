"""Where a lab keeps its keys, sshd configs, pid files and logs (its state directory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARKER_FILE = ".hongbao-lab"  # only a directory holding this is ever removed by `lab down`


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def marker(self) -> Path:
        return self.root / MARKER_FILE

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def client_public_key(self) -> Path:
        return self.root / "id_ed25519.pub"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    def host_dir(self, host_name: str) -> Path:
        return self.root / "hosts" / host_name

    def sshd_config(self, host_name: str) -> Path:
        return self.host_dir(host_name) / "sshd_config"

    def sshd_pid_file(self, host_name: str) -> Path:
        return self.host_dir(host_name) / "sshd.pid"

    def sshd_log(self, host_name: str) -> Path:
        return self.host_dir(host_name) / "sshd.log"
