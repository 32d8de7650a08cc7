"""Integration harness: one real Kafka broker per test session, real exporter processes.

The broker comes from Maven Central jars (see localkafka/); its version is
chosen by LAG_EXPORTER_KAFKA_VERSION. Every test uses its own topic and group
names, so tests share the broker without seeing each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from localkafka import KafkaBroker

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (AssertionError, KeyError, urllib.error.URLError, ConnectionError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or check}; last={last!r} "
        f"last_error={last_exc!r}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def broker() -> Iterator[KafkaBroker]:
    with KafkaBroker() as b:
        b.start()
        yield b


@pytest.fixture(scope="session")
def admin(broker: KafkaBroker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    yield client
    client.close()


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Names unique to this test: unique('orders') -> 'test_x-orders-1a2b3c'."""
    token = uuid.uuid4().hex[:6]
    test = request.node.name.split("[")[0].removeprefix("test_")[:30]

    def make(name: str) -> str:
        return f"{test}-{name}-{token}"

    return make


@dataclass
class Kafka:
    """Small helpers over real kafka-python clients for setting up scenarios."""

    bootstrap: str
    admin: KafkaAdminClient
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def create_topic(self, name: str, partitions: int = 3, **configs: str) -> str:
        self.admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or None)])
        wait_until(
            lambda: len(self.end_offsets(name, partitions)) == partitions,
            what=f"topic {name} ready",
        )
        return name

    def produce(
        self, topic: str, count: int, partition: int | None = None, key: bytes | None = None
    ) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        try:
            for i in range(count):
                producer.send(topic, value=b"m%d" % i, key=key, partition=partition)
            producer.flush(30)
        finally:
            producer.close()

    def end_offsets(self, topic: str, partitions: int) -> dict[int, int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, allow_auto_create_topics=False)
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()

    def commit(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        """Commit offsets for a group that has no live members (admin API)."""
        offsets_and_metadata = {
            TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()
        }

        def attempt() -> dict[Any, Any] | None:
            # A fresh broker creates its offsets topic on first use: retry meanwhile.
            # The coordinator may say so by raising, or in the per-partition answer.
            try:
                result: dict[Any, Any] = self.admin.alter_group_offsets(group, offsets_and_metadata)
            except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                return None
            retriable = (CoordinatorNotAvailableError, CoordinatorLoadInProgressError)
            if any(isinstance(err, type) and issubclass(err, retriable) for err in result.values()):
                return None
            return result

        result = wait_until(attempt, what=f"commit for {group}")
        assert all(err.__name__ == "NoError" for err in result.values()), result

    def consumer(self, group: str, *topics: str, **configs: Any) -> KafkaConsumer:
        """A live group member subscribed to `topics` (closed at the end of the test)."""
        consumer = KafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            **configs,
        )
        self._closers.append(consumer.close)
        # Know the topics' partitions before the first poll joins the group: a
        # member that joins without them is assigned nothing ("No partition
        # metadata") and may never rebalance.
        for topic in topics:
            wait_until(
                lambda t=topic: consumer.partitions_for_topic(t),  # type: ignore[misc]
                what=f"partitions of {topic} known to the consumer",
            )
        return consumer

    def consume(self, consumer: KafkaConsumer, count: int, timeout: float = 30.0) -> int:
        """Poll until `count` records arrived, then commit what was consumed."""
        got = 0
        deadline = time.monotonic() + timeout
        while got < count and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=500, max_records=count - got)
            got += sum(len(batch) for batch in records.values())
        consumer.commit()
        return got

    def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()


@pytest.fixture
def kafka(broker: KafkaBroker, admin: KafkaAdminClient) -> Iterator[Kafka]:
    k = Kafka(broker.bootstrap, admin)
    yield k
    k.close()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def select(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    want = set(labels.items())
    return {ls: v for (n, ls), v in samples.items() if n == name and want <= ls}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    hits = select(samples, name, **labels)
    assert len(hits) <= 1, f"{name}{labels} matches {len(hits)} series"
    return next(iter(hits.values())) if hits else None


@dataclass
class Exporter:
    """A real `lag-exporter` process on a free port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> Samples:
        status, body = self.get("/metrics")
        assert status == 200
        return parse_metrics(body.decode())

    def groups(self) -> dict[str, Any]:
        status, body = self.get("/api/v1/groups")
        assert status == 200
        doc: dict[str, Any] = json.loads(body)
        return doc

    def group(self, group: str, cluster: str = "test") -> dict[str, Any] | None:
        for c in self.groups()["clusters"]:
            if c["cluster"] == cluster:
                for g in c["groups"]:
                    if g["group"] == group:
                        return g  # type: ignore[no-any-return]
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def polls(self) -> float:
        return sum(select(self.metrics(), "lag_exporter_polls_total").values())

    def wait_polls(self, n: int = 2, timeout: float = 30.0) -> None:
        """Wait until `n` more polls completed, so the exposition reflects the present."""
        start = self.polls()
        wait_until(lambda: self.polls() >= start + n, timeout, what=f"{n} more polls")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("exporter did not stop in time") from None
        return self.process.returncode


def exporter_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lag_exporter", *args]


@pytest.fixture
def start_exporter(broker: KafkaBroker, tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    started: list[Exporter] = []

    def start(
        config: dict[str, Any] | None = None,
        wait_ready: bool = True,
        bootstrap: str | None = None,
        args: tuple[str, ...] = (),
        **cluster: Any,
    ) -> Exporter:
        port = free_port()
        doc: dict[str, Any] = config or {
            "poll_interval": "1s",
            "clusters": [
                {
                    "name": "test",
                    "kafka": {"bootstrap.servers": bootstrap or broker.bootstrap},
                    **cluster,
                }
            ],
        }
        doc.setdefault("listen_address", f"127.0.0.1:{port}")
        config_path = Path(tempfile.mkstemp(suffix=".yml", dir=tmp_path)[1])
        config_path.write_text(yaml.safe_dump(doc))
        log_path = config_path.with_suffix(".log")
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                exporter_command(
                    "run", "--config", str(config_path), "--log-level", "debug", *args
                ),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        exporter = Exporter(
            process, int(doc["listen_address"].rsplit(":", 1)[1]), log_path, config_path
        )
        started.append(exporter)
        if wait_ready:
            wait_until(
                lambda: exporter.get("/readyz")[0] == 200,
                timeout=60,
                what="exporter ready",
            )
        return exporter

    yield start
    for exporter in started:
        if exporter.process.poll() is None:
            exporter.process.kill()
            exporter.process.wait()
