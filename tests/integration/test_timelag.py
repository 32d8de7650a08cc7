"""Lag in seconds, status and history persistence against a real broker with live traffic."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from .conftest import Exporter, Kafka, value, wait_until

POLL = 1.0  # the exporter's poll interval in these tests, seconds
StartExporter = Callable[..., Exporter]


class SteadyProducer:
    """Produces `rate` messages per second to one partition until stopped."""

    def __init__(self, bootstrap: str, topic: str, rate: float = 20.0) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        self.topic, self.interval = topic, 1.0 / rate
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop_event.wait(self.interval):
            self.producer.send(self.topic, value=b"m%d" % n, partition=0)
            n += 1
        self.producer.flush(10)

    def __enter__(self) -> SteadyProducer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(10)
        self.producer.close(5)


class PausableConsumer:
    """Consumes and commits continuously, except while paused."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.running = threading.Event()
        self.running.set()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if not self.running.wait(0.1):
                continue
            records = self.consumer.poll(timeout_ms=100)
            if records:
                self.consumer.commit()

    def __enter__(self) -> PausableConsumer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(10)


@pytest.fixture
def producer_factory(kafka: Kafka) -> Iterator[Callable[[str], SteadyProducer]]:
    made: list[SteadyProducer] = []

    def make(topic: str) -> SteadyProducer:
        p = SteadyProducer(kafka.bootstrap, topic)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop_event.set()


def lag_seconds(exporter: Exporter, group: str) -> tuple[float | None, float | None]:
    """(lag seconds of the group's partition 0, time of the poll that computed it)."""
    s = exporter.metrics()
    return (
        value(s, "kafka_consumergroup_lag_seconds", consumergroup=group, partition="0"),
        value(s, "lag_exporter_last_poll_timestamp_seconds", cluster="test"),
    )


def caught_up(seconds: float | None) -> bool:
    """Lag seconds of about 0; exactly 0.0 counts (a lag within allowed_lag reports 0)."""
    return seconds is not None and seconds <= POLL


def test_paused_consumer_lag_seconds_tracks_the_pause_then_returns_to_zero(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    producer_factory: Callable[[str], SteadyProducer],
) -> None:
    topic = kafka.create_topic(unique("steady"), partitions=1)
    group = unique("pausing")
    exporter = start_exporter(config=None)
    with producer_factory(topic), PausableConsumer(kafka.consumer(group, topic)) as consumer:
        wait_until(
            lambda: caught_up(lag_seconds(exporter, group)[0]),
            timeout=60,
            what="caught-up consumer at about 0 s",
        )
        consumer.running.clear()
        paused_at = time.time()
        time.sleep(0.3)  # let an in-flight poll() and commit finish
        pause = 8.0
        wait_until(lambda: time.time() - paused_at >= pause, timeout=pause + 1)
        exporter.wait_polls(2)
        reported, polled_at = lag_seconds(exporter, group)
        assert reported is not None and polled_at is not None
        truth = polled_at - paused_at
        print(f"paused consumer: lag seconds reported {reported:.2f}, truth {truth:.2f}")
        assert abs(reported - truth) <= POLL + 0.5, (reported, truth)
        assert truth >= pause - POLL

        consumer.running.set()
        wait_until(
            lambda: caught_up(lag_seconds(exporter, group)[0]),
            timeout=30,
            what="lag seconds back to about 0 after catching up",
        )
        s = exporter.metrics()
        assert (
            value(s, "kafka_consumergroup_lag_seconds_is_lower_bound", consumergroup=group) is None
        )


def test_exact_mode_agrees_with_the_estimate_on_steady_traffic(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    producer_factory: Callable[[str], SteadyProducer],
    broker: object,
) -> None:
    topic = kafka.create_topic(unique("steady"), partitions=1)
    exact_group, estimated_group = unique("exact"), unique("estimated")
    exporter = start_exporter(lag_seconds={"exact": [".*-exact-.*"]})
    with producer_factory(topic):
        exporter.wait_polls(4)  # history of log-end offsets while traffic flows
        end = kafka.end_offsets(topic, 1)[0]
        behind = max(1, end - 40)  # about two seconds of traffic behind
        for g in (exact_group, estimated_group):
            kafka.commit(g, {(topic, 0): behind})
        exporter.wait_polls(3)

        def both() -> tuple[dict, dict] | None:  # type: ignore[type-arg]
            a, b = exporter.group(exact_group), exporter.group(estimated_group)
            if a and b and a["partitions"][0]["lag_seconds"] and b["partitions"][0]["lag_seconds"]:
                return a["partitions"][0], b["partitions"][0]
            return None

        exact, estimate = wait_until(both, what="lag seconds for both groups")
    assert exact["lag_seconds_exact"] is True
    assert estimate["lag_seconds_exact"] is False and not estimate["lag_seconds_lower_bound"]
    assert exact["committed_offset"] == estimate["committed_offset"]
    print(f"exact {exact['lag_seconds']:.2f} s, estimate {estimate['lag_seconds']:.2f} s")
    assert abs(exact["lag_seconds"] - estimate["lag_seconds"]) <= POLL + 0.5, (exact, estimate)


