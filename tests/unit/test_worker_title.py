from __future__ import annotations

from hongbao.node.worker_loop import worker_title


def test_a_worker_title_names_its_role_index_and_run() -> None:
    assert worker_title("server", 12, "seed-1") == "hongbao server w12 run=seed-1"
