"""Which remote sink, if any, from ``--influx-*`` flags or ``HONGBAO_INFLUX_*`` variables.

No URL means file-only mode: points go to the local ``.lp`` files and nowhere else.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from hongbao.metrics.sinks import InfluxV1Sink, InfluxV2Sink, Sink, check_http_url

DEFAULT_DATABASE = "hongbao"
SUPPORTED_VERSIONS = ("1", "2")

# flag destination -> environment variable giving its default
ENVIRONMENT = {
    "influx_url": "HONGBAO_INFLUX_URL",
    "influx_version": "HONGBAO_INFLUX_VERSION",
    "influx_db": "HONGBAO_INFLUX_DB",
    "influx_rp": "HONGBAO_INFLUX_RP",
    "influx_user": "HONGBAO_INFLUX_USER",
    "influx_password": "HONGBAO_INFLUX_PASSWORD",
    "influx_token": "HONGBAO_INFLUX_TOKEN",
    "influx_org": "HONGBAO_INFLUX_ORG",
    "influx_bucket": "HONGBAO_INFLUX_BUCKET",
}


def _setting(dest: str) -> str:
    flag = "--" + dest.replace("_", "-")
    return f"{flag} (or ${ENVIRONMENT[dest]})"


def add_sink_flags(parser: argparse.ArgumentParser,
                   environ: Mapping[str, str] = os.environ) -> None:
    """The ``--influx-*`` flags; each defaults to its ``HONGBAO_INFLUX_*`` variable."""
    group = parser.add_argument_group(
        "InfluxDB sink", "without a URL, points go only to the run's .lp files")

    def add(dest: str, help_text: str, default: str | None = None) -> None:
        group.add_argument("--" + dest.replace("_", "-"), dest=dest,
                           metavar=dest.removeprefix("influx_").upper(),
                           default=environ.get(ENVIRONMENT[dest], default),
                           help=f"{help_text} (${ENVIRONMENT[dest]})")

    add("influx_url", "InfluxDB base URL, e.g. http://127.0.0.1:8086")
    add("influx_version", "1 for InfluxDB 1.x /write, 2 for 2.x/3.x /api/v2/write "
        "(default 1)", "1")
    add("influx_db", f"1.x database, created if missing (default {DEFAULT_DATABASE})",
        DEFAULT_DATABASE)
    add("influx_rp", "1.x retention policy (default: the database's default)")
    add("influx_user", "1.x user name")
    add("influx_password", "1.x password (prefer the variable: flags show up in ps)")
    add("influx_token", "2.x API token (prefer the variable: flags show up in ps)")
    add("influx_org", "2.x organization")
    add("influx_bucket", "2.x bucket")


def _required(args: argparse.Namespace, dest: str, what: str) -> str:
    value = getattr(args, dest)
    if not value:
        raise ValueError(f"InfluxDB 2.x needs {what}: set {_setting(dest)}")
    return str(value)


def sink_from_args(args: argparse.Namespace) -> Sink | None:
    """The sink the flags describe, or None without a URL (file-only mode).

    Raises ValueError naming the flag and variable to fix."""
    if not args.influx_url:
        return None
    version = str(args.influx_version or "1").strip()
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"{_setting('influx_version')} is {version!r}: use 1 for "
                         "InfluxDB 1.x or 2 for InfluxDB 2.x/3.x")
    url = check_http_url(args.influx_url, _setting("influx_url"))
    if version == "1":
        return InfluxV1Sink(url, args.influx_db or DEFAULT_DATABASE,
                            username=args.influx_user or None,
                            password=args.influx_password or None,
                            retention_policy=args.influx_rp or None)
    return InfluxV2Sink(url, _required(args, "influx_token", "an API token"),
                        _required(args, "influx_org", "an organization"),
                        _required(args, "influx_bucket", "a bucket"))


def sink_from_env(environ: Mapping[str, str] = os.environ) -> Sink | None:
    """The sink the ``HONGBAO_INFLUX_*`` variables describe, or None without a URL."""
    parser = argparse.ArgumentParser(add_help=False)
    add_sink_flags(parser, environ)
    return sink_from_args(parser.parse_args([]))