def test_group_that_stops_committing_becomes_stop(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    producer_factory: Callable[[str], SteadyProducer],
) -> None:
    topic = kafka.create_topic(unique("steady"), partitions=1)
    group = unique("quits")
    exporter = start_exporter(status={"stop_after": "3s", "stop_after_max": "6s", "window": "20s"})
    with producer_factory(topic):
        consumer = kafka.consumer(group, topic)
        with PausableConsumer(consumer):
            wait_until(
                lambda: (
                    value(
                        exporter.metrics(),
                        "kafka_consumergroup_status",
                        consumergroup=group,
                        status="OK",
                    )
                    == 1
                ),
                timeout=60,
                what="status OK while consuming",
            )
        consumer.close()  # the consumer is gone; the producer goes on
        stopped_at = time.monotonic()
        wait_until(
            lambda: (
                value(
                    exporter.metrics(),
                    "kafka_consumergroup_status",
                    consumergroup=group,
                    status="STOP",
                )
                == 4
            ),
            timeout=30,
            what="status STOP",
        )
        # Bounded: stop_after_max plus one poll (and the group's own rebalance).
        assert time.monotonic() - stopped_at <= 6 + POLL + 10
        s = exporter.metrics()
        assert value(s, "kafka_consumergroup_group_status", consumergroup=group, status="ERR") == 3


def test_history_survives_a_restart(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    producer_factory: Callable[[str], SteadyProducer],
    tmp_path: Path,
    broker: object,
) -> None:
    topic = kafka.create_topic(unique("steady"), partitions=1)
    group = unique("behind")
    state_dir = tmp_path / "state"
    bootstrap = kafka.bootstrap

    def config() -> dict:  # type: ignore[type-arg]
        return {
            "poll_interval": "1s",
            "state_dir": str(state_dir),
            "state_interval": "1s",
            "clusters": [{"name": "test", "kafka": {"bootstrap.servers": bootstrap}}],
        }

    with producer_factory(topic):
        first = start_exporter(config=config())
        first.wait_polls(3)
        kafka.commit(group, {(topic, 0): kafka.end_offsets(topic, 1)[0]})
        first.wait_polls(4)
        before = wait_until(lambda: lag_seconds(first, group)[0], what="lag seconds")
        assert first.stop() == 0
        assert (state_dir / "history-test.json").exists()

        second = start_exporter(config=config())
        # The committed offset is older than anything the new process saw itself:
        # only the saved history can place it in time.
        after = wait_until(lambda: lag_seconds(second, group)[0], what="lag seconds after restart")
        s = second.metrics()
        assert (
            value(s, "kafka_consumergroup_lag_seconds_is_lower_bound", consumergroup=group) is None
        )
        assert after >= before
        assert "restored lag history" in second.log()


def test_status_and_stop_clock_survive_a_restart(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    producer_factory: Callable[[str], SteadyProducer],
    tmp_path: Path,
) -> None:
    # A group that stopped with lag is STOP; restarted on the same state_dir,
    # the exporter says STOP from its first poll, not OK until the clock runs again.
    topic = kafka.create_topic(unique("steady"), partitions=1)
    group = unique("stopped")
    state_dir = tmp_path / "state"

    def config() -> dict:  # type: ignore[type-arg]
        return {
            "poll_interval": "1s",
            "state_dir": str(state_dir),
            "state_interval": "1s",
            "clusters": [
                {
                    "name": "test",
                    "kafka": {"bootstrap.servers": kafka.bootstrap},
                    "status": {"stop_after": "5s", "stop_after_max": "10s", "window": "30s"},
                }
            ],
        }

    def status(exporter: Exporter) -> str | None:
        g = exporter.group(group)
        return g["partitions"][0]["status"] if g and g["partitions"] else None

    with producer_factory(topic):
        first = start_exporter(config=config())
        first.wait_polls(2)
        kafka.commit(group, {(topic, 0): kafka.end_offsets(topic, 1)[0]})
        wait_until(lambda: status(first) == "STOP", timeout=60, what="STOP before the restart")
        assert first.stop() == 0

        second = start_exporter(config=config())
        seen: list[str | None] = []
        deadline = time.monotonic() + 8  # less than stop_after: a fresh clock would say OK
        while time.monotonic() < deadline:
            seen.append(status(second))
            time.sleep(0.2)
    assert [s for s in seen if s is not None], "no status after the restart"
    assert set(seen) - {None} == {"STOP"}, seen
