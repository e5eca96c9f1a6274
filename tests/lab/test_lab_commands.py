from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hongbao.lab import tools
from hongbao.lab.errors import LabError
from hongbao.lab.lifecycle import tear_down
from hongbao.lab.paths import LabPaths
from hongbao.lab.sshd import ensure_keys
from hongbao.lab.topology import topology_from_inventory
from tests.lab.smalllab import run_lab, small_inventory, write_inventory


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_every_lab_command_stops_without_root_saying_so(
        command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(SystemExit, match="the lab needs root: run as root or with sudo"):
        run_lab(command)


def test_missing_sshd_names_the_debian_package_to_install(monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(tools, "_find", lambda tool: None if tool == "sshd" else "/bin/true")
    with pytest.raises(SystemExit, match="the lab needs sshd: apt-get install openssh-server"):
        run_lab("status")


def test_bad_inventory_stops_the_command_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(tools, "_find", lambda tool: "/bin/true")
    inventory = small_inventory()
    inventory["all"]["vars"]["lab_bridge_address"] = "192.168.1.1/24"
    directory = write_inventory(tmp_path / "lab", inventory, tmp_path / "state")
    with pytest.raises(SystemExit, match="outside the RFC 2544 range"):
        run_lab("up", "--inventory", str(directory))


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip to list links")
def test_down_refuses_to_delete_a_directory_that_is_no_lab_state_dir(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    inventory = small_inventory()
    inventory["all"]["vars"]["lab_namespace_prefix"] = "hbu-"  # nothing of it exists
    inventory["all"]["vars"]["lab_bridge"] = "hb-unused0"
    with pytest.raises(LabError, match=r"refusing to remove .*: it has no \.hongbao-lab"):
        tear_down(topology_from_inventory(inventory), LabPaths(tmp_path), report=lambda _: None)
    assert precious.read_text() == "keep me"


def test_up_refuses_a_state_dir_that_holds_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LabError, match=r"holds other files and no \.hongbao-lab"):
        ensure_keys(LabPaths(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
