"""The real playbooks over real SSH into a small lab: the whole run at a tiny scale,
idempotent re-deploys, and bad input that fails early with a message naming it."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hongbao.plan import next_knee_step, plan_targets
from tests.playbooks.minilab import (
    HOSTS,
    MONITOR_INFLUX,
    lab,
    make_install_root,
    playbook,
    write_inventory,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

RUN_ID = "playbook-test"
SMALL = ["-e", "testbed_scale=0.004", "-e", "testbed_phase_seconds=10",
         "-e", f"testbed_run_id={RUN_ID}"]


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters of the last recap, per host."""
    block = output.rsplit("PLAY RECAP", 1)[-1]
    hosts = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", block, re.M):
        hosts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return hosts


@pytest.fixture(scope="module")
def minilab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("minilab")
    install_root = make_install_root()
    inventory = write_inventory(root, install_root=install_root)
    up = lab("up", inventory)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield inventory, root
    finally:
        playbook("teardown.yml", inventory, *SMALL, timeout=300)
        down = lab("down", inventory)
        shutil.rmtree(install_root, ignore_errors=True)
    assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def full_run(minilab: tuple[Path, Path]) -> dict:
    inventory, root = minilab
    runs = root / "runs"
    # The seed's playbook: run.yml's phases, then the knee search with a few short steps
    # (each takes about 20 s with its marks, catch-up and verdict).
    result = playbook("seed.yml", inventory, *SMALL, "-e", f"testbed_controller_runs_dir={runs}",
                      "-e", "testbed_phase_knee_step_seconds=3", "-e", "testbed_knee_max_steps=4",
                      "-e", "testbed_phase_knee_ramp_seconds=1")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return {"output": result.stdout, "run_dir": runs / RUN_ID, "inventory": inventory,
            "runs": runs}


def test_run_playbook_reports_a_balanced_run(full_run: dict) -> None:
    output = full_run["output"]
    assert "money balance (from the ledger)" in output
    assert "MISMATCH" not in output
    html = (full_run["run_dir"] / "report" / "report.html").read_text()
    for phase in ("phase1", "phase2", "phase3"):
        assert f"<td>{phase}</td>" in html, f"{phase} missing from the phase table"
    # The knee search ends at a saturated step by design: that is its finding, not a fault.
    assert html.count('class="ok"') >= 3 and 'class="bad"' not in html
    summary = json.loads((full_run["run_dir"] / "report" / "summary.json").read_text())
    statuses = {p["name"]: p["status"] for p in summary["phases"]}
    assert [statuses[p] for p in ("phase1", "phase2", "phase3")] == ["held"] * 3, statuses
    assert summary["scale"] == 0.004 and summary["run_id"] == RUN_ID


def test_every_phase_is_recorded_with_start_and_end(full_run: dict) -> None:
    marks = (full_run["run_dir"] / "metrics" / "phase-controller.lp").read_text()
    for phase in ("phase1", "phase2", "phase3"):
        assert f"phase={phase}," in marks
    assert marks.count('event="start"') == marks.count('event="end"') >= 4  # knee steps too
    assert marks.count('event="hold_start"') == marks.count('event="hold_end"')


def unfolded(output: str) -> str:
    """The play's output with YAML's line folding undone (every run of blanks is one)."""
    return " ".join(output.split())


def test_phase1_prints_progress_and_each_phase_its_result(full_run: dict) -> None:
    output = unfolded(full_run["output"])
    assert re.search(r"phase1 +\d+ s: server holds [\d,]+/4,000 connections", output)
    # phase 1's row: its seconds, connections, connect seconds, dashes for the load cells
    assert re.search(r"phase1 \d+ 4,000 / 4,000 \d+ [- ]+ 0 [- ]+ held\b", output), \
        "no held phase1 row with its connect seconds"
    for phase in ("phase2", "phase3"):
        row = rf"{phase} \d+ 4,000 / 4,000 [-\d.,/ ]+ held\b"  # its cells, then its status
        assert re.search(row, output), f"no held {phase} row"
    assert output.count("money so far (from the servers' counters):") >= 3


VERDICT = re.compile(r"knee step ([\d,]+) QPS: held [\d,]+/s over (\d+) s, answered [\d.]+%, "
                     r"p99 [\d,.]+ ms \(merged over \d+ hosts\): (held|saturated)")


