from __future__ import annotations

import argparse

import pytest

from hongbao.metrics.sink_config import add_sink_flags, sink_from_args, sink_from_env
from hongbao.metrics.sinks import InfluxV1Sink, InfluxV2Sink

URL = "http://127.0.0.1:8086"


def _args(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sink_flags(parser, environ)
    return parser.parse_args(argv)


def test_no_url_means_file_only_mode() -> None:
    assert sink_from_env({}) is None


def test_url_alone_selects_influxdb1_and_database_hongbao() -> None:
    sink = sink_from_env({"HONGBAO_INFLUX_URL": URL + "/"})
    assert isinstance(sink, InfluxV1Sink)
    assert (sink.url, sink.database) == (URL, "hongbao")


def test_flags_override_the_environment() -> None:
    args = _args(["--influx-db", "lab", "--influx-user", "w"],
                 {"HONGBAO_INFLUX_URL": URL, "HONGBAO_INFLUX_DB": "other"})
    sink = sink_from_args(args)
    assert isinstance(sink, InfluxV1Sink)
    assert sink.database == "lab"


def test_version_2_builds_the_token_org_bucket_sink() -> None:
    sink = sink_from_env({"HONGBAO_INFLUX_URL": URL, "HONGBAO_INFLUX_VERSION": "2",
                          "HONGBAO_INFLUX_TOKEN": "t", "HONGBAO_INFLUX_ORG": "o",
                          "HONGBAO_INFLUX_BUCKET": "b"})
    assert isinstance(sink, InfluxV2Sink)
    assert (sink.token, sink.org, sink.bucket) == ("t", "o", "b")


@pytest.mark.parametrize("missing", ["TOKEN", "ORG", "BUCKET"])
def test_version_2_without_a_setting_names_its_variable_and_flag(missing: str) -> None:
    environ = {"HONGBAO_INFLUX_URL": URL, "HONGBAO_INFLUX_VERSION": "2",
               "HONGBAO_INFLUX_TOKEN": "t", "HONGBAO_INFLUX_ORG": "o",
               "HONGBAO_INFLUX_BUCKET": "b"}
    del environ[f"HONGBAO_INFLUX_{missing}"]
    with pytest.raises(ValueError, match=rf"\$HONGBAO_INFLUX_{missing}") as error:
        sink_from_env(environ)
    assert f"--influx-{missing.lower()}" in str(error.value)


def test_unknown_version_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"HONGBAO_INFLUX_VERSION\) is '3': use 1 .* or 2"):
        sink_from_env({"HONGBAO_INFLUX_URL": URL, "HONGBAO_INFLUX_VERSION": "3"})


@pytest.mark.parametrize("url", ["localhost:8086", "ftp://127.0.0.1", "http://", "http://h:x"])
def test_a_url_that_is_not_http_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match=r"--influx-url \(or \$HONGBAO_INFLUX_URL\)"):
        sink_from_env({"HONGBAO_INFLUX_URL": url})
