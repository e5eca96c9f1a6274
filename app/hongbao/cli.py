"""``hongbao ...`` subcommands: flags -> config -> the component that does the work."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from hongbao import __version__, flags
from hongbao.client.config import SERVER_KINDS
from hongbao.flags import OneLineParser, UsageError
from hongbao.logs import configure_logging
from hongbao.node.open_files import raise_soft_limit
from hongbao.plan import SERVER_FILL, node_workers
from hongbao.runs import resolve_run_dir, resolve_run_id

if TYPE_CHECKING:
    from hongbao.metrics.sinks import Sink

log = logging.getLogger("hongbao")
DEFAULT_SERVER_PORT = 7000
CENTS = flags.number_range(1, unit="cents")
SAME_RUN = object()  # 'ledger check --against' with no directory: the run being checked


def _source_ips(text: str) -> tuple[str, ...]:
    from hongbao.client.source_pairs import parse_source_ips

    try:
        return parse_source_ips(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--source-ips: ")) from None


def _worker_count(count: int | None, connections: int, minimum: int,
                  fill: float = 1.0) -> int:
    try:
        return node_workers(count, connections, minimum, fill=fill)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _sink(args: argparse.Namespace) -> Sink | None:
    from hongbao.metrics.sink_config import sink_from_args  # the commands that ship load it

    try:
        return sink_from_args(args)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _control_token(args: argparse.Namespace, control_host: str) -> str | None:
    from hongbao.node.control_params import TOKEN_ENV, required_token

    token = args.control_token if args.control_token is not None else os.environ.get(TOKEN_ENV)
    try:
        return required_token(control_host, token)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _add_control_flags(parser: argparse.ArgumentParser, role: str, default_port: int) -> None:
    from hongbao.node.control_params import TOKEN_ENV, describe_routes

    parser.add_argument("--control", type=flags.address, default=("127.0.0.1", default_port),
                        help=f"control API HOST:PORT (default 127.0.0.1:{default_port}); "
                             "a non-loopback HOST needs a token")
    parser.add_argument("--control-token",
                        help=f"require 'Authorization: Bearer TOKEN' on every control request "
                             f"(default ${TOKEN_ENV}, which keeps it out of ps)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "control API (GET or POST; a name|alias pair is one parameter, give one spelling; "
        "unknown, repeated or out-of-range parameters get 400; with a token, a request "
        "without 'Authorization: Bearer TOKEN' gets 401):\n" + describe_routes(role))


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    from hongbao.metrics.sink_config import add_sink_flags

    add_sink_flags(parser)
    parser.add_argument("--run-id", help="run identity (default $HONGBAO_RUN_ID or a timestamp)")
    parser.add_argument("--run-dir", help="where metrics and ledgers go (default runs/RUN_ID)")
    parser.add_argument("--host-name", default=os.environ.get("HONGBAO_HOST") or
                        socket.gethostname(), help="the 'host' tag on every point")
    parser.add_argument("--phase", type=flags.phase, default="idle", help="initial 'phase' tag")
    parser.add_argument("--pid-file", type=Path, help="write the node's pid here while it runs")


def _server(args: argparse.Namespace) -> int:
    from hongbao.server.config import AmountRange, ServerConfig
    from hongbao.server.node import ServerNode

    raise_soft_limit()
    run_id = resolve_run_id(args.run_id)
    control_host, control_port = args.control
    token = _control_token(args, control_host)
    listen_host, listen_port = args.listen
    if listen_port is not None and args.port is not None and listen_port != args.port:
        raise UsageError(f"--listen names port {listen_port} and --port {args.port}: give one")
    try:
        config = ServerConfig(
            run_dir=resolve_run_dir(args.run_dir, run_id),
            run_id=run_id,
            host_name=args.host_name,
            listen_host=listen_host,
            port=listen_port if listen_port is not None else
            (args.port if args.port is not None else DEFAULT_SERVER_PORT),
            workers=_worker_count(args.workers, args.expect_connections,
                                  minimum=os.cpu_count() or 1, fill=SERVER_FILL),
            n_sets=args.sets,
            max_qps=args.max_qps,
            max_qps_per_connection=args.max_qps_per_connection,
            login_timeout_s=args.login_timeout,
            control_host=control_host,
            control_port=control_port,
            shake_amount=AmountRange(*args.shake_amount),
            send_amount=AmountRange(*args.send_amount),
            seed=args.seed,
            phase=args.phase,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    return uvloop.run(ServerNode(config, _sink(args), token).run(args.pid_file))


def _client(args: argparse.Namespace) -> int:
    from hongbao.client.config import ClientConfig
    from hongbao.client.node import ClientNode
    raise_soft_limit()
    run_id = resolve_run_id(args.run_id)
    server_host, server_port = args.server
    control_host, control_port = args.control
    token = _control_token(args, control_host)
    port_low, port_high = args.source_ports
    try:
        config = ClientConfig(
            run_dir=resolve_run_dir(args.run_dir, run_id),
            run_id=run_id,
            host_name=args.host_name,
            server_host=server_host,
            server_port=server_port,
            server_kind=args.server_kind,
            first_user=args.first_user,
            users=args.users,
            workers=_worker_count(args.workers, args.users, minimum=1),
            source_ips=args.source_ips,
            port_low=port_low,
            port_high=port_high,
            connect_rate=args.connect_rate,
            qps=args.qps,
            timeout_s=args.timeout,
            login_wait_s=args.login_wait,
            control_host=control_host,
            control_port=control_port,
            phase=args.phase,
        )
        node = ClientNode(config, _sink(args), token)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return uvloop.run(node.run(args.pid_file))


def _ledger_check(args: argparse.Namespace) -> int:
    from hongbao.money import format_balance, ledger_files, reconcile
    from hongbao.received import client_received, received_differences

    files = ledger_files(args.run_dir)
    if not files:
        raise SystemExit(f"no ledgers under {args.run_dir / 'ledger'}: is this a run directory?")
    balance = reconcile(files)
    received = None
    if args.against is not None:
        try:
            received = client_received(args.run_dir if args.against is SAME_RUN else args.against)
        except ValueError as error:
            raise UsageError(str(error)) from None
        balance.problems.extend(received_differences(received, balance))
    if args.json:
        print(json.dumps({**balance.as_dict(), "clients_received": received}, indent=1))
        return 0 if balance.ok else 1
    if received is not None:
        print(f"clients received: won {received['won']} ({received['won_amount']} cents), "
              f"claimed {received['claims']} ({received['claimed_amount']} cents)  "
              f"{'OK' if not received_differences(received, balance) else 'MISMATCH'}")
    print(format_balance(balance))
    return 0 if balance.ok else 1


def _local_run(args: argparse.Namespace) -> int:
    from hongbao.local.run import LocalRunPlan, run_local

    return run_local(LocalRunPlan.from_args(args))


NODE_COMMANDS = frozenset({"server", "client"})
# The commands whose parsers live in their own modules, in the order help lists them.
COMMAND_MODULES = {
    "report": "hongbao.report.commands",
    "monitor": "hongbao.monitor",
    "supervise": "hongbao.local.daemon",
    "plan": "hongbao.plan",
    "connect-progress": "hongbao.progress",
    "knee": "hongbao.report.knee",
    "phase-result": "hongbao.report.phase_result",
    "phase": "hongbao.local.phases",
    "clock": "hongbao.clocks",
    "lab": "hongbao.lab.commands",
    "ship": "hongbao.metrics.commands",
    "grafana": "hongbao.grafana",
}


def wanted_command(argv: list[str]) -> str | None:
    """The command ``argv`` runs (its first word that is not an option), or None when it
    asks for help on the whole command first, or names none."""
    for word in argv:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command; or, when ``only`` names one, the node commands and that one alone.
    A node runs for the whole test, 18 of them at 1M connections, and the other commands'
    modules (Grafana, rich, aiohttp, YAML; about 20 MB) would stay loaded in each; and each
    of the plays' many ``hongbao`` calls would load them all (0.4 s, against 0.1 s)."""
    parser = OneLineParser(prog="hongbao", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    server = commands.add_parser("server", help="run a red-packet server node")
    server.add_argument("--listen", type=flags.listen_address, default=("0.0.0.0", None),
                        help="HOST or HOST:PORT to accept on (default 0.0.0.0)")
    server.add_argument("--port", type=flags.count(0, flags.MAX_PORT),
                        help=f"0 picks a free port (default {DEFAULT_SERVER_PORT})")
    server.add_argument("--workers", type=flags.workers, default=None,
                        help="worker processes, or 'auto' (cores, or what --expect-connections "
                             "needs under the open-files limit)")
    server.add_argument("--expect-connections", type=flags.count(0), default=0,
                        help="connections to size 'auto' workers for")
    server.add_argument("--sets", type=flags.count(1), default=256,
                        help="SETs (user_id %% sets; default 256, as the original)")
    server.add_argument("--max-qps", type=flags.count(1), default=100_000,
                        help="shed shakes above this rate per node with result 17, split "
                             "evenly among the workers (default 100000); logins and claims "
                             "are never shed. The original sheds requests of every kind "
                             "above 65,000/s")
    server.add_argument("--max-qps-per-connection", type=flags.count(1), default=20,
                        help="shed one connection's shakes above this rate with result 17, "
                             "without spending the worker's budget (default 20)")
    server.add_argument("--login-timeout", type=flags.positive, default=10.0,
                        help="seconds a connection may stay without logging in (default 10)")
    _add_control_flags(server, "server", 8989)
    server.add_argument("--shake-amount", type=CENTS, default=(1, 2000),
                        help="cents, LOW-HIGH (default 1-2000)")
    server.add_argument("--send-amount", type=CENTS, default=(300, 20000),
                        help="cents, LOW-HIGH (default 300-20000)")
    server.add_argument("--seed", type=int, help="seed the amounts and recipients")
    _add_run_flags(server)
    server.set_defaults(func=_server)

    client = commands.add_parser("client", help="run a load-generating client node")
    client.add_argument("--server", type=flags.address, required=True,
                        help="server HOST:PORT")
    client.add_argument("--server-kind", choices=SERVER_KINDS, default="hongbao",
                        help="'original': the server answers a shake with a SEND_NOTICE in "
                             "place of its result (the original Go server); 'hongbao' "
                             "(default): notices are pushed and answer no shake")
    client.add_argument("--first-user", type=flags.count(0), default=0)
    client.add_argument("--users", type=flags.count(1), default=1000,
                        help="one connection per user")
    client.add_argument("--workers", type=flags.workers, default=None,
                        help="worker processes, or 'auto' (what --users needs under the "
                             "open-files limit)")
    client.add_argument("--source-ips", type=_source_ips, default=(),
                        help="addresses to bind, e.g. 127.0.0.2-127.0.0.9 ('' = kernel picks)")
    client.add_argument("--source-ports", type=flags.number_range(1, flags.MAX_PORT),
                        default=(10000, 60999), help="ports to bind, LOW-HIGH")
    client.add_argument("--connect-rate", type=flags.positive,
                        default=2000.0,
                        help="new connections per second")
    client.add_argument("--qps", type=flags.count(0), default=0,
                        help="shake requests per second")
    client.add_argument("--timeout", type=flags.positive, default=5.0,
                        help="seconds before a connect or a shake counts as timed out")
    client.add_argument("--login-wait", type=flags.positive, default=30.0,
                        help="seconds a connection may wait for LOGIN_OK before it is "
                             "closed and retried with backoff (default 30)")
    _add_control_flags(client, "client", 9090)
    _add_run_flags(client)
    client.set_defaults(func=_client)
    if only in NODE_COMMANDS:
        return parser
    if only in COMMAND_MODULES:
        importlib.import_module(COMMAND_MODULES[only]).register(commands)
        return parser

    ledger = commands.add_parser("ledger", help="ledger tools")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    check = ledger_commands.add_parser("check", help="reconcile a run's ledgers")
    check.add_argument("run_dir", type=Path)
    check.add_argument("--against", nargs="?", const=SAME_RUN, type=Path, metavar="RUN_DIR",
                       help="also check that the clients' received won and claimed totals (their "
                            "metrics in RUN_DIR, default the same run) equal the ledgers'")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=_ledger_check)

    for module in COMMAND_MODULES.values():
        importlib.import_module(module).register(commands)

    local = commands.add_parser("local-run", help="phases 1-3 on this machine, small scale")
    from hongbao.local.run import add_local_run_flags

    add_local_run_flags(local)
    local.set_defaults(func=_local_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(only=wanted_command(argv)).parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UsageError as error:
        print(f"hongbao {args.command}: error: {error}", file=sys.stderr)
        return flags.USAGE_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
