"""The monitor's phase of a second does not depend on the order its points arrive in: at a
phase's start some workers still tag the old phase, and the run directory's files and
InfluxDB's answer list them in different orders."""

from __future__ import annotations

import itertools

from hongbao.metrics.lineprotocol import Point
from hongbao.monitor import Collector

T = 1_800_000_000


def worker_point(worker: int, phase: str, requests: int = 10) -> Point:
    return Point("client", {"run_id": "r1", "host": "h1", "worker": str(worker), "phase": phase},
                 {"requests": requests}, T)


def test_a_boundary_second_shows_the_phase_most_points_carry_in_any_order() -> None:
    points = [worker_point(0, "phase2"), worker_point(1, "phase3"), worker_point(2, "phase3")]
    for order in itertools.permutations(points):
        collector = Collector()
        for point in order:
            collector.add(point)
        assert collector.seconds[T].phase == "phase3"
        assert collector.seconds[T].client["requests"] == 30


def test_a_point_read_again_with_another_phase_replaces_the_first_copy() -> None:
    collector = Collector()
    collector.add(worker_point(0, "phase2"))
    collector.add(worker_point(0, "phase3", requests=12))  # re-read: the newer copy counts
    assert collector.seconds[T].phase == "phase3"
    assert collector.seconds[T].client["requests"] == 12
