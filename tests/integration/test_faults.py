"""Kafka in trouble: the exporter keeps serving, says what is wrong, and recovers by itself.

The broker of this module is its own, since the tests kill, freeze and cut
it off. One of its listeners is advertised through a TCP proxy (proxy.py),
so the network between exporter and broker can be cut and restored in
milliseconds: that is how twenty down/up cycles fit in a test. Killing and
restarting the real JVM is tested too, once per test, and twenty times by
`python -m benchmarks.faults` (figures in benchmarks/RELIABILITY.md).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient

from benchmarks.harness import percentile, vitals
from localkafka import KafkaBroker

from .conftest import Exporter, Kafka, select, value, wait_until
from .proxy import Proxy


@pytest.fixture(scope="module")
def own_broker() -> Iterator[KafkaBroker]:
    """A broker of this module's own, with a listener reached through a proxy."""
    with KafkaBroker(
        extra_properties={
            "listeners": "PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port},"
            "PROXIED://{host}:{proxied}",
            "advertised.listeners": "PLAINTEXT://{host}:{port},PROXIED://{host}:{proxy}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "PROXIED:PLAINTEXT",
        },
        extra_ports=["proxied", "proxy"],
    ) as b:
        b.start()
        yield b


@pytest.fixture
def proxy(own_broker: KafkaBroker) -> Iterator[Proxy]:
    p = Proxy(own_broker.ports["proxy"], (own_broker.host, own_broker.ports["proxied"]))
    p.start()
    yield p
    p.close()


@pytest.fixture
def own_kafka(own_broker: KafkaBroker) -> Iterator[Kafka]:
    admin = KafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
    kafka = Kafka(own_broker.bootstrap, admin)
    yield kafka
    kafka.close()
    admin.close()


def _config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    return {
        "poll_interval": "500ms",
        "poll_timeout": "2s",
        "max_staleness": "4s",
        **overrides,
        "clusters": [{"name": "test", "kafka": {"bootstrap.servers": bootstrap}}],
    }


def _lagging_group(kafka: Kafka, unique: Callable[[str], str]) -> tuple[str, str]:
    topic = kafka.create_topic(unique("t"), partitions=2)
    group = unique("g")
    kafka.produce(topic, 10, partition=0)
    kafka.commit(group, {(topic, 0): 4, (topic, 1): 0})
    return topic, group


def _lag(exporter: Exporter, group: str) -> float | None:
    return value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=group, partition="0")


def _up(exporter: Exporter) -> float | None:
    return value(exporter.metrics(), "lag_exporter_cluster_up", cluster="test")


def _errors(exporter: Exporter) -> dict[str, float]:
    hits = select(exporter.metrics(), "lag_exporter_poll_errors_total", cluster="test")
    return {dict(labels)["kind"]: v for labels, v in hits.items()}


def _own_errors(log: str) -> list[str]:
    """ERROR lines of the exporter's own loggers (kafka-python's debug chatter aside)."""
    return [line for line in log.splitlines() if " ERROR lag_exporter" in line]


