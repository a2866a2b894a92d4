"""``chimevoice`` command line."""
from __future__ import annotations

import argparse
import asyncio
import sys

DESCRIPTION = """\
chimevoice: a self-hosted SIP/RTP media server that runs Amazon Chime SDK
SIP media application handlers (PSTN audio service) on your own machines.

SIP trunks (Voice Connectors) deliver calls; SIP rules route each call by
called number or Request-URI host to a SIP media application, whose handler
(a Python function with the Lambda signature, an HTTP webhook or an AWS Lambda
function) receives the Chime call events and returns the actions to run.
"""

EPILOG = """\
examples:
  chimevoice init --handler path/to/my-lambda                    # a config for your Lambda
  chimevoice check-config config/example.yaml
  chimevoice run -c config/example.yaml
  chimevoice run -c config/example.yaml --http 127.0.0.1:8080   # /metrics, /health, /status, /
  chimevoice top --url http://127.0.0.1:8080                    # live calls of that daemon
  chimevoice status                                             # a summary of the running daemon
  chimevoice drain --exit --wait                                # refuse new calls, exit when idle
  kill -HUP $(pidof chimevoice)   # or systemctl reload: re-read the configuration for new calls
  chimevoice call sip:+15550100000@127.0.0.1:5060               # a test call

exit status: 0 on success or clean shutdown, 1 on a runtime error, 2 on a bad
configuration or bad arguments.
"""


