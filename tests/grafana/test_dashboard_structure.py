"""What Grafana needs from the dashboard and the provisioning files to fit together."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from hongbao import grafana

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    built: dict[str, Any] = grafana.build_dashboard()
    return built


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_uid_and_title_are_stable(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "hongbao-testbed"
    assert dashboard["title"] == "hongbao testbed"


def test_panel_ids_are_unique_and_positive(dashboard: dict[str, Any]) -> None:
    ids = Counter(panel["id"] for panel in dashboard["panels"])
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert [i for i, count in ids.items() if count > 1] == []


def test_every_panel_and_target_uses_the_provisioned_datasource(
        dashboard: dict[str, Any]) -> None:
    expected = {"type": "influxdb", "uid": grafana.DATASOURCE_UID}
    for panel in data_panels(dashboard):
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == expected, panel["title"]
            assert target["rawQuery"] is True
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == expected, variable["name"]
    for annotation in dashboard["annotations"]["list"]:
        assert annotation["datasource"] == expected, annotation["name"]


def test_target_ref_ids_are_unique_within_each_panel(dashboard: dict[str, Any]) -> None:
    for panel in data_panels(dashboard):
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


def test_panels_sit_on_the_24_column_grid_without_overlapping(
        dashboard: dict[str, Any]) -> None:
    boxes = []
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0, panel
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((panel["title"], pos))
    for (title_a, a), (title_b, b) in combinations(boxes, 2):
        apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                 or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
        assert apart, f"{title_a!r} overlaps {title_b!r}"


def test_run_id_and_host_variables_exist(dashboard: dict[str, Any]) -> None:
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["run_id"]["query"] == 'SHOW TAG VALUES FROM "client" WITH KEY = "run_id"'
    assert variables["run_id"]["multi"] is False
    host = variables["host"]
    assert host["query"] == 'SHOW TAG VALUES WITH KEY = "host" WHERE "run_id" =~ /^$run_id$/'
    assert host["multi"] is True and host["includeAll"] is True


def test_phase_annotation_reads_the_phase_measurement(dashboard: dict[str, Any]) -> None:
    (annotation,) = dashboard["annotations"]["list"]
    assert annotation["enable"] is True
    assert 'FROM "phase"' in annotation["target"]["query"]
    assert annotation["target"]["tagsColumn"] == "phase"


def test_every_query_filters_by_run_and_time(dashboard: dict[str, Any]) -> None:
    queries = grafana.dashboard_queries(dashboard)
    assert len(queries) >= len(data_panels(dashboard))
    lists_the_runs = "variable run_id"
    for title, query in queries + grafana.template_queries(dashboard):
        if title == lists_the_runs:
            continue
        assert '"run_id" =~ /^$run_id$/' in query, title
    for title, query in queries:
        assert "$timeFilter" in query, title
        assert '"host" =~ /^$host$/' in query, title


def test_dashboard_has_the_panels_the_metrics_issue_asks_for(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in data_panels(dashboard)}
    assert titles >= {
        "Connections", "Client QPS vs server QPS", "Red packets generated vs won",
        "Claims and claimed amount", "Latency percentiles per host", "Overload and errors",
        "Requests per host", "Shake money: generated vs won", "Group money: sent vs claimed",
    }


def test_per_second_panels_group_by_one_second(dashboard: dict[str, Any]) -> None:
    for panel in data_panels(dashboard):
        if panel["type"] == "timeseries":
            for target in panel["targets"]:
                assert "GROUP BY time(1s)" in target["query"], panel["title"]


def test_datasource_provisioning_parses_and_its_uid_matches_the_dashboard() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    (source,) = config["datasources"]
    assert source["uid"] == grafana.DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["url"] == "$HONGBAO_INFLUX_URL"
    assert source["jsonData"]["dbName"] == "$HONGBAO_INFLUX_DB"
    assert source["jsonData"]["version"] == "InfluxQL"


def test_influxdb_2_example_parses_and_keeps_the_influxql_uid() -> None:
    text = (PROVISIONING / "datasources" / "influxdb-flux.yaml.example").read_text()
    sources = {source["uid"]: source for source in yaml.safe_load(text)["datasources"]}
    assert sources[grafana.DATASOURCE_UID]["jsonData"]["version"] == "InfluxQL"
    flux = [source for source in sources.values() if source["jsonData"]["version"] == "Flux"]
    assert flux and {"organization", "defaultBucket"} <= flux[0]["jsonData"].keys()
    assert flux[0]["secureJsonData"]["token"] == "$HONGBAO_INFLUX_TOKEN"


def test_dashboard_provider_parses_and_reads_a_directory() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "hongbao.yaml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/hongbao"


@pytest.mark.parametrize(("run_id", "escaped"), [
    ("test-run", "test-run"),
    ("2024.01.02/a+b", r"2024\.01\.02\/a\+b"),
])
def test_substitute_fills_run_host_and_time_like_grafana(run_id: str, escaped: str) -> None:
    query = 'SELECT x FROM "s" WHERE "run_id" =~ /^$run_id$/ AND "host" =~ /^$host$/ ' \
            "AND $timeFilter GROUP BY time($__interval)"
    assert grafana.substitute(query, run_id, "(a|b)", 100, 160) == (
        f'SELECT x FROM "s" WHERE "run_id" =~ /^{escaped}$/ AND "host" =~ /^(a|b)$/ '
        "AND time >= 100s and time <= 160s GROUP BY time(1s)")


def test_substitute_refuses_an_unknown_variable() -> None:
    with pytest.raises(ValueError, match=r"\$nope"):
        grafana.substitute("SELECT $nope", "r", ".*", 0, 1)
