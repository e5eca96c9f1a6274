"""CPU sharing on the lab's one kernel: CFS autogroup off while a lab is up.

With autogroup on (Debian's default), the scheduler first shares the CPU equally among
sessions, and every lab host's node is started over ssh in a session of its own. At 1M
connections the server (a node and 54 workers, one session) so got about 1/18 of the box
beside 17 client hosts: 19% of a core in phase 2, against 130% for the client workers.
Separate machines never share a CPU that way. With autogroup off every process competes on
its own, and the nice values the nodes give their workers count.

The machine's own setting is kept in one file for every lab on the machine (the test
suite runs two at once): its first line is the setting, the next lines the state
directories of the labs up. The last lab down puts the setting back; a lab whose state
directory is gone no longer counts. ``scripts/clean-machine.sh`` restores it too.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SETTING = Path("/proc/sys/kernel/sched_autogroup_enabled")
HELD_FILE = Path("/var/tmp/hongbao-sched-autogroup")

Report = Callable[[str], None]


@dataclass
class _Held:
    original: str  # the machine's own setting: saved by the first lab up
    holders: list[str]  # the state directories of the labs up


@contextmanager
def _held(held_file: Path, setting: Path) -> Iterator[_Held]:
    """The saved setting (the current one if none was saved yet) and the labs holding it,
    under an exclusive lock; the caller edits the holders, and all is written back (no
    holder left: the file goes)."""
    held_file.touch(exist_ok=True)
    with held_file.open("r+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        lines = file.read().split()
        held = _Held(lines[0] if lines else _read(setting),
                     [line for line in lines[1:] if Path(line).is_dir()])
        yield held
        if held.holders:
            file.seek(0)
            file.truncate()
            file.write("\n".join([held.original, *held.holders]) + "\n")
        else:
            held_file.unlink(missing_ok=True)


def _read(setting: Path) -> str:
    return setting.read_text().strip()


def turn_off(state_dir: Path, report: Report, setting: Path = SETTING,
             held_file: Path = HELD_FILE) -> None:
    """Autogroup off for as long as the lab in ``state_dir`` is up."""
    if not setting.exists():
        report("CFS autogroup: not in this kernel, nothing to turn off")
        return
    with _held(held_file, setting) as held:
        if str(state_dir) not in held.holders:
            held.holders.append(str(state_dir))
        if _read(setting) != "0":
            setting.write_text("0")
        report(f"CFS autogroup: off while the lab is up (the machine's setting is "
               f"{held.original}): with it on, every host would get an equal share of "
               "this kernel's CPU, the server's 54 workers as much as a client's 3")


def put_back(state_dir: Path, report: Report, setting: Path = SETTING,
             held_file: Path = HELD_FILE) -> None:
    """The lab in ``state_dir`` is going: the last lab down restores the setting."""
    if not held_file.exists() or not setting.exists():
        return
    with _held(held_file, setting) as held:
        if str(state_dir) in held.holders:
            held.holders.remove(str(state_dir))
        if held.holders:
            return
        if _read(setting) != held.original:
            setting.write_text(held.original)
        report(f"CFS autogroup: back to the machine's setting, {held.original}")
