"""The committed dashboard JSON is exactly what the generator writes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hongbao import grafana

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / grafana.DEFAULT_OUT


def run_grafana_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hongbao")
    grafana.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["grafana", *argv])
    result: int = args.func(args)
    return result


def test_committed_json_equals_what_the_generator_writes() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == grafana.dashboard_json(
        grafana.build_dashboard()), "stale dashboard: run 'hongbao grafana build' and commit"


def test_generator_is_deterministic() -> None:
    assert grafana.build_dashboard() == grafana.build_dashboard()


def test_build_writes_sorted_indented_json_with_a_newline_and_prints_the_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "hongbao.json"
    assert run_grafana_command("build", "--out", str(out)) == 0
    text = out.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2,
                              ensure_ascii=False) + "\n"
    assert capsys.readouterr().out.strip() == str(out)


def test_check_passes_on_the_committed_file() -> None:
    assert run_grafana_command("check", "--out", str(COMMITTED)) == 0


def test_check_fails_on_a_stale_or_missing_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "hongbao.json"
    stale.write_text(COMMITTED.read_text(encoding="utf-8").replace("Connections", "Conns"))
    assert run_grafana_command("check", "--out", str(stale)) != 0
    assert "hongbao grafana build" in capsys.readouterr().out
    assert run_grafana_command("check", "--out", str(tmp_path / "missing.json")) != 0
