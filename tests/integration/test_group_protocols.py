"""Groups on the new protocols against a real broker: KIP-848 consumer groups, share groups."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localkafka import KafkaBroker, start_java_process, tool_class

from .conftest import Exporter, Kafka, select, value, wait_until

StartExporter = Callable[..., Exporter]


def kafka_major_minor(broker: KafkaBroker) -> tuple[int, int]:
    major, minor = (int(x) for x in broker.version.split(".")[:2])
    return major, minor


@contextlib.contextmanager
def console_consumer(broker: KafkaBroker, topic: str, group: str, protocol: str) -> Iterator[None]:
    process = start_java_process(
        tool_class("console-consumer", broker.version),
        [
            *("--bootstrap-server", broker.bootstrap, "--topic", topic, "--group", group),
            "--from-beginning",
            # Kafka 4.4 prints a deprecation notice for this option; it still works.
            *("--consumer-property", f"group.protocol={protocol}"),
            *("--consumer-property", "auto.commit.interval.ms=500"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        version=broker.version,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(20)


def test_a_java_consumer_on_the_new_group_protocol_is_reported_with_members_and_lag(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter, broker: KafkaBroker
) -> None:
    if kafka_major_minor(broker) < (4, 0):
        pytest.skip("the consumer group protocol (KIP-848) is generally available from Kafka 4.0")
    topic = kafka.create_topic(unique("kip848"), partitions=2)
    group = unique("next-gen")
    for p in range(2):
        kafka.produce(topic, 10, partition=p)
    exporter = start_exporter()
    with console_consumer(broker, topic, group, "consumer"):

        def consumed() -> dict[str, Any] | None:
            g = exporter.group(group)
            if not (g and g["state"] == "Stable" and g["members"] and g["total_lag"] == 0):
                return None
            if [p["committed_offset"] for p in g["partitions"]] != [10, 10]:
                return None
            return g

        g = wait_until(consumed, timeout=90, what="the console consumer caught up")
        s = exporter.metrics()
    assert g["group_type"] == "consumer" and g["protocol_type"] == "consumer"
    (m,) = g["members"]
    assert m["client_id"] == "console-consumer"
    assert sorted((a["topic"], a["partition"]) for a in m["assignment"]) == [(topic, 0), (topic, 1)]
    assert value(s, "kafka_consumergroup_members", consumergroup=group) == 1
    assert value(s, "kafka_consumergroup_idle_members", consumergroup=group) == 0
    assert value(s, "kafka_consumergroup_info", consumergroup=group, group_type="consumer") == 1
    owners = select(s, "kafka_consumergroup_partition_assignment", consumergroup=group)
    assert len(owners) == 2 and {dict(k)["member_id"] for k in owners} == {m["member_id"]}
    assert value(s, "kafka_consumergroup_lag", consumergroup=group, partition="0") == 0

    # The consumer leaves; what is produced afterwards is lag of an empty group.
    kafka.produce(topic, 7, partition=0)

    def behind() -> bool:
        s = exporter.metrics()
        return (
            value(s, "kafka_consumergroup_state", consumergroup=group, state="Empty") == 1
            and value(s, "kafka_consumergroup_lag", consumergroup=group, partition="0") == 7
        )

    wait_until(behind, timeout=60, what="lag 7 after the consumer left")
    s = exporter.metrics()
    assert value(s, "kafka_consumergroup_members", consumergroup=group) == 0
    errors = [e for c in exporter.groups()["clusters"] for e in c["errors"] if e["group"] == group]
    assert errors == []


def test_share_groups_are_listed_and_break_nothing(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter, broker: KafkaBroker
) -> None:
    if kafka_major_minor(broker) < (4, 2):
        pytest.skip("share groups (KIP-932) are enabled by default from Kafka 4.2")
    topic = kafka.create_topic(unique("shared"), partitions=1)
    share_group, classic_group = unique("share"), unique("classic")
    kafka.produce(topic, 5)
    kafka.commit(classic_group, {(topic, 0): 2})
    process = start_java_process(
        "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
        ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--group", share_group],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        version=broker.version,
    )
    try:
        exporter = start_exporter()

        def listed() -> dict[str, Any] | None:
            g = exporter.group(share_group)
            return g if g and g["state"] == "Stable" else None

        g = wait_until(listed, timeout=60, what="the share group listed")
        exporter.wait_polls(2)
        s = exporter.metrics()
        errors = exporter.groups()["clusters"][0]["errors"]
    finally:
        process.terminate()
        process.wait(20)
    assert g["group_type"] == "share" and g["partitions"] == []
    assert value(s, "kafka_consumergroup_state", consumergroup=share_group, state="Stable") == 1
    assert value(s, "kafka_consumergroup_info", consumergroup=share_group, group_type="share") == 1
    # Nothing about it fails, and the other groups are read as before.
    assert [e for e in errors if e["group"] == share_group] == []
    assert value(s, "kafka_consumergroup_lag", consumergroup=classic_group) == 3
