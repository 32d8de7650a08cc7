"""Demo traffic: a keyed producer and a slower consumer group, so lag is visible.

Used by `make demo` and by the docker-compose stack, where it runs on its own:
    python traffic.py --bootstrap-servers kafka:9092
Needs kafka-python only.
"""

from __future__ import annotations

import argparse
import random
import signal
import threading
import time
from types import FrameType

TOPIC = "demo-orders"
GROUP = "demo-slow"
PRODUCE_PER_SECOND = 20
CONSUME_PER_SECOND = 12


def create_topic(bootstrap: str, partitions: int = 3) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def produce(bootstrap: str, stop: threading.Event) -> None:
    """PRODUCE_PER_SECOND messages/s with keys; one customer far more active than
    the others, so one partition is hotter, as with real keyed traffic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    customers = [f"customer-{i}" for i in range(20)]
    weights = [10 if i == 0 else 1 for i in range(20)]
    n = 0
    while not stop.wait(1 / PRODUCE_PER_SECOND):
        key = random.choices(customers, weights)[0]
        producer.send(TOPIC, key=key.encode(), value=f"order {n}".encode())
        n += 1
    producer.close(5)


def consume(bootstrap: str, stop: threading.Event) -> None:
    """The group GROUP, handling about CONSUME_PER_SECOND messages/s."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        client_id="demo-slow-consumer",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=1000,
    )
    while not stop.is_set():
        started = time.monotonic()
        consumer.poll(timeout_ms=500, max_records=CONSUME_PER_SECOND)
        # Each batch "takes" a second of work: the consumer is the bottleneck.
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))
    consumer.close()


def start(bootstrap: str, stop: threading.Event) -> list[threading.Thread]:
    create_topic(bootstrap)
    threads = [
        threading.Thread(target=fn, args=(bootstrap, stop), daemon=True)
        for fn in (produce, consume)
    ]
    for t in threads:
        t.start()
    return threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    args = parser.parse_args()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        try:
            threads = start(args.bootstrap_servers, stop)
            break
        except Exception as exc:  # the broker may still be starting
            print(f"waiting for Kafka at {args.bootstrap_servers}: {exc}", flush=True)
            stop.wait(3)
    else:
        return 0
    print(
        f"producing {PRODUCE_PER_SECOND}/s to {TOPIC}; group {GROUP} consumes "
        f"{CONSUME_PER_SECOND}/s",
        flush=True,
    )
    stop.wait()
    for t in threads:
        t.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