def _scrape_times(exporter: Exporter, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.monotonic()
        status, _ = exporter.get("/metrics")
        times.append(time.monotonic() - started)
        assert status == 200
    return times


def test_broker_killed_mid_poll_and_restarted(
    own_broker: KafkaBroker,
    own_kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    _, group = _lagging_group(own_kafka, unique)
    exporter = start_exporter(config=_config(own_broker.bootstrap))
    wait_until(lambda: _lag(exporter, group) == 6, what="lag before the fault")

    # Freeze the broker first, so that the exporter is surely waiting for an
    # answer (mid-poll) when the process dies.
    assert own_broker.pid is not None
    os.kill(own_broker.pid, signal.SIGSTOP)
    time.sleep(1.0)  # several poll intervals: a poll is now waiting on the frozen broker
    own_broker.kill()
    wait_until(lambda: _up(exporter) == 0, timeout=20, what="cluster marked down")
    s = exporter.metrics()
    if value(s, "kafka_consumergroup_lag", consumergroup=group, partition="0") is not None:
        assert value(s, "kafka_consumergroup_stale", consumergroup=group) == 1
    assert max(_scrape_times(exporter, 30)) < 1.0  # served from memory while Kafka is gone
    assert exporter.get("/healthz")[0] == 200
    wait_until(lambda: _lag(exporter, group) is None, timeout=20, what="stale lag dropped")

    own_broker.start()
    wait_until(lambda: _up(exporter) == 1, timeout=60, what="cluster back up")
    wait_until(lambda: _lag(exporter, group) == 6, timeout=30, what="lag after recovery")
    s = exporter.metrics()
    assert value(s, "kafka_consumergroup_stale", consumergroup=group) == 0
    assert value(s, "lag_exporter_polls_total", cluster="test", result="failure") >= 1
    assert exporter.process.poll() is None
    log = exporter.log()
    assert "cluster test: down" in log and "cluster test: up" in log
    assert not _own_errors(log), _own_errors(log)


def test_twenty_down_up_cycles_leak_nothing(
    own_broker: KafkaBroker,
    own_kafka: Kafka,
    proxy: Proxy,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    _, group = _lagging_group(own_kafka, unique)
    exporter = start_exporter(config=_config(f"127.0.0.1:{proxy.port}"))
    wait_until(lambda: _lag(exporter, group) == 6, what="lag through the proxy")

    def cycle() -> None:
        proxy.cut()
        wait_until(lambda: _up(exporter) == 0, timeout=20, what="cluster marked down")
        proxy.restore()
        wait_until(lambda: _up(exporter) == 1, timeout=30, what="cluster back up")
        wait_until(lambda: _lag(exporter, group) == 6, timeout=20, what="lag back")

    # Two cycles first: connection pools, caches and the allocator settle.
    for _ in range(2):
        cycle()
    exporter.wait_polls(2)
    before = vitals(exporter.process.pid)
    for _ in range(18):
        cycle()
    exporter.wait_polls(2)
    after = vitals(exporter.process.pid)

    failures = value(
        exporter.metrics(), "lag_exporter_polls_total", cluster="test", result="failure"
    )
    assert failures is not None and failures >= 20
    # A leaked Kafka client costs an I/O thread and a socket per cycle: 18
    # cycles would show +18 threads and +18 sockets. The sockets of failed
    # connections are freed when their client is thrown away (connection.py
    # collects them); one handler thread and socket of a scrape in progress
    # may be counted on either side.
    assert after.threads <= before.threads + 1, (before, after)
    assert after.fds <= before.fds + 2, (before, after)
    assert after.sockets <= before.sockets + 2, (before, after)
    # Memory: 16 MiB over 18 cycles would be ~0.9 MiB per cycle, far more than
    # a few hundred KiB of allocator noise, far less than a leaked client and
    # its buffers per cycle.
    assert after.rss_kib - before.rss_kib < 16 * 1024, (before, after)
    assert exporter.process.poll() is None
    assert not _own_errors(exporter.log())


def test_frozen_broker_bounds_the_poll_and_not_the_scrapes(
    own_broker: KafkaBroker,
    own_kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    _, group = _lagging_group(own_kafka, unique)
    exporter = start_exporter(config=_config(own_broker.bootstrap, poll_timeout="1500ms"))
    wait_until(lambda: _lag(exporter, group) == 6, what="lag before the freeze")
    timeouts_before = _errors(exporter).get("timeout", 0)
    pid = own_broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _up(exporter) == 0, timeout=20, what="frozen cluster marked down")
        # Polls go on, each within poll_timeout (plus scheduling slack on a busy machine).
        durations = []
        deadline = time.monotonic() + 8
        seen: set[float] = set()
        while time.monotonic() < deadline:
            s = exporter.metrics()
            started = value(s, "lag_exporter_last_poll_timestamp_seconds", cluster="test")
            duration = value(s, "lag_exporter_poll_duration_seconds", cluster="test")
            if started is not None and started not in seen and duration is not None:
                seen.add(started)
                durations.append(duration)
            time.sleep(0.2)
        assert len(durations) >= 2, durations
        assert max(durations) <= 1.5 + 1.5, durations
        assert _errors(exporter).get("timeout", 0) > timeouts_before
        # Scrapes never wait for Kafka.
        times = _scrape_times(exporter, 200)
        assert percentile(times, 99) < 0.5, sorted(times)[-5:]
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: _up(exporter) == 1, timeout=60, what="cluster back after the freeze")
    wait_until(lambda: _lag(exporter, group) == 6, timeout=30, what="lag after the freeze")
    assert not _own_errors(exporter.log())


def test_groups_deleted_while_polled(
    own_broker: KafkaBroker,
    own_kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    topic, steady = _lagging_group(own_kafka, unique)
    exporter = start_exporter(config=_config(own_broker.bootstrap, poll_interval="100ms"))
    wait_until(lambda: _lag(exporter, steady) == 6, what="steady group's lag")
    polls_before = exporter.polls()

    # For five seconds (some fifty polls), groups come and are deleted again.
    doomed: list[str] = []
    samples = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        batch = [unique(f"doomed{len(doomed) + i}") for i in range(2)]
        doomed += batch
        for g in batch:
            own_kafka.commit(g, {(topic, 0): 1})
        own_kafka.admin.delete_groups(batch)
        s = exporter.metrics()
        # The group that stays is read every poll, whatever happens to the others.
        assert value(s, "kafka_consumergroup_lag", consumergroup=steady, partition="0") == 6
        assert value(s, "kafka_consumergroup_stale", consumergroup=steady) == 0
        samples += 1
    assert exporter.polls() > polls_before + 10  # polls ran all along

    def none_left() -> bool:
        names = {dict(ls).get("consumergroup") for (_, ls) in exporter.metrics()}
        return not names & set(doomed)

    wait_until(none_left, timeout=20, what="deleted groups gone from the metrics")
    assert samples >= 5
    assert exporter.process.poll() is None
    log = exporter.log()
    assert not _own_errors(log), _own_errors(log)


def test_topic_deleted_and_recreated_with_the_same_name(
    own_broker: KafkaBroker,
    own_kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    topic, group = _lagging_group(own_kafka, unique)
    exporter = start_exporter(config=_config(own_broker.bootstrap))
    wait_until(lambda: _lag(exporter, group) == 6, what="lag on the first topic")

    own_kafka.admin.delete_topics([topic])

    def topic_gone() -> bool:
        s = exporter.metrics()
        return not select(s, "kafka_topic_partitions", topic=topic) and not select(
            s, "kafka_consumergroup_lag", topic=topic
        )

    wait_until(topic_gone, timeout=30, what="deleted topic's series gone")

    # Same name, fewer messages, offsets committed anew: nothing of the old
    # topic (log-end 10, committed 4) may show through.
    def recreate() -> bool:
        try:
            own_kafka.create_topic(topic, partitions=2)
        except Exception:  # the deletion may still be going on
            return False
        return True

    wait_until(recreate, timeout=30, what="topic re-created")
    own_kafka.produce(topic, 3, partition=0)
    own_kafka.commit(group, {(topic, 0): 1, (topic, 1): 0})

    def new_values() -> bool:
        s = exporter.metrics()
        return (
            value(s, "kafka_consumergroup_lag", consumergroup=group, partition="0") == 2
            and value(s, "kafka_topic_partition_current_offset", topic=topic, partition="0") == 3
        )

    wait_until(new_values, timeout=30, what="the new topic's offsets and lag")
    s = exporter.metrics()
    assert value(s, "kafka_consumergroup_stale", consumergroup=group) == 0
    assert value(s, "kafka_consumergroup_current_offset", consumergroup=group, partition="0") == 1
    assert value(s, "kafka_topic_partitions", topic=topic) == 2
    assert exporter.process.poll() is None
    assert not _own_errors(exporter.log())


def test_an_outage_longer_than_max_staleness_keeps_status_and_lag_seconds(
    own_broker: KafkaBroker,
    own_kafka: Kafka,
    proxy: Proxy,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    # A group stopped with lag is STOP. Kafka is then out of reach for longer
    # than max_staleness: the group's series go, its history stays, and the
    # first poll after the outage says STOP again, with lag seconds that kept
    # counting (not a fresh clock saying OK and a lag of a few hundredths).
    _, group = _lagging_group(own_kafka, unique)
    config = _config(f"127.0.0.1:{proxy.port}")
    config["clusters"][0]["status"] = {"stop_after": "2s", "stop_after_max": "4s", "window": "20s"}
    exporter = start_exporter(config=config)

    def row() -> dict[str, Any] | None:
        g = exporter.group(group)
        return g["partitions"][0] if g and g["partitions"] else None

    wait_until(lambda: (row() or {}).get("status") == "STOP", timeout=30, what="STOP")
    before = row()
    assert before is not None and before["lag_seconds"] is not None
    proxy.cut()
    cut_at = time.monotonic()
    wait_until(lambda: _up(exporter) == 0, timeout=20, what="cluster marked down")
    wait_until(lambda: _lag(exporter, group) is None, timeout=30, what="series dropped")
    time.sleep(2)
    proxy.restore()
    wait_until(lambda: _lag(exporter, group) == 6, timeout=30, what="lag back")
    after = row()
    assert after is not None and after["status"] == "STOP", after
    # The outage is part of the age of the oldest message.
    assert after["lag_seconds"] >= before["lag_seconds"] + (time.monotonic() - cut_at) - 2, (
        before,
        after,
    )