def hold_seconds(marks: Path) -> dict[str, int]:
    """Each phase's marked hold, hold_end - hold_start, in seconds."""
    bounds: dict[str, dict[str, int]] = {}
    for line in marks.read_text().splitlines():
        phase = re.search(r"phase=([^,]+),", line)
        event = re.search(r'event="(hold_start|hold_end)"', line)
        if phase and event:
            bounds.setdefault(phase[1], {})[event[1]] = int(line.rsplit(" ", 1)[1])
    return {phase: b["hold_end"] - b["hold_start"] for phase, b in bounds.items()
            if len(b) == 2}


def test_the_knee_search_climbs_until_a_step_saturates_or_walks_down_until_one_holds(
        full_run: dict) -> None:
    # Each step's line, once (the closing "knee:" message repeats the last one).
    verdicts = list(dict.fromkeys(VERDICT.findall(unfolded(full_run["output"]))))
    assert verdicts, "no knee step was judged"
    steps = [int(qps.replace(",", "")) for qps, _, _ in verdicts]
    # The steps taken are the search's rule applied to the verdicts seen, to its end.
    targets = plan_targets(0.004, 10, 200.0, 50.0, knee_max_steps=4)  # as SMALL and full_run
    seen = [{"qps": qps, "held": verdict == "held"}
            for qps, (_, _, verdict) in zip(steps, verdicts, strict=True)]
    chosen = [next_knee_step(targets.knee_steps, targets.knee_steps_below, seen[:n],
                             targets.knee_steps_between)
              for n in range(len(seen) + 1)]
    assert chosen == [*steps, None], (steps, seen)
    # A step is judged over its marked hold only, not the seconds its clients were read in.
    holds = hold_seconds(full_run["run_dir"] / "metrics" / "phase-controller.lp")
    for qps, (_, seconds, _) in zip(steps, verdicts, strict=True):
        assert 1 <= int(seconds) <= holds[f"knee-{qps}"], (qps, seconds, holds)
    held = [qps for qps, (_, _, verdict) in zip(steps, verdicts, strict=True)
            if verdict == "held"]
    if held:
        assert f"knee: highest step held {held[-1]} QPS" in unfolded(full_run["output"])
    # The report judges each step again over its marked hold window, by the same rule.
    summary = json.loads((full_run["run_dir"] / "report" / "summary.json").read_text())
    assert summary["knee"] is None or summary["knee"]["qps"] in steps


def test_counters_reached_the_monitors_influxdb(full_run: dict) -> None:
    query = f"SELECT sum(requests) FROM client WHERE run_id = '{RUN_ID}'"
    url = f"{MONITOR_INFLUX}/query?" + urllib.parse.urlencode({"db": "hongbao", "q": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        series = json.load(response)["results"][0]["series"]
    assert series[0]["values"][0][1] > 0


def test_deploy_twice_changes_nothing_the_second_time(full_run: dict) -> None:
    first = playbook("deploy.yml", full_run["inventory"], *SMALL)  # run.yml drained the server
    assert first.returncode == 0, first.stdout[-4000:]
    result = playbook("deploy.yml", full_run["inventory"], *SMALL)
    assert result.returncode == 0, result.stdout[-4000:]
    changed = {host: counts["changed"] for host, counts in recap(result.stdout).items()}
    assert set(changed.values()) == {0}, changed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["-e", "testbed_scale=0"], "testbed_scale must be > 0"),
        (["-e", "testbed_run_id=bad/id"], "testbed_run_id 'bad/id' may hold only"),
        (["-e", "ansible_ssh_private_key_file=/nonexistent/key"],
         "the SSH key /nonexistent/key (ansible_ssh_private_key_file) is missing"),
    ],
)
def test_bad_variables_fail_early_naming_the_variable(minilab: tuple[Path, Path],
                                                      change: list[str], message: str) -> None:
    inventory, _ = minilab
    result = playbook("phase2.yml", inventory, *change)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_empty_clients_group_fails_naming_it(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path, HOSTS.split("    clients:")[0])
    result = playbook("phase1.yml", inventory)
    assert result.returncode != 0
    assert "inventory group 'clients' is empty" in result.stdout


def test_unreachable_host_is_named(minilab: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = minilab
    hosts = HOSTS.replace("198.19.110.22,", "198.19.110.99,")
    inventory = write_inventory(tmp_path, hosts.replace("{state}", str(root / "state")))
    result = playbook("phase1.yml", inventory, "-e", "testbed_connect_check_seconds=3")
    assert result.returncode != 0
    assert "client02 (198.19.110.99) is unreachable over SSH" in result.stdout
