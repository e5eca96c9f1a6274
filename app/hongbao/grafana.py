"""The Grafana dashboard for hongbao runs, generated from code, and ``hongbao grafana``.

Every panel is an InfluxQL query against the ``server``, ``client`` and ``phase``
measurements (DESIGN.md section 5). ``grafana/dashboards/hongbao.json`` is what
``build_dashboard()`` writes; ``hongbao grafana check`` fails when the two drift apart.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

DASHBOARD_UID = "hongbao-testbed"
DASHBOARD_TITLE = "hongbao testbed"
# Must equal the uid in grafana/provisioning/datasources/influxdb.yaml.
DATASOURCE_UID = "hongbao-influxdb"
DATASOURCE = models.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)
DEFAULT_OUT = Path("grafana/dashboards/hongbao.json")

RUN_FILTER = '"run_id" =~ /^$run_id$/'
HOST_FILTER = '"host" =~ /^$host$/'
FULL_WIDTH = 24

Axis = Literal["left", "right"]


@dataclass(frozen=True)
class Series:
    """One InfluxQL target: ``SELECT {select} FROM {measurement}`` for the chosen run
    and hosts, summed per second unless ``per_second`` is off (run totals)."""

    measurement: Literal["server", "client", "latency"]
    select: str
    alias: str = "$col"
    per_second: bool = True
    by_host: bool = False
    axis: Axis = "left"

    def influxql(self) -> str:
        where = " AND ".join((RUN_FILTER, HOST_FILTER, "$timeFilter"))
        query = f'SELECT {self.select} FROM "{self.measurement}" WHERE {where}'
        group_by = (["time(1s)"] if self.per_second else []) + (['"host"'] if self.by_host else [])
        if group_by:
            query += " GROUP BY " + ", ".join(group_by)
        if self.per_second:
            query += " fill(none)"
        return query


CENTS_PER_YUAN = 100  # amounts are integer cents; money panels show yuan


def sum_as(field: str, name: str) -> str:
    return f'sum("{field}") AS "{name}"'


def sums(*fields: str) -> str:
    """``sum("f") AS "f"`` for each field."""
    return ", ".join(sum_as(name, name) for name in fields)


def yuan(expression: str, name: str) -> str:
    """``expression`` (in cents) as yuan, named ``name``."""
    return f'({expression}) / {CENTS_PER_YUAN} AS "{name}"'


def yuan_sums(*fields: str) -> str:
    """``sum("x_amount")`` in yuan, named ``x``, for each field."""
    return ", ".join(yuan(f'sum("{name}")', name.removesuffix("_amount")) for name in fields)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target, as Grafana's InfluxDB data source saves it."""

    def __init__(self, ref_id: str, query: str, alias: str) -> None:
        self.ref_id = ref_id
        self.query = query
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": DATASOURCE,
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": "time_series",
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, ref_id: str, series: Series) -> None:
        self._query = InfluxQLQuery(ref_id, series.influxql(), series.alias)

    def build(self) -> InfluxQLQuery:
        return self._query


class PhaseAnnotationTarget(models.AnnotationTarget):
    """The InfluxDB annotation target: one marker per ``phase`` start/end point."""

    QUERY = (f'SELECT "phase", "event", "target_qps" FROM "phase" '
             f"WHERE {RUN_FILTER} AND $timeFilter")

    def to_json(self) -> dict[str, object]:
        return {
            "fromAnnotations": True,
            "query": self.QUERY,
            "queryType": "tags",
            "rawQuery": True,
            "refId": "Anno",
            "tagsColumn": "phase",
            "textColumn": "event",
            "timeEndColumn": "",
            "titleColumn": "",
        }


class PhaseAnnotation(cogbuilder.Builder[models.AnnotationTarget]):
    def build(self) -> PhaseAnnotationTarget:
        return PhaseAnnotationTarget()


PanelBuilder = timeseries.Panel | stat.Panel


def ref_id(index: int) -> str:
    """Grafana's target names: A, B, C, ..."""
    return chr(ord("A") + index)


def _with_targets(panel: PanelBuilder, series: Sequence[Series]) -> None:
    for index, one in enumerate(series):
        panel.with_target(InfluxQL(ref_id(index), one))


