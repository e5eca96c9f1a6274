"""The parser is built for the command run: a node process builds only the node commands',
so it does not keep the other commands' libraries loaded for the whole test (issue 8: at
most 40 MB per node process), and each of the plays' ``hongbao`` calls loads only its own
command's modules."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hongbao.cli import COMMAND_MODULES, NODE_COMMANDS, build_parser, wanted_command

HEAVY = ("aiohttp", "rich", "yaml", "grafana_foundation_sdk", "matplotlib", "jinja2")


@pytest.mark.parametrize(("argv", "command"), [
    (["server", "--workers", "2"], "server"),
    (["-v", "client", "--users", "10"], "client"),
    (["server", "--help"], "server"),
    (["--help", "server"], None),
    (["report", "runs/x"], "report"),
    (["lab", "up"], "lab"),
    ([], None),
    (["--version"], None),
])
def test_the_command_run_is_the_first_word_unless_help_comes_first(
        argv: list[str], command: str | None) -> None:
    assert wanted_command(argv) == command


def loaded_after(only: str) -> list[str]:
    probe = (f"import sys; from hongbao.cli import build_parser; build_parser(only={only!r}); "
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_node_parser_loads_none_of_the_other_commands_libraries() -> None:
    assert loaded_after("server") == []


def test_a_plays_phase_mark_loads_none_of_the_other_commands_libraries() -> None:
    assert loaded_after("phase") == []


def commands_of(parser: argparse.ArgumentParser) -> set[str]:
    subparsers = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction))
    return set(subparsers.choices)


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_each_command_module_registers_its_command_alone(command: str) -> None:
    assert commands_of(build_parser(only=command)) == {*NODE_COMMANDS, command}


def test_the_full_parser_has_every_command() -> None:
    full = build_parser()
    assert commands_of(full) == {*NODE_COMMANDS, *COMMAND_MODULES, "ledger", "local-run"}
    assert commands_of(build_parser(only="no-such-command")) == commands_of(full)


def test_the_node_parser_takes_the_node_commands_and_the_full_one_every_command() -> None:
    nodes = build_parser(only="server")
    assert nodes.parse_args(["server", "--workers", "2"]).command == "server"
    with pytest.raises(SystemExit):
        nodes.parse_args(["report", "runs/x"])
    assert build_parser().parse_args(["ledger", "check", "runs/x"]).command == "ledger"
