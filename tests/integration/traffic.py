"""Traffic at known rates for integration tests: paced producers and throttled consumers.

Both keep an absolute schedule (message n is due at start + n / rate) rather
than sleeping a fixed time after each message, so a stall of a busy test
machine delays messages but does not lower the long-run rate: afterwards
they catch up. The rates the exporter measures can then be compared with
the rates set here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from kafka import KafkaConsumer, KafkaProducer

# (message number) -> (partition or None, key or None)
Route = Callable[[int], tuple[int | None, bytes | None]]


def round_robin(partitions: int) -> Route:
    return lambda n: (n % partitions, None)


class PacedProducer:
    """Produces `rate` messages per second, routed by `route`, until stopped."""

    def __init__(self, bootstrap: str, topic: str, rate: float, route: Route) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.topic, self.rate, self.route = topic, rate, route
        self.sent = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self.stop_event.is_set():
            delay = start + self.sent / self.rate - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            partition, key = self.route(self.sent)
            self.producer.send(self.topic, value=b"m%d" % self.sent, key=key, partition=partition)
            self.sent += 1
        self.producer.flush(10)

    def __enter__(self) -> PacedProducer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(15)
        self.producer.close(5)


class ThrottledConsumer:
    """Processes at most `rate` records per second and commits after every batch.

    A stand-in for a consumer whose processing is the bottleneck: it never
    waits for data while there is a backlog, it only works at its own pace.
    """

    def __init__(self, consumer: KafkaConsumer, rate: float) -> None:
        self.consumer, self.rate = consumer, rate
        self.processed = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start: float | None = None
        while not self.stop_event.is_set():
            batches = self.consumer.poll(timeout_ms=200, max_records=5)
            for records in batches.values():
                for _ in records:
                    start = start or time.monotonic()
                    delay = start + self.processed / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self.processed += 1
            if batches:
                self.consumer.commit()

    def __enter__(self) -> ThrottledConsumer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_event.set()
        self.thread.join(15)


class Polling:
    """Keeps a group member alive: polls it (and so takes part in rebalances) until stopped."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if self.consumer.poll(timeout_ms=100):
                self.consumer.commit()

    def __enter__(self) -> Polling:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_event.set()
        self.thread.join(15)
