"""`make demo`: a local Kafka, a producer, a slower consumer group, and the exporter.

Lag grows visibly at http://127.0.0.1:9308/metrics until Ctrl-C: the producer
writes 20 messages/s with keys (some keys far more often than others, as real
traffic does), the consumer group `demo-slow` handles about 12 messages/s.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from localkafka import traffic
from localkafka.broker import KafkaBroker


def main() -> int:
    from lag_exporter import logs
    from lag_exporter.config import Overrides, parse_settings
    from lag_exporter.daemon import Daemon
    from lag_exporter.server import HttpServer

    logs.setup("info", "text")
    log = logging.getLogger("demo")
    listen = os.environ.get("LAG_EXPORTER_LISTEN_ADDRESS", "127.0.0.1:9308")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    log.info("starting a local Kafka broker (first run downloads its jars from Maven Central)")
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
            "Kafka %s at %s; producing %d/s to %s, group %s consumes %d/s",
            broker.version,
            broker.bootstrap,
            traffic.PRODUCE_PER_SECOND,
            traffic.TOPIC,
            traffic.GROUP,
            traffic.CONSUME_PER_SECOND,
        )
        log.info("lag is growing: http://%s/metrics  (Ctrl-C to stop)", listen)
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
