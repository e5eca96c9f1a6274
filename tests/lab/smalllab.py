"""A small lab inventory that cannot collide with the real one, and a way to run the CLI.

The small lab uses its own bridge (hb-test0), namespace prefix (hbt-) and network
(198.19.254.0/24: inside the RFC 2544 range, unused by inventory/lab, and more specific
than the real lab's /15, so both can run at once).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from hongbao.lab.commands import register

SMALL_LAB: dict[str, Any] = {
    "all": {
        "vars": {
            "lab_bridge": "hb-test0",
            "lab_bridge_address": "198.19.254.1/24",
            "lab_namespace_prefix": "hbt-",
            "lab_state_dir": "/var/tmp/hongbao-lab-test",
        },
        "children": {
            "server": {"hosts": {"server": {"ansible_host": "198.19.254.10"}}},
            "clients": {"hosts": {"client01": {
                "ansible_host": "198.19.254.21",
                "lab_source_addresses": ["198.19.254.31", "198.19.254.32"],
            }}},
            "monitor": {"hosts": {"monitor": {"ansible_host": "198.19.254.11"}}},
        },
    },
}


def small_inventory() -> dict[str, Any]:
    """A fresh copy of the small lab's inventory, to alter per test."""
    return copy.deepcopy(SMALL_LAB)


def write_inventory(directory: Path, inventory: dict[str, Any], state_dir: Path) -> Path:
    """Write ``inventory`` as directory/hosts.yml with its state dir set to ``state_dir``."""
    inventory = copy.deepcopy(inventory)
    inventory["all"]["vars"]["lab_state_dir"] = str(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    return directory


def run_lab(*argv: str) -> int:
    """Run ``hongbao lab ARGV...`` in this process, as the CLI would."""
    parser = argparse.ArgumentParser(prog="hongbao")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", *argv])
    return int(args.func(args))