def time_series(title: str, description: str, unit: str, series: Sequence[Series],
                right_unit: str = "", width: int = 12) -> timeseries.Panel:
    """A per-second line chart; series on the ``right`` axis get ``right_unit``."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .line_width(1)
        .fill_opacity(8)
        .span(width)
        .height(8)
        .legend(common_builders.VizLegendOptions()
                .display_mode(common.LegendDisplayMode.TABLE)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
                .calcs(["mean", "max"]))
        .tooltip(common_builders.VizTooltipOptions()
                 .mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.DESCENDING))
    )
    for index, one in enumerate(series):
        if one.axis == "right":
            panel.override_by_query(ref_id(index), [
                models.DynamicConfigValue(id_val="unit", value=right_unit),
                models.DynamicConfigValue(id_val="custom.axisPlacement",
                                          value=common.AxisPlacement.RIGHT),
            ])
    _with_targets(panel, series)
    return panel


def totals(title: str, description: str, unit: str, series: Sequence[Series]) -> stat.Panel:
    """One big number per field: the run's total over the dashboard's time range."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .decimals(2 if unit.startswith("currency") else 0)
        .span(FULL_WIDTH // 3)
        .height(5)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    _with_targets(panel, [replace(one, per_second=False) for one in series])
    return panel


def _rows() -> list[tuple[str, list[PanelBuilder]]]:
    """The dashboard top to bottom: (row title, its panels)."""
    return [
        ("Totals and money balance", [
            totals("Run totals", "Shakes the servers answered, red packets won, packets "
                   "sent to groups, and shares claimed.", "short",
                   [Series("server", sums("requests", "won", "sent_packets", "claims"))]),
            totals("Shake money: generated vs won",
                   "Every yuan a server generated for shake packets is won or still queued.",
                   "currencyCNY",
                   [Series("server", yuan_sums("generated_amount", "won_amount") + ", " +
                           yuan('sum("generated_amount") - sum("won_amount")', "queued"))]),
            totals("Group money: sent vs claimed",
                   "Every yuan users sent is claimed by exactly three shares.", "currencyCNY",
                   [Series("server", yuan_sums("sent_amount", "claimed_amount")),
                    Series("client", yuan('sum("claimed_amount")', "claimed by clients"))]),
        ]),
        ("Load", [
            time_series("Connections", "Open connections per host, summed over its workers.",
                        "short", [
                            Series("server", sums("connections"), "server $tag_host",
                                   by_host=True),
                            Series("client", sums("connections"), "client $tag_host",
                                   by_host=True)]),
            time_series("Client QPS vs server QPS",
                        "Shake requests per second: sent by clients, handled by servers.",
                        "reqps", [
                            Series("client", sum_as("requests", "client requests")),
                            Series("server", sum_as("requests", "server requests"))]),
            time_series("Red packets generated vs won",
                        "Shake packets the servers generated, and the ones users won, "
                        "per second.", "short",
                        [Series("server", sums("generated", "won"))]),
            time_series("Claims and claimed amount",
                        "Group packets sent and shares claimed per second (left axis), "
                        "yuan claimed per second (right axis).", "short", [
                            Series("server", sums("sent_packets", "claims")),
                            Series("server", yuan('sum("claimed_amount")', "claimed yuan"),
                                   axis="right")],
                        right_unit="currencyCNY"),
        ]),
        ("Latency and errors", [
            time_series("Latency percentiles per host", "Shake round trip seen by clients, "
                        "from the intended send time: each client host's percentiles of the "
                        "second, its workers' HdrHistograms merged.", "µs",
                        [Series("latency", ", ".join(
                            f'max("{field}") AS "{name}"' for field, name in (
                                ("lat_p50_us", "p50"), ("lat_p99_us", "p99"),
                                ("lat_p999_us", "p99.9"))), "$tag_host $col", by_host=True)]),
            time_series("Overload and errors", "Shakes shed with result 17, malformed "
                        "frames, rejected claims, failed connects, disconnects and timeouts, "
                        "per second.", "short", [
                            Series("server", sums("overload", "protocol_errors",
                                                  "claims_rejected"), "server $col"),
                            Series("client", sums("overload", "protocol_errors",
                                                  "connect_errors", "disconnects", "timeouts"),
                                   "client $col")]),
        ]),
        ("Per host", [
            time_series("Requests per host", "Shake requests per second for each host: "
                        "an idle or lagging client stands out.", "reqps", [
                            Series("client", sums("requests"), "client $tag_host",
                                   by_host=True),
                            Series("server", sums("requests"), "server $tag_host",
                                   by_host=True)], width=FULL_WIDTH),
        ]),
    ]


def _variables() -> list[cogbuilder.Builder[models.VariableModel]]:
    run_id = (
        dashboard_builders.QueryVariable("run_id")
        .label("run")
        .datasource(DATASOURCE)
        .query('SHOW TAG VALUES FROM "client" WITH KEY = "run_id"')
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_DESC)
    )
    host = (
        dashboard_builders.QueryVariable("host")
        .label("host")
        .datasource(DATASOURCE)
        .query(f'SHOW TAG VALUES WITH KEY = "host" WHERE {RUN_FILTER}')
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    return [run_id, host]


def build_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    builder = (
        dashboard_builders.Dashboard(DASHBOARD_TITLE)
        .uid(DASHBOARD_UID)
        .tags(["hongbao"])
        .description("One hongbao run: connections, QPS, red packets, claims, latency, "
                     "errors and the money balance, from InfluxDB.")
        .time("now-30m", "now")
        .refresh("5s")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .variables(_variables())
        .annotation(
            dashboard_builders.AnnotationQuery()
            .name("phases")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("purple")
            .target(PhaseAnnotation())
        )
    )
    panel_id = 0
    for row_title, panels in _rows():
        panel_id += 1
        builder.with_row(dashboard_builders.Row(row_title).id(panel_id))
        for panel in panels:
            panel_id += 1
            builder.with_panel(panel.id(panel_id))
    encoded: dict[str, Any] = json.loads(JSONEncoder().encode(builder.build()))
    return encoded


def dashboard_json(dashboard: dict[str, Any]) -> str:
    """The committed file's text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(dashboard, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, raw InfluxQL) for every target of every panel, top to bottom."""
    return [(panel["title"], target["query"])
            for panel in dashboard["panels"] for target in panel.get("targets", [])]


def template_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, raw InfluxQL) for the template variables and the annotations."""
    variables = [(f"variable {var['name']}", var["query"])
                 for var in dashboard["templating"]["list"]]
    annotations = [(f"annotation {anno['name']}", anno["target"]["query"])
                   for anno in dashboard["annotations"]["list"]]
    return variables + annotations


_VARIABLE = re.compile(r"\$(\w+)")
_REGEX_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}/])")


def regex_literal(text: str) -> str:
    """``text`` escaped to match itself inside an InfluxQL ``/regex/``."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def substitute(query: str, run_id: str, host_regex: str, start_s: int, end_s: int) -> str:
    """Fill in the variables as Grafana would: ``$run_id`` (escaped), ``$host`` (a regex,
    e.g. ``.*`` for All or ``(a|b)``), ``$timeFilter`` and the interval macros."""
    values = {
        "run_id": regex_literal(run_id),
        "host": host_regex,
        "timeFilter": f"time >= {start_s}s and time <= {end_s}s",
        "__interval": "1s",
        "__interval_ms": "1000",
        "__from": str(start_s * 1000),
        "__to": str(end_s * 1000),
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"query uses ${name}, which substitute() does not know: {query}")
        return values[name]

    return _VARIABLE.sub(fill, query)


def _build(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dashboard_json(build_dashboard()), encoding="utf-8")
    print(out)
    return 0


def _check(args: argparse.Namespace) -> int:
    path: Path = args.out
    if not path.is_file():
        print(f"{path} does not exist: run 'hongbao grafana build' from the repository root")
        return 1
    if path.read_text(encoding="utf-8") != dashboard_json(build_dashboard()):
        print(f"{path} differs from the generator: run 'hongbao grafana build' and commit it")
        return 1
    print(f"{path} is up to date")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hongbao grafana build|check`` to the top-level subcommands."""
    grafana = commands.add_parser("grafana", help="the Grafana dashboard generated from code")
    actions = grafana.add_subparsers(dest="grafana_command", required=True)
    build = actions.add_parser("build", help="write the dashboard JSON")
    check = actions.add_parser("check", help="fail if the committed JSON is stale")
    for parser, func in ((build, _build), (check, _check)):
        parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                            help=f"the dashboard file (default {DEFAULT_OUT})")
        parser.set_defaults(func=func)
