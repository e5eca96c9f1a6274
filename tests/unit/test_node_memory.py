"""The node counts the memory of itself, its children (the fork server, the resource tracker)
and its workers (the fork server's children), each once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hongbao.node.memory import children, node_processes, rss_kb

# A child that starts a grandchild, prints its pid once it runs, then waits for stdin to close.
PARENT_OF_ONE = """
import subprocess, sys
grandchild = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
print(grandchild.pid, flush=True)
sys.stdin.read()
grandchild.stdin.close()
grandchild.wait()
"""


@pytest.fixture
def child_with_grandchild() -> Iterator[tuple[int, int]]:
    child = subprocess.Popen([sys.executable, "-c", PARENT_OF_ONE], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    grandchild = int(child.stdout.readline())
    try:
        yield child.pid, grandchild
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_the_node_counts_itself_its_children_and_its_workers_once(
        child_with_grandchild: tuple[int, int]) -> None:
    child, grandchild = child_with_grandchild
    assert children(child) == [grandchild]
    counted = node_processes([grandchild, child])  # a worker may also be a child (spawn)
    assert counted[0] == os.getpid()
    assert {child, grandchild} <= set(counted[1:])
    assert len(counted) == len(set(counted))


def test_rss_sums_the_processes_and_counts_a_gone_one_as_zero(
        child_with_grandchild: tuple[int, int]) -> None:
    child, grandchild = child_with_grandchild
    alone = rss_kb([child])
    assert alone > 1000  # a Python interpreter is several MB
    assert rss_kb([child, grandchild]) > alone
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert rss_kb([gone.pid]) == 0


def test_a_gone_process_has_no_children() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert children(gone.pid) == []
