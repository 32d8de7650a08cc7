"""A broker that goes away: the exporter keeps serving, says so, and recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kafka.admin import KafkaAdminClient

from localkafka import KafkaBroker

from .conftest import Exporter, Kafka, value, wait_until


@pytest.fixture(scope="module")
def own_broker() -> Iterator[KafkaBroker]:
    """A broker of this module's own, since the tests stop it."""
    with KafkaBroker() as b:
        b.start()
        yield b


def test_broker_down_then_back(
    own_broker: KafkaBroker, unique: Callable[[str], str], start_exporter: Callable[..., Exporter]
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
    kafka = Kafka(own_broker.bootstrap, admin)
    try:
        topic = kafka.create_topic(unique("t"), partitions=1)
        group = unique("g")
        kafka.produce(topic, 10)
        kafka.commit(group, {(topic, 0): 4})
    finally:
        admin.close()
    exporter = start_exporter(
        config={
            "poll_interval": "1s",
            "poll_timeout": "2s",
            "max_staleness": "6s",
            "clusters": [{"name": "test", "kafka": {"bootstrap.servers": own_broker.bootstrap}}],
        }
    )
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=group) == 6,
        what="lag before the outage",
    )

    own_broker.kill()
    wait_until(
        lambda: value(exporter.metrics(), "lag_exporter_cluster_up", cluster="test") == 0,
        what="cluster marked down",
    )
    s = exporter.metrics()
    # Within max_staleness the last values stay, flagged stale; never presented as fresh.
    if value(s, "kafka_consumergroup_lag", consumergroup=group) is not None:
        assert value(s, "kafka_consumergroup_stale", consumergroup=group) == 1
    # Scrapes stay fast while Kafka is down.
    started = time.monotonic()
    for _ in range(20):
        assert exporter.get("/metrics")[0] == 200
    assert (time.monotonic() - started) / 20 < 0.1
    assert exporter.get("/healthz")[0] == 200
    # After max_staleness the old values are dropped rather than shown as current.
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=group) is None,
        timeout=30,
        what="stale lag dropped",
    )
    assert (
        value(
            exporter.metrics(),
            "lag_exporter_last_successful_poll_timestamp_seconds",
            cluster="test",
        )
        is not None
    )

    own_broker.restart()
    wait_until(
        lambda: value(exporter.metrics(), "lag_exporter_cluster_up", cluster="test") == 1,
        timeout=90,
        what="cluster back up",
    )
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=group) == 6,
        timeout=60,
        what="lag after recovery",
    )
    s = exporter.metrics()
    assert value(s, "kafka_consumergroup_stale", consumergroup=group) == 0
    assert value(s, "lag_exporter_polls_total", cluster="test", result="failure") >= 1
    assert exporter.process.poll() is None
    assert "cluster test: down" in exporter.log() and "cluster test: up" in exporter.log()
