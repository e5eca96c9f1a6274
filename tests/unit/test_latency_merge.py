"""Merged latency percentiles are the run's percentiles: two client workers with known
distributions, recorded the way a worker records them, merged the ways the node (per host)
and the report (the .hlog files) merge them."""

from __future__ import annotations

import random
from pathlib import Path

from hdrh.log import HistogramLogWriter

from hongbao.client.host_latency import HostLatency
from hongbao.client.latency import LatencyRecorder
from hongbao.metrics.histograms import (
    HISTOGRAM_FIELD,
    PERCENTILES,
    HistogramLog,
    encode,
    log_path,
    merge_encoded,
    new_histogram,
    per_second,
    percentiles,
    record,
    run_dir_logs,
)
from hongbao.metrics.pointfile import read_points

SECOND = 1_800_000_000
# worker 0: 20,000 fast answers (0.2-1 ms); worker 1: 150 slow ones (40-60 ms)
FAST = [random.Random(1).randint(200, 1_000) for _ in range(20_000)]
SLOW = [random.Random(2).randint(40_000, 60_000) for _ in range(150)]


def one_histogram_fed_everything() -> dict[str, int]:
    histogram = new_histogram()
    for value in FAST + SLOW:
        record(histogram, value)
    return percentiles(histogram)


def record_two_workers(run_dir: Path) -> list[str]:
    taken = []
    for index, samples in enumerate((FAST, SLOW)):
        recorder = LatencyRecorder(log_path(run_dir, "client01", index))
        for value in samples:
            recorder.record(value)
        taken.append(recorder.take(SECOND))
    return taken


def test_the_report_merge_of_hlog_files_equals_one_histogram_of_all_samples(
        tmp_path: Path) -> None:
    taken = record_two_workers(tmp_path)
    merged = per_second(run_dir_logs(tmp_path))
    assert list(merged) == [SECOND]
    expected = one_histogram_fed_everything()
    assert percentiles(merged[SECOND]) == expected
    worst_worker_p99 = max(percentiles(merge_encoded([one]))["lat_p99_us"] for one in taken)
    assert worst_worker_p99 >= 40_000 > expected["lat_p99_us"]  # the old reading was wrong


def test_the_node_merge_writes_the_hosts_true_percentiles(tmp_path: Path) -> None:
    taken = record_two_workers(tmp_path)
    host = HostLatency(tmp_path, "client01", "r1", workers=2, phase=lambda: "phase2")
    host.add(0, SECOND, taken[0])
    assert not list(read_points(tmp_path / "metrics" / "latency-client01.lp"))
    host.add(1, SECOND, taken[1])  # the second is complete: written at once
    [point] = read_points(tmp_path / "metrics" / "latency-client01.lp")
    expected = one_histogram_fed_everything()
    assert point.time == SECOND and point.tags["phase"] == "phase2"
    assert {k: point.fields[k] for k in expected} == expected
    assert point.fields["count"] == len(FAST) + len(SLOW) and point.fields["workers"] == 2
    assert isinstance(point.fields[HISTOGRAM_FIELD], str)
    assert percentiles(merge_encoded([point.fields[HISTOGRAM_FIELD]])) == expected


def test_a_second_missing_a_worker_is_written_after_the_grace_period(tmp_path: Path) -> None:
    host = HostLatency(tmp_path, "client01", "r1", workers=2, phase=lambda: "phase2")
    empty = LatencyRecorder().take(SECOND)
    for offset in range(5):
        host.add(0, SECOND + offset, empty)  # worker 1 is silent
    points = list(read_points(tmp_path / "metrics" / "latency-client01.lp"))
    assert [p.time for p in points] == [SECOND, SECOND + 1]
    assert all(p.fields["workers"] == 1 for p in points)
    host.flush()
    points = list(read_points(tmp_path / "metrics" / "latency-client01.lp"))
    assert [p.time for p in points] == [SECOND + i for i in range(5)]


def test_percentiles_are_hdrhistograms_own_values_at_those_percentiles() -> None:
    rng = random.Random(3)
    cases = [[1], [60_000_000, 1], [rng.randint(1, 5_000_000) for _ in range(10_000)],
             [rng.choice((300, 300, 300, 90_000)) for _ in range(997)], FAST + SLOW]
    for values in cases:
        histogram = new_histogram()
        for value in values:
            record(histogram, value)
        expected = {name: histogram.get_value_at_percentile(pct)
                    for name, pct in PERCENTILES.items()}
        assert percentiles(histogram) == {**expected,
                                          "lat_max_us": histogram.get_max_value()}, values[:5]
    assert set(percentiles(new_histogram()).values()) == {0}


def test_the_log_line_is_hdrhs_own_and_an_empty_histogram_encodes_to_one_text(
        tmp_path: Path) -> None:
    histogram = new_histogram()
    for value in FAST[:500] + SLOW:
        record(histogram, value)
    ours = HistogramLog(tmp_path / "ours.hlog")
    ours.write(SECOND, histogram, encode(histogram))
    ours.close()
    with (tmp_path / "hdrh.hlog").open("w") as file:
        HistogramLogWriter(file).output_interval_histogram(histogram, SECOND, SECOND + 1, 1000.0)
    assert (tmp_path / "ours.hlog").read_text().splitlines()[-1] == \
        (tmp_path / "hdrh.hlog").read_text().strip()
    assert encode(new_histogram()) == new_histogram().encode().decode("ascii")
    merged = merge_encoded([encode(new_histogram()), encode(histogram)])
    assert percentiles(merged) == percentiles(histogram)
