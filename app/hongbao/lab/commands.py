"""``hongbao lab up|down|status``: flags -> topology and state dir -> lifecycle or status."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from hongbao.lab.errors import LabError
from hongbao.lab.lifecycle import bring_up, tear_down
from hongbao.lab.paths import LabPaths
from hongbao.lab.status import collect_status, format_status
from hongbao.lab.tools import require_root, require_tools
from hongbao.lab.topology import LabTopology, load_topology

DEFAULT_INVENTORY = Path("inventory/lab")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lab`` to ``commands``, the ``add_subparsers()`` object of the hongbao CLI."""
    lab = commands.add_parser("lab", help="the one-machine lab: hosts as namespaces with sshd")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True)
    for name, func, help_text in (
        ("up", _up, "build the lab, or finish building it (idempotent)"),
        ("down", _down, "remove every namespace, link, sshd and the state dir"),
        ("status", _status, "per host: namespace, sshd pid, whether ssh gets in"),
    ):
        parser = lab_commands.add_parser(name, help=help_text)
        parser.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY,
                            help="lab inventory directory or hosts.yml (default %(default)s)")
        parser.add_argument("--state-dir", type=Path,
                            help="keys, sshd configs and pid files (default: the inventory's "
                                 "lab_state_dir, which Ansible's key path follows)")
        parser.set_defaults(func=func)


def _up(args: argparse.Namespace) -> int:
    return _apply(bring_up, args)


def _down(args: argparse.Namespace) -> int:
    return _apply(tear_down, args)


def _status(args: argparse.Namespace) -> int:
    topology, paths = _prepare(args)
    try:
        status = collect_status(topology, paths)
    except LabError as error:
        raise SystemExit(str(error)) from None
    print(format_status(topology, status))
    return 0 if status.fully_up else 1


def _prepare(args: argparse.Namespace) -> tuple[LabTopology, LabPaths]:
    try:
        require_root()
        require_tools()
        topology = load_topology(args.inventory)
    except LabError as error:
        raise SystemExit(str(error)) from None
    return topology, LabPaths(args.state_dir or topology.state_dir)


def _apply(action: Callable[[LabTopology, LabPaths], None], args: argparse.Namespace) -> int:
    topology, paths = _prepare(args)
    try:
        action(topology, paths)
    except LabError as error:
        raise SystemExit(str(error)) from None
    return 0
