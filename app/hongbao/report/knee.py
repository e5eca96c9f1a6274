"""One step of the knee search, judged from the client hosts' ``/status`` windows: the
hosts' latency histograms merged exactly, their counters summed, and the same rule as the
phase table (p99, answered share, rate held), where "answered" means not timed out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hongbao import flags
from hongbao.metrics.histograms import merge_encoded, percentiles
from hongbao.plan import next_knee_step
from hongbao.report.tables import answered_share_pct, saturation_limits


def step_verdict(statuses: dict[str, dict[str, Any]], target_qps: int) -> dict[str, Any]:
    windows = [status["window"] for status in statuses.values() if "window" in status]
    if not windows:
        raise ValueError("no client status carries a load window: are these client nodes?")
    seconds = min(window["seconds"] for window in windows)
    sent = sum(window["requests"] for window in windows)
    # A shake counts as unanswered once it timed out: comparing responses with requests
    # over a short window would count the shakes still in flight at its end as lost.
    timeouts = sum(window["timeouts"] for window in windows)
    skipped = sum(window["send_skipped"] for window in windows)
    latency = percentiles(merge_encoded(window["histogram"] for window in windows))
    p99_ms = latency["lat_p99_us"] / 1000
    answered_pct = answered_share_pct(sent, timeouts)
    held_qps = sent / seconds if seconds else 0.0
    limits = saturation_limits(held_qps, target_qps, answered_pct, p99_ms, skipped)
    held = not limits
    line = (f"knee step {target_qps:,} QPS: held {held_qps:,.0f}/s over {seconds:.0f} s, "
            f"answered {answered_pct:.3f}%, p99 {p99_ms:,.1f} ms (merged over "
            f"{len(windows)} hosts): {'held' if held else 'saturated: ' + '; '.join(limits)}")
    return {"qps": target_qps, "held": held, "held_qps": round(held_qps, 1),
            "answered_pct": round(answered_pct, 3), "p99_ms": round(p99_ms, 3),
            "timeouts": timeouts,
            "limit": "; ".join(limits) or None, "line": line}


def _verdict(args: argparse.Namespace) -> int:
    try:
        statuses = json.load(sys.stdin)
        verdict = step_verdict(statuses, args.target)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise flags.UsageError(f"stdin must be a JSON object of host -> client /status: "
                               f"{error}") from None
    print(json.dumps(verdict))
    return 0


def _next(_args: argparse.Namespace) -> int:
    try:
        search = json.load(sys.stdin)
        rising = [int(qps) for qps in search["rising"]]
        below = [int(qps) for qps in search["below"]]
        verdicts = [{"qps": int(v["qps"]), "held": bool(v["held"])} for v in search["verdicts"]]
        between = [int(qps) for qps in search.get("between", [])]
        if not rising:
            raise ValueError("'rising' is empty")
    except KeyError as error:
        raise flags.UsageError(f"stdin has no {error}: it must be a JSON object with the "
                               "lists 'rising', 'below' (QPS) and 'verdicts', and maybe "
                               "'between'") from None
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
        raise flags.UsageError(f"stdin must be a JSON object with the lists 'rising', 'below' "
                               f"(QPS) and 'verdicts' (from knee verdict), and maybe 'between' "
                               f"(QPS): {error}") from None
    print(json.dumps({"next": next_knee_step(rising, below, verdicts, between)}))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("knee", help="the knee search: a step's verdict, the next step")
    actions = parser.add_subparsers(dest="knee_action", required=True)
    verdict = actions.add_parser(
        "verdict", help="held or saturated, from the clients' /status (stdin: JSON host -> "
                        "status)")
    verdict.add_argument("--target", type=flags.count(1), required=True,
                         help="the step's QPS in all")
    verdict.set_defaults(func=_verdict)
    after = actions.add_parser(
        "next", help="the next step's QPS, or null when the search is over (stdin: JSON "
                     "{rising, below, verdicts[, between]})")
    after.set_defaults(func=_next)
