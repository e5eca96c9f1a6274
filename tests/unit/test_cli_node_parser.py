"""A node process builds only the node commands' parser, so it does not keep the other
commands' libraries loaded for the whole test (issue 8: at most 40 MB per node process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hongbao.cli import build_parser, runs_a_node

HEAVY = ("aiohttp", "rich", "yaml", "grafana_foundation_sdk", "matplotlib", "jinja2")


@pytest.mark.parametrize(("argv", "node"), [
    (["server", "--workers", "2"], True),
    (["-v", "client", "--users", "10"], True),
    (["server", "--help"], True),
    (["--help", "server"], False),
    (["report", "runs/x"], False),
    (["lab", "up"], False),
    ([], False),
    (["--version"], False),
])
def test_only_the_node_commands_get_the_node_parser(argv: list[str], node: bool) -> None:
    assert runs_a_node(argv) is node


def test_the_node_parser_loads_none_of_the_other_commands_libraries() -> None:
    probe = ("import sys; from hongbao.cli import build_parser; build_parser(nodes_only=True); "
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []


def test_the_node_parser_takes_the_node_commands_and_the_full_one_every_command() -> None:
    nodes = build_parser(nodes_only=True)
    assert nodes.parse_args(["server", "--workers", "2"]).command == "server"
    with pytest.raises(SystemExit):
        nodes.parse_args(["report", "runs/x"])
    assert build_parser().parse_args(["ledger", "check", "runs/x"]).command == "ledger"
