"""Command line: argument parsing and subcommands, no logic of its own.

lag-exporter [run] [--config FILE] [--bootstrap-servers HOSTS] ...   the daemon
lag-exporter check [--format table|json] [--max-lag N]               one poll, printed
lag-exporter plan [--duration 60s] [--format text|json]              partition advice
lag-exporter validate-config FILE                                    check a file only

The daemon reloads its configuration on SIGHUP: the new one is validated
first, and if it is wrong the running one stays, with the reason logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import __version__, logs
from .api import groups_document
from .config import (
    ENV_CONFIG,
    ENV_POLL_INTERVAL,
    ConfigError,
    Overrides,
    Settings,
    load_settings,
    parse_duration,
)
from .daemon import ClusterPoller, Daemon, Store
from .kafka.probe import probe_cluster
from .model import ClusterView
from .plan import Run, plan_document, plan_text
from .report import max_lag, table
from .web import ENV_WEB_CONFIG, WebConfig, load_web_config

log = logging.getLogger("lag_exporter")

EXIT_OK = 0
EXIT_LAG_EXCEEDED = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
COMMANDS = ("run", "check", "plan", "validate-config")
# `plan` measures over a short run: it polls more often than the daemon.
PLAN_POLL_INTERVAL = "5s"
# `check` is run at a terminal and by scripts: an unreachable cluster should
# fail it in seconds, not after the daemon's 30 s poll timeout.
CHECK_TIMEOUT = "10s"


def _common(parser: argparse.ArgumentParser, poll_default: str = "15s") -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help=f"YAML configuration file (env {ENV_CONFIG})",
    )
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT[,...]",
        help="poll one cluster named 'default' at these brokers "
        "(env LAG_EXPORTER_BOOTSTRAP_SERVERS; default 127.0.0.1:9092 without a config file)",
    )
    parser.add_argument(
        "--poll-interval",
        metavar="DURATION",
        help="time between polls, e.g. 15s "
        f"(env LAG_EXPORTER_POLL_INTERVAL; default {poll_default})",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="env LAG_EXPORTER_LOG_LEVEL; default info",
    )
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="env LAG_EXPORTER_LOG_FORMAT; default text"
    )


def _parsers() -> dict[str, argparse.ArgumentParser]:
    run = argparse.ArgumentParser(
        prog="lag-exporter run",
        description="Poll Kafka consumer-group lag in the background and serve it to Prometheus.",
    )
    _common(run)
    run.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="HOST:PORT",
        help="address of the HTTP server (env LAG_EXPORTER_LISTEN_ADDRESS; default 0.0.0.0:9308)",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config",
        metavar="FILE",
        help="TLS and basic auth for the HTTP server, in the Prometheus exporters' "
        f"web config format (env {ENV_WEB_CONFIG}; default none: plain HTTP, no auth)",
    )
    check = argparse.ArgumentParser(
        prog="lag-exporter check",
        description="Poll once and print every group's offsets and lag, "
        "like kafka-consumer-groups --describe --all-groups.",
    )
    _common(check)
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.add_argument(
        "--max-lag",
        type=_non_negative_int,
        metavar="N",
        help="exit with code 1 when any partition's lag exceeds N",
    )
    check.add_argument(
        "--timeout",
        default=CHECK_TIMEOUT,
        metavar="DURATION",
        help=f"give up on a cluster after this long, exit 3 (default {CHECK_TIMEOUT})",
    )
    plan = argparse.ArgumentParser(
        prog="lag-exporter plan",
        description="Poll for a while, then report per topic and group whether the partitions "
        "and consumers suffice for the measured production rate, hot partitions, idle "
        "consumers, and retry and dead-letter topics.",
    )
    _common(plan, poll_default=PLAN_POLL_INTERVAL)
    plan.add_argument(
        "--duration",
        default="60s",
        metavar="DURATION",
        help="how long to measure, e.g. 60s or 10m (default 60s); Ctrl-C reports early",
    )
    plan.add_argument("--format", choices=("text", "json"), default="text")
    validate = argparse.ArgumentParser(
        prog="lag-exporter validate-config",
        description="Check a configuration file without starting anything.",
    )
    validate.add_argument("file")
    validate.add_argument(
        "--web.config.file", dest="web_config", metavar="FILE", help="also check this web config"
    )
    return {"run": run, "check": check, "plan": plan, "validate-config": validate}


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _top_usage() -> str:
    return (
        "usage: lag-exporter [run|check|plan|validate-config] [options]\n"
        "       lag-exporter --version\n\n"
        "Kafka consumer-group lag exporter for Prometheus.\n"
        "  run              the daemon (default command)\n"
        "  check            one poll, printed as a table or JSON\n"
        "  plan             measure for a while, then advise on partitions and consumers\n"
        "  validate-config  check a configuration file\n\n"
        "`lag-exporter COMMAND --help` shows the options of a command.\n"
    )


def _settings(args: argparse.Namespace) -> Settings:
    env = os.environ
    flags = Overrides(
        bootstrap_servers=args.bootstrap_servers,
        listen_address=getattr(args, "listen_address", None),
        poll_interval=args.poll_interval,
        log_level=args.log_level,
        log_format=args.log_format,
    )
    overrides = flags.over(Overrides.from_env(env))
    path = args.config or env.get(ENV_CONFIG) or None
    return load_settings(path, overrides)


def _web_config(args: argparse.Namespace) -> WebConfig:
    path = args.web_config or os.environ.get(ENV_WEB_CONFIG) or None
    return load_web_config(path) if path else WebConfig()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        print(f"lag-exporter {__version__}")
        return EXIT_OK
    if argv and argv[0] in ("-h", "--help", "help"):
        print(_top_usage(), end="")
        return EXIT_OK
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    parser = _parsers()[command]
    args = parser.parse_args(argv)  # exits with 2 on a bad flag, naming it
    try:
        if command == "validate-config":
            settings = load_settings(args.file)
            names = ", ".join(c.name for c in settings.clusters)
            rules = len(settings.alerting.rules) if settings.alerting else 0
            print(
                f"{args.file}: valid ({len(settings.clusters)} cluster(s): {names}; "
                f"{rules} alert rule(s))"
            )
            if args.web_config:
                load_web_config(args.web_config)
                print(f"{args.web_config}: valid")
            return EXIT_OK
        if command == "plan":
            interval_text = (
                args.poll_interval or os.environ.get(ENV_POLL_INTERVAL) or PLAN_POLL_INTERVAL
            )
            settings = _settings(args)
            interval = parse_duration(interval_text, "--poll-interval")
            duration = parse_duration(args.duration, "--duration")
        else:
            settings = _settings(args)
        if command == "check":
            timeout = parse_duration(args.timeout, "--timeout")
        web = _web_config(args) if command == "run" else WebConfig()
    except ConfigError as exc:
        print(f"lag-exporter: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logs.setup(settings.log_level, settings.log_format)
    if command == "check":
        return _check(settings, args.format, args.max_lag, timeout)
    if command == "plan":
        return _plan(settings, args.format, duration, interval)
    return _run(settings, web, args)


def _check(settings: Settings, fmt: str, limit: int | None, timeout: float) -> int:
    store = Store([c.name for c in settings.clusters])
    views: list[ClusterView] = []
    unreachable: list[str] = []
    for cluster in settings.clusters:
        cluster = replace(cluster, poll_timeout=timeout)
        probes = probe_cluster(cluster, timeout)
        if not any(p.ok for p in probes):
            # Said at once, in words: a full client would retry until the timeout.
            for p in probes:
                print(
                    f"lag-exporter: cluster {cluster.name}: {p.address}: {p.reason}",
                    file=sys.stderr,
                )
            unreachable.append(cluster.name)
            continue
        poller = ClusterPoller(cluster, store, settings.max_staleness)
        try:
            view = poller.poll_once()
        finally:
            poller.collector.close()
        if view.health.up:
            views.append(view)
        else:
            unreachable.append(cluster.name)
    if fmt == "json":
        print(json.dumps(groups_document(views), indent=2))
    else:
        print(table(views), end="")
    if unreachable:
        print(f"lag-exporter: cannot reach cluster(s): {', '.join(unreachable)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if limit is not None and (worst := max_lag(views)) > limit:
        print(f"lag-exporter: max lag {worst} exceeds {limit}", file=sys.stderr)
        return EXIT_LAG_EXCEEDED
    return EXIT_OK


def _plan(settings: Settings, fmt: str, duration: float, interval: float) -> int:
    """Poll every cluster every `interval` for `duration`, then print the advice."""
    store = Store([c.name for c in settings.clusters])
    pollers = [ClusterPoller(c, store, settings.max_staleness) for c in settings.clusters]
    views: dict[str, ClusterView] = {}
    polls = 0
    interrupted = False
    print(
        f"lag-exporter plan: measuring for {duration:g} s, polling every {interval:g} s "
        "(Ctrl-C reports early)",
        file=sys.stderr,
    )
    started = time.monotonic()
    try:
        while True:
            for poller in pollers:
                views[poller.cluster.name] = poller.poll_once()
            polls += 1
            elapsed = time.monotonic() - started
            if elapsed >= duration - 0.01:
                break
            # The last poll is at the end of the duration, the others on the interval.
            time.sleep(max(0.0, min(polls * interval, duration) - elapsed))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for poller in pollers:
            poller.collector.close()
    run = Run(polls, time.monotonic() - started, interval, interrupted)
    ordered = [views[c.name] for c in settings.clusters if c.name in views]
    if fmt == "json":
        print(json.dumps(plan_document(ordered, run), indent=2))
    else:
        print(plan_text(ordered, run), end="")
    down = [v.cluster for v in ordered if not v.health.up]
    if down or not ordered:
        print(f"lag-exporter: cannot reach cluster(s): {', '.join(down)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


def _run(settings: Settings, web: WebConfig, args: argparse.Namespace) -> int:
    from .server import HttpServer

    host, port = settings.listen_host_port
    try:
        daemon = Daemon(settings)
    except ConfigError as exc:  # e.g. an alert state file that cannot be written
        print(f"lag-exporter: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        server = HttpServer(host, port, lambda: daemon.store.published, web)
    except OSError as exc:
        log.error("cannot listen on %s: %s", settings.listen_address, exc.strerror)
        return EXIT_CONFIG
    stop = threading.Event()
    reload = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    def on_hangup(_signum: int, _frame: Any) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    server.start()
    daemon.start()
    log.info(
        "lag-exporter %s listening on %s:%d (%s%s), polling %s",
        __version__,
        host,
        server.port,
        "https" if server.tls else "http",
        ", basic auth" if web.users else "",
        ", ".join(f"{c.name} ({c.bootstrap_servers})" for c in settings.clusters),
    )
    while not stop.wait(0.5):
        if reload.is_set():
            reload.clear()
            _reload(args, daemon, server)
    server.stop()
    daemon.stop()
    log.info("stopped")
    return EXIT_OK


def _reload(args: argparse.Namespace, daemon: Daemon, server: Any) -> None:
    """SIGHUP: validate the configuration anew; apply it only if it is valid."""
    log.info("received SIGHUP, reloading the configuration")
    try:
        settings = _settings(args)
        web = _web_config(args)
    except ConfigError as exc:
        log.error("configuration reload failed, the running configuration stays: %s", exc)
        return
    running = daemon.settings
    if settings.listen_address != running.listen_address:
        log.warning(
            "listen_address changed from %s to %s: that takes a restart; still listening on %s",
            running.listen_address,
            settings.listen_address,
            running.listen_address,
        )
        settings = replace(settings, listen_address=running.listen_address)
    logs.setup(settings.log_level, settings.log_format)
    server.set_web_config(web)
    changes = daemon.reload(settings)
    log.info(
        "configuration reloaded: %s",
        "; ".join(changes) if changes else "no cluster changed",
    )
