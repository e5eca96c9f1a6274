"""``hongbao lab up|down|status``: flags -> topology and state dir -> lifecycle or status."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from hongbao.lab.errors import LabError
from hongbao.lab.instances import InstanceNetwork, instance_down, instance_up
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
    _register_instance(lab_commands)


def _register_instance(lab_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``lab instance up|down NAME``: one namespace with sshd, e.g. a Molecule instance."""
    instance = lab_commands.add_parser("instance", help="one host on its own, e.g. for Molecule")
    instance_commands = instance.add_subparsers(dest="instance_command", required=True)
    defaults = InstanceNetwork()
    for name, func, help_text in (
        ("up", _instance_up, "create the instance (idempotent); prints its login as JSON"),
        ("down", _instance_down, "remove it; the bridge and state dir go with the last one"),
    ):
        parser = instance_commands.add_parser(name, help=help_text)
        parser.add_argument("name", help="instance (and host) name")
        parser.add_argument("--state-dir", type=Path, required=True,
                            help="keys, sshd configs, pid files and /etc overlays")
        parser.add_argument("--bridge", default=defaults.bridge, help="(default %(default)s)")
        parser.add_argument("--bridge-address", type=IPv4Interface,
                            default=defaults.bridge_interface, help="(default %(default)s)")
        parser.add_argument("--namespace-prefix", default=defaults.namespace_prefix,
                            help="(default %(default)s)")
        parser.set_defaults(func=func)
        if name == "up":
            parser.add_argument("--address", type=IPv4Address,
                                help="default: the lowest free address on the bridge")
            parser.add_argument("--overlay-etc", action="store_true",
                                help="writes to /etc land in the state dir, not this machine's")


def _instance_up(args: argparse.Namespace) -> int:
    def up(network: InstanceNetwork, paths: LabPaths) -> None:
        instance, created = instance_up(args.name, paths, network, args.address, args.overlay_etc)
        print(json.dumps({**instance.login(paths), "created": created}))
    return _apply_to_instance(up, args)


def _instance_down(args: argparse.Namespace) -> int:
    def down(network: InstanceNetwork, paths: LabPaths) -> None:
        removed = instance_down(args.name, paths, network)
        print(f"instance {args.name}: removed {', '.join(removed)}" if removed
              else f"instance {args.name}: nothing to remove")
    return _apply_to_instance(down, args)


def _apply_to_instance(action: Callable[[InstanceNetwork, LabPaths], None],
                       args: argparse.Namespace) -> int:
    try:
        require_root()
        require_tools()
        action(InstanceNetwork(args.bridge, args.bridge_address, args.namespace_prefix),
               LabPaths(args.state_dir.absolute()))
    except LabError as error:
        raise SystemExit(str(error)) from None
    return 0


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
