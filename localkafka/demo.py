"""`make demo`: a local Kafka, a producer, a slower consumer group, and the exporter.

Lag grows visibly at http://127.0.0.1:9308/metrics until Ctrl-C: the producer
writes 20 messages/s with keys (some keys far more often than others, as real
traffic does), the consumer group `demo-slow` handles about 12 messages/s.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from localkafka import traffic
from localkafka.broker import BrokerError, KafkaBroker, ensure_jars

LISTEN_ENV = "LAG_EXPORTER_LISTEN_ADDRESS"
EXIT_CONFIG = 2


def port_in_use(host: str, port: int) -> bool:
    """Whether the exporter could not bind host:port (checked before Kafka starts)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As the HTTP server binds: a port in TIME_WAIT is free, one listened on is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _command(name: str) -> str:
    """How to run lag-exporter from here: the virtual environment's script if that is ours."""
    script = Path(sys.executable).parent / name
    if script.exists():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return name


def main() -> int:
    from lag_exporter import logs
    from lag_exporter.config import ConfigError, Overrides, parse_listen_address, parse_settings
    from lag_exporter.daemon import Daemon
    from lag_exporter.server import HttpServer

    logs.setup("info", "text")
    log = logging.getLogger("demo")
    listen = os.environ.get(LISTEN_ENV, "127.0.0.1:9308")
    try:
        listen_host, listen_port = parse_listen_address(listen, LISTEN_ENV)
    except ConfigError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if port_in_use(listen_host, listen_port):
        print(
            f"make demo: port {listen_port} on {listen_host} is already in use "
            f"(another exporter or demo?). Pick another address, e.g.\n"
            f"    {LISTEN_ENV}=127.0.0.1:{listen_port + 1} make demo",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        ensure_jars(report=log.info)
    except BrokerError as exc:
        log.error("cannot fetch Kafka's jars: %s", exc)
        return 1
    log.info("starting a local Kafka broker")
    with KafkaBroker() as broker:
        broker.start()
        workers = traffic.start(broker.bootstrap, stop)

        settings = parse_settings(
            {
                "poll_interval": "5s",
                "clusters": [{"name": "local", "kafka": {"bootstrap.servers": broker.bootstrap}}],
            },
            Overrides(listen_address=listen),
        )
        daemon = Daemon(settings)
        host, port = settings.listen_host_port
        server = HttpServer(host, port, lambda: daemon.store.published)
        server.start()
        daemon.start()
        log.info(
            "Kafka %s listens at %s; producing %d/s to %s, group %s consumes %d/s",
            broker.version,
            broker.bootstrap,
            traffic.PRODUCE_PER_SECOND,
            traffic.TOPIC,
            traffic.GROUP,
            traffic.CONSUME_PER_SECOND,
        )
        exporter = _command("lag-exporter")
        log.info(
            "try, in another terminal:\n"
            "    %s check --bootstrap-servers %s      # every group's lag, once\n"
            "    %s plan --bootstrap-servers %s       # are there partitions enough?",
            exporter,
            broker.bootstrap,
            exporter,
            broker.bootstrap,
        )
        log.info(
            "lag is growing: http://%s/  and  http://%s/metrics  (Ctrl-C to stop)", listen, listen
        )
        while not stop.wait(1.0):
            pass
        log.info("stopping")
        server.stop()
        daemon.stop()
        for w in workers:
            w.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
