"""CFS autogroup off while a lab is up, and the machine's setting back when the last lab
is down, with two labs at once (as the test suite runs them) and a lab that vanished."""

from __future__ import annotations

from pathlib import Path

import pytest

from hongbao.lab import autogroup


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, Path]:
    setting = tmp_path / "sched_autogroup_enabled"
    setting.write_text("1\n")
    labs = {name: tmp_path / name for name in ("lab-a", "lab-b")}
    for state_dir in labs.values():
        state_dir.mkdir()
    return {"setting": setting, "held": tmp_path / "hongbao-sched-autogroup", **labs}


def up(machine: dict[str, Path], lab: str, said: list[str]) -> None:
    autogroup.turn_off(machine[lab], said.append, machine["setting"], machine["held"])


def down(machine: dict[str, Path], lab: str, said: list[str]) -> None:
    autogroup.put_back(machine[lab], said.append, machine["setting"], machine["held"])


def test_one_lab_turns_it_off_and_puts_the_machines_setting_back(
        machine: dict[str, Path]) -> None:
    said: list[str] = []
    up(machine, "lab-a", said)
    assert machine["setting"].read_text() == "0"
    assert said[0].startswith("CFS autogroup: off while the lab is up (the machine's "
                              "setting is 1)")
    up(machine, "lab-a", said)  # a second `lab up` of the same lab
    down(machine, "lab-a", said)
    assert machine["setting"].read_text() == "1"
    assert said[-1] == "CFS autogroup: back to the machine's setting, 1"
    assert not machine["held"].exists()


def test_the_last_of_two_labs_down_puts_it_back(machine: dict[str, Path]) -> None:
    said: list[str] = []
    up(machine, "lab-a", said)
    up(machine, "lab-b", said)  # finds it off: the saved setting stays 1
    down(machine, "lab-a", said)
    assert machine["setting"].read_text() == "0"  # lab-b is still up
    down(machine, "lab-b", said)
    assert machine["setting"].read_text() == "1"


def test_a_lab_whose_state_dir_is_gone_no_longer_holds_it(machine: dict[str, Path]) -> None:
    said: list[str] = []
    up(machine, "lab-a", said)
    machine["lab-a"].rmdir()  # removed without `lab down`
    up(machine, "lab-b", said)
    down(machine, "lab-b", said)
    assert machine["setting"].read_text() == "1"


def test_a_kernel_without_autogroup_is_left_alone(machine: dict[str, Path]) -> None:
    said: list[str] = []
    machine["setting"].unlink()
    up(machine, "lab-a", said)
    down(machine, "lab-a", said)
    assert said == ["CFS autogroup: not in this kernel, nothing to turn off"]
    assert not machine["held"].exists()
