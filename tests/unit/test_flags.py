"""Every flag that takes an address, a range, a rate or a count: a wrong value is one line
on stderr and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hongbao import flags
from hongbao.cli import main

BAD_FLAGS = [
    ["server", "--listen", "127.0.0.1:notaport"],
    ["server", "--listen", "127.0.0.1:70000"],
    ["server", "--listen", "bad host!"],
    ["server", "--port", "-1"],
    ["server", "--control", "127.0.0.1:x"],
    ["server", "--control", ":"],
    ["server", "--shake-amount", "20-10"],
    ["server", "--send-amount", "lots"],
    ["server", "--sets", "0"],
    ["server", "--max-qps", "1e3"],
    ["server", "--workers", "none"],
    ["server", "--expect-connections", "-5"],
    ["client", "--server", "host"],
    ["client", "--server", "127.0.0.1:7000", "--source-ports", "60000-1000"],
    ["client", "--server", "127.0.0.1:7000", "--source-ips", "10.0.0.9-10.0.0.1"],
    ["client", "--server", "127.0.0.1:7000", "--connect-rate", "nan"],
    ["client", "--server", "127.0.0.1:7000", "--connect-rate", "0"],
    ["client", "--server", "127.0.0.1:7000", "--qps", "-3"],
    ["client", "--server", "127.0.0.1:7000", "--timeout", "inf"],
    ["client", "--server", "127.0.0.1:7000", "--users", "0"],
    ["local-run", "--shake-rate", "-1"],
    ["local-run", "--phase2-qps", "fast"],
    ["monitor", "--seconds", "0"],
    ["plan", "clients", "--connections", "-1", "--fd-limit", "20000"],
    ["phase", "mark", "--name", "p", "--event", "start", "--target-qps", "x"],
]


@pytest.mark.parametrize("argv", BAD_FLAGS, ids=" ".join)
def test_a_bad_value_is_one_line_and_exit_2(argv: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == flags.USAGE_ERROR_EXIT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("hongbao ") and ": error: " in err
    assert "Traceback" not in err


def test_a_port_given_twice_differently_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "--listen", "127.0.0.1:7100", "--port", "7200"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("hongbao server: error: --listen names port 7100 and --port 7200: "
                           "give one")


def test_connect_progress_names_the_flags_a_round_needs(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "progress.json"
    assert main(["connect-progress", "--state", str(state), "--server", "server"]) == 2
    assert capsys.readouterr().err.strip() == (
        "hongbao connect-progress: error: connect-progress needs --target, --timeout "
        "(or --begin)")
    assert not state.exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:7000", ("127.0.0.1", 7000)),
    (":8989", ("127.0.0.1", 8989)),
    ("9090", ("127.0.0.1", 9090)),
    ("server.lab:80", ("server.lab", 80)),
    ("[::1]:7000", ("::1", 7000)),
])
def test_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert flags.address(text) == expected


def test_listen_takes_a_host_or_host_and_port() -> None:
    assert flags.listen_address("0.0.0.0") == ("0.0.0.0", None)
    assert flags.listen_address("127.0.0.1:7000") == ("127.0.0.1", 7000)


def test_ranges_rates_and_counts_parse() -> None:
    assert flags.number_range(1)("5-10") == (5, 10)
    assert flags.number_range(1)("7") == (7, 7)
    assert flags.rate()("2.5") == 2.5
    assert flags.positive("0.1") == 0.1
    assert flags.count(1)("3") == 3
    assert flags.workers("auto") is None
    assert flags.workers("4") == 4
