from __future__ import annotations

from pathlib import Path

from hongbao.metrics.spool import SpoolCursor, read_offset, write_offset
from tests.metrics.spoolfiles import FIRST_SECOND, server_points, spool


def _cursor(tmp_path: Path, path: Path) -> SpoolCursor:
    return SpoolCursor(path, tmp_path / "offsets" / f"{path.name}.offset")


def test_a_line_cut_mid_write_waits_until_its_newline_arrives(tmp_path: Path) -> None:
    path = tmp_path / "w.lp"
    path.write_bytes(b"m v=1i 1\nm v=2")
    cursor = _cursor(tmp_path, path)
    cursor.refresh()
    batch = cursor.read_batch(100)
    assert batch is not None and batch.lines == [b"m v=1i 1"]
    cursor.advance(batch)
    assert cursor.read_batch(100) is None
    with path.open("ab") as handle:
        handle.write(b"i 2\n")
    cursor.refresh()
    assert cursor.pending_lines == 1
    batch = cursor.read_batch(100)
    assert batch is not None and batch.lines == [b"m v=2i 2"]


def test_batches_hold_at_most_max_lines_and_end_on_line_boundaries(tmp_path: Path) -> None:
    path = spool(tmp_path, "server-h1-w0", server_points("r", 0, FIRST_SECOND, 25))
    cursor = _cursor(tmp_path, path)
    cursor.refresh()
    sizes = []
    while (batch := cursor.read_batch(10)) is not None:
        sizes.append(len(batch.lines))
        cursor.advance(batch)
    assert sizes == [10, 10, 5]
    assert cursor.offset == path.stat().st_size
    assert cursor.pending_lines == 0


def test_saved_offset_is_where_a_new_cursor_resumes(tmp_path: Path) -> None:
    path = spool(tmp_path, "server-h1-w0", server_points("r", 0, FIRST_SECOND, 8))
    first = _cursor(tmp_path, path)
    first.refresh()
    batch = first.read_batch(3)
    assert batch is not None
    first.advance(batch)

    resumed = _cursor(tmp_path, path)
    resumed.refresh()
    assert resumed.offset == batch.end
    assert resumed.pending_lines == 5
    rest = resumed.read_batch(100)
    assert rest is not None
    assert [line.split()[-1] for line in rest.lines] == [
        str(second).encode() for second in range(FIRST_SECOND + 3, FIRST_SECOND + 8)]


def test_offset_file_is_replaced_whole_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "shipped" / "w.lp.offset"
    write_offset(path, 123)
    write_offset(path, 4567)
    assert read_offset(path) == 4567
    assert [p.name for p in path.parent.iterdir()] == ["w.lp.offset"]


def test_damaged_offset_file_means_shipping_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "w.lp.offset"
    path.write_text("")
    assert read_offset(path) == 0
    path.write_text("12x")
    assert read_offset(path) == 0


def test_a_file_that_shrank_is_shipped_again_from_the_start(tmp_path: Path) -> None:
    path = spool(tmp_path, "server-h1-w0", server_points("r", 0, FIRST_SECOND, 5))
    cursor = _cursor(tmp_path, path)
    cursor.refresh()
    while (batch := cursor.read_batch(100)) is not None:
        cursor.advance(batch)
    path.write_bytes(b"m v=1i 1\n")
    cursor.refresh()
    batch = cursor.read_batch(100)
    assert batch is not None and batch.lines == [b"m v=1i 1"]


def test_blank_lines_are_consumed_but_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "w.lp"
    path.write_bytes(b"m v=1i 1\n\nm v=2i 2\n")
    cursor = _cursor(tmp_path, path)
    cursor.refresh()
    batch = cursor.read_batch(100)
    assert batch is not None
    assert batch.lines == [b"m v=1i 1", b"m v=2i 2"]
    assert batch.consumed == 3
    cursor.advance(batch)
    assert cursor.pending_lines == 0