def _http(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected ADDRESS:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def _positive(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        f = 0.0
    if not f > 0:
        raise argparse.ArgumentTypeError("expected a number of seconds > 0, e.g. 1 or 0.5")
    return f


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chimevoice", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="run the daemon", description="Run the SIP/RTP daemon until SIGINT/SIGTERM. "
                         "On a signal it stops taking calls (503), waits for live calls up to "
                         "--drain-seconds, hangs up the rest and writes their CDRs. SIGHUP re-reads -c FILE "
                         "for new calls (calls in progress keep theirs; an invalid file is refused and logged). "
                         "Under systemd (Type=notify) it sends READY, STATUS and WATCHDOG (docs/operations.md).")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="YAML configuration file")
    run.add_argument("--drain-seconds", type=float, default=10.0, metavar="S",
                     help="how long to wait for live calls on shutdown (default 10)")
    run.add_argument("--http", type=_http, metavar="ADDR:PORT",
                     help="serve Prometheus metrics at /metrics and /health on this address")
    run.add_argument("--log-format", choices=("json", "console"), help="override logging.format")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                     help="override logging.level")
    chk = sub.add_parser("check-config", help="validate a configuration file and exit",
                         description="Validate FILE; print every problem as FILE:LINE: key: message. "
                         "Each python handler is loaded once (module imported, function looked up, "
                         "not invoked), with its python_path and environment.")
    chk.add_argument("file", metavar="FILE")
    from .init_cmd import add_parser as init_parser
    init_parser(sub)
    from .check_handler import add_parser as check_handler_parser
    check_handler_parser(sub)
    from .caller import add_arguments as call_arguments
    call_arguments(sub.add_parser(
        "call", help="place a test call (pjsua2) and print what happened",
        description="Dial URI, optionally play a WAV file and send digits, record what is heard, wait for "
        "the far end's BYE (or --hangup-after) and print a summary (--json: one JSON object). Exit status "
        "0 when answered (or when the final status is --expect-status), 1 otherwise, 2 on bad arguments."))
    top = sub.add_parser("top", help="show the live calls of a running daemon",
                         description="Show the live calls of a daemon started with --http (its /status), "
                         "refreshed every --interval seconds. Keys: s cycles the sort column (elapsed, app, "
                         "action, latency), r reverses it, q quits. When stdout is not a terminal, or with "
                         "--once, it prints plain lines: a header, then one line per call.")
    top.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's --http address "
                     "(default http://127.0.0.1:8080)")
    top.add_argument("--interval", type=_positive, default=1.0, metavar="S", help="seconds between refreshes "
                     "(default 1)")
    top.add_argument("--once", action="store_true", help="print the calls once as plain lines and exit")
    st = sub.add_parser("status", help="print a summary of a running daemon",
                        description="Print the state of a daemon started with --http (its /status): accepting or "
                        "draining, uptime, call counts, listeners, handler pools and the calls in progress.")
    st.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's --http address "
                    "(default http://127.0.0.1:8080)")
    st.add_argument("--json", action="store_true", help="print the /status document as it is")
    dr = sub.add_parser("drain", help="make a running daemon refuse new calls and let live ones end",
                        description="POST /drain to a daemon started with --http (accepted from loopback only): "
                        "new INVITEs get 503 with Retry-After while calls in progress go on. With --exit the daemon "
                        "shuts down cleanly once the last call has ended; --resume takes calls again.")
    dr.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's --http address "
                    "(default http://127.0.0.1:8080)")
    mode = dr.add_mutually_exclusive_group()
    mode.add_argument("--exit", action="store_true", help="shut the daemon down when its calls have ended")
    mode.add_argument("--resume", action="store_true", help="stop draining: accept new calls again")
    dr.add_argument("--wait", action="store_true", help="wait until no call is active")
    dr.add_argument("--timeout", type=_positive, default=3600.0, metavar="S",
                    help="with --wait: give up after S seconds (exit status 1)")
    from .simulate import add_arguments as simulate_arguments
    simulate_arguments(sub.add_parser(
        "simulate", help="run a handler against a scripted call (no SIP, virtual time)",
        description="Run a handler against a YAML script of the caller's behaviour with the daemon's engine "
        "in virtual time and print the event/reply trace (docs/simulate.md). Exit status 1 when --check "
        "finds a difference, 2 on a bad configuration or script."))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "init":
        from .init_cmd import run as init
        return init(args)
    if args.command == "check-handler":
        from .check_handler import run as check_handler
        return check_handler(args)
    if args.command == "top":
        from .top import run as top
        return top(args.url, interval=args.interval, once=args.once)
    if args.command == "status":
        from .ctl import status
        return status(args.url, as_json=args.json)
    if args.command == "drain":
        from .ctl import drain
        return drain(args.url, exit_when_idle=args.exit, resume=args.resume, wait=args.wait, timeout=args.timeout)
    if args.command == "simulate":
        from .simulate import run as simulate
        return simulate(args)
    if args.command == "call":
        from .caller import run as place_call
        return place_call(args)
    from .config import ConfigError
    from .handler_check import load_checked_config, log_warnings, summary

    path = args.config if args.command == "run" else args.file
    try:
        cfg = load_checked_config(path)
    except ConfigError as exc:
        print(f"chimevoice: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(summary(cfg, path))
        for warning in cfg.warnings:
            print(f"warning: {warning.format(path)}")
        return 0
    import dataclasses

    from . import logs
    # the overrides apply everywhere the configuration is read (pjlib's log level too)
    cfg = dataclasses.replace(cfg, logging=dataclasses.replace(
        cfg.logging, level=args.log_level or cfg.logging.level, format=args.log_format or cfg.logging.format))
    logs.configure(cfg.logging.level, cfg.logging.format)
    import structlog

    from .malloc import tune_malloc
    tuning = tune_malloc()          # before any thread exists: pjsua2's, the executors'
    log = structlog.get_logger("chimevoice")
    log.info("malloc_tuned", applied=tuning.applied, arena_max=tuning.arena_max,
             mmap_threshold=tuning.mmap_threshold)
    log_warnings(cfg, path, log)
    from .daemon import Daemon
    return asyncio.run(Daemon(cfg, drain_timeout_s=args.drain_seconds, http=args.http,
                              config_path=args.config).run())


if __name__ == "__main__":
    sys.exit(main())
