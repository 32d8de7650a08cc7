"""`make demo`: a local Kafka, a producer, a slower consumer group, and the exporter.

Lag grows visibly at http://127.0.0.1:9308/metrics until Ctrl-C: the producer
writes 20 messages/s with keys (some keys far more often than others, as real
traffic does), the consumer group `demo-slow` handles about 12 messages/s.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from types import FrameType

from localkafka.broker import KafkaBroker

TOPIC = "demo-orders"
GROUP = "demo-slow"
PRODUCE_PER_SECOND = 20
CONSUME_PER_SECOND = 12


def _producer(bootstrap: str, stop: threading.Event) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    customers = [f"customer-{i}" for i in range(20)]
    weights = [10 if i == 0 else 1 for i in range(20)]  # one hot key
    n = 0
    while not stop.wait(1 / PRODUCE_PER_SECOND):
        key = random.choices(customers, weights)[0]
        producer.send(TOPIC, key=key.encode(), value=f"order {n}".encode())
        n += 1
    producer.close(5)


def _consumer(bootstrap: str, stop: threading.Event) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        client_id="demo-slow-consumer",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=1000,
        max_poll_records=CONSUME_PER_SECOND,
    )
    while not stop.is_set():
        started = time.monotonic()
        consumer.poll(timeout_ms=500, max_records=CONSUME_PER_SECOND)
        # Pretend each batch takes a second of work: the consumer is the bottleneck.
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))
    consumer.close()


def main() -> int:
    from kafka.admin import KafkaAdminClient, NewTopic

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
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic(TOPIC, 3, 1)])
        admin.close()
        workers = [
            threading.Thread(target=fn, args=(broker.bootstrap, stop), daemon=True)
            for fn in (_producer, _consumer)
        ]
        for w in workers:
            w.start()

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
            PRODUCE_PER_SECOND,
            TOPIC,
            GROUP,
            CONSUME_PER_SECOND,
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
