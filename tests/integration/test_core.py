"""The exporter against a real broker: discovery, lag, edge cases, HTTP, CLI."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import time
from collections.abc import Callable

from kafka.structs import TopicPartition

from localkafka import KafkaBroker, start_java_process, tool_class

from .conftest import ROOT, Exporter, Kafka, exporter_command, select, value, wait_until

StartExporter = Callable[..., Exporter]


def test_lag_of_a_live_group_and_its_members(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic = kafka.create_topic(unique("orders"), partitions=3)
    group = unique("billing")
    for p in range(3):
        kafka.produce(topic, 20, partition=p)
    consumer = kafka.consumer(group, topic, client_id="billing-1")
    assert kafka.consume(consumer, 15) == 15
    exporter = start_exporter()

    def settled() -> bool:
        s = exporter.metrics()
        return value(s, "kafka_consumergroup_lag_sum", consumergroup=group, topic=topic) == 45

    wait_until(settled, what="lag sum 45")
    s = exporter.metrics()
    lags = select(s, "kafka_consumergroup_lag", consumergroup=group, topic=topic, cluster="test")
    assert len(lags) == 3 and sum(lags.values()) == 45 and min(lags.values()) >= 0
    assert value(s, "kafka_consumergroup_current_offset_sum", consumergroup=group) == 15
    assert value(s, "kafka_consumergroup_members", consumergroup=group) == 1
    assert value(s, "kafka_consumergroup_state", consumergroup=group, state="Stable") == 1
    assert value(s, "kafka_consumergroup_max_lag", consumergroup=group) == max(lags.values())
    assert value(s, "kafka_topic_partitions", topic=topic) == 3
    for p in range(3):
        assert value(s, "kafka_topic_partition_current_offset", topic=topic, partition=str(p)) == 20
        assert value(s, "kafka_topic_partition_oldest_offset", topic=topic, partition=str(p)) == 0
    owned = select(
        s, "kafka_consumergroup_partition_assignment", consumergroup=group, client_id="billing-1"
    )
    assert len(owned) == 3
    assert (
        value(
            s,
            "kafka_consumergroup_member_assigned_partitions",
            consumergroup=group,
            client_id="billing-1",
        )
        == 3
    )
    assert value(s, "kafka_brokers", cluster="test") == 1
    assert value(s, "lag_exporter_cluster_up", cluster="test") == 1

    doc = exporter.group(group)
    assert doc is not None and doc["state"] == "Stable"
    assert doc["members"][0]["client_id"] == "billing-1"
    assert sum(p["lag"] for p in doc["partitions"]) == 45
    assert all(p["log_end_offset"] == 20 for p in doc["partitions"])


def test_assigned_but_never_committed_partitions_have_no_lag_series(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic = kafka.create_topic(unique("events"), partitions=3)
    group = unique("fresh")
    kafka.produce(topic, 10, partition=0)
    consumer = kafka.consumer(group, topic)
    # Joins the group and owns all three partitions, then commits only partition 0.
    wait_until(lambda: consumer.poll(timeout_ms=200) or consumer.assignment(), what="assignment")
    consumer.commit({TopicPartition(topic, 0): _offset(4)})
    exporter = start_exporter()

    def settled() -> bool:
        g = exporter.group(group)
        return bool(g and g["state"] == "Stable" and g["uncommitted_partitions"] == 2)

    wait_until(settled, what="two uncommitted partitions")
    s = exporter.metrics()
    lags = select(s, "kafka_consumergroup_lag", consumergroup=group)
    assert list(lags.values()) == [6]
    assert value(s, "kafka_consumergroup_uncommitted_partitions", consumergroup=group) == 2
    assert len(select(s, "kafka_consumergroup_partition_assignment", consumergroup=group)) == 3


def test_empty_group_with_committed_offsets_is_reported(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic = kafka.create_topic(unique("t"), partitions=2)
    group = unique("idle")
    kafka.produce(topic, 10, partition=0)
    kafka.produce(topic, 7, partition=1)
    kafka.commit(group, {(topic, 0): 3, (topic, 1): 7})
    exporter = start_exporter()
    wait_until(lambda: exporter.group(group), what="empty group listed")
    s = exporter.metrics()
    assert value(s, "kafka_consumergroup_state", consumergroup=group, state="Empty") == 1
    assert value(s, "kafka_consumergroup_members", consumergroup=group) == 0
    assert value(s, "kafka_consumergroup_lag", consumergroup=group, partition="0") == 7
    assert value(s, "kafka_consumergroup_lag", consumergroup=group, partition="1") == 0


def test_retention_loss_is_counted_apart_and_lag_counts_what_exists(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic = kafka.create_topic(unique("short"), partitions=1)
    group = unique("slow")
    kafka.produce(topic, 50, partition=0)
    kafka.commit(group, {(topic, 0): 10})
    # What retention does, made immediate: records below offset 30 are deleted.
    kafka.admin.delete_records({TopicPartition(topic, 0): 30})
    exporter = start_exporter()
    wait_until(lambda: exporter.group(group), what="group listed")
    s = exporter.metrics()
    assert value(s, "kafka_topic_partition_oldest_offset", topic=topic) == 30
    assert value(s, "kafka_consumergroup_lag", consumergroup=group) == 20
    assert value(s, "kafka_consumergroup_retention_lost_messages", consumergroup=group) == 20


def test_deleted_topic_series_go_away_and_the_log_says_so(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    keep = kafka.create_topic(unique("keep"), partitions=1)
    doomed = kafka.create_topic(unique("doomed"), partitions=1)
    group = unique("holder")
    kafka.produce(keep, 5)
    kafka.produce(doomed, 5)
    kafka.commit(group, {(keep, 0): 1, (doomed, 0): 2})
    exporter = start_exporter()
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", topic=doomed) == 3,
        what="lag on the doomed topic",
    )
    kafka.admin.delete_topics([doomed])
    wait_until(
        lambda: not select(exporter.metrics(), "kafka_topic_partitions", topic=doomed),
        what="deleted topic gone from /metrics",
    )
    s = exporter.metrics()
    assert not select(s, "kafka_consumergroup_lag", topic=doomed)
    assert value(s, "kafka_consumergroup_lag", consumergroup=group, topic=keep) == 4
    wait_until(
        lambda: f"topic {doomed!r} no longer exists" in exporter.log(),
        what="log line about the deleted topic",
    )
    assert exporter.process.poll() is None


def test_group_and_topic_filters(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic = kafka.create_topic(unique("seen"), partitions=1)
    hidden_topic = kafka.create_topic(unique("hidden"), partitions=1)
    wanted, denied = unique("wanted"), unique("denied")
    kafka.produce(topic, 3)
    kafka.produce(hidden_topic, 3)
    for g in (wanted, denied):
        kafka.commit(g, {(topic, 0): 1, (hidden_topic, 0): 1})
    exporter = start_exporter(
        groups={"allow": [f"{wanted[:-7]}.*", f"{denied[:-7]}.*"], "deny": [".*denied.*"]},
        topics={"deny": [".*hidden.*"]},
    )
    wait_until(lambda: exporter.group(wanted), what="allowed group")
    s = exporter.metrics()
    assert not select(s, "kafka_consumergroup_lag", consumergroup=denied)
    assert select(s, "kafka_consumergroup_lag", consumergroup=wanted, topic=topic)
    assert not select(s, "kafka_consumergroup_lag", topic=hidden_topic)
    assert not select(s, "kafka_topic_partitions", topic=hidden_topic)


def test_scrapes_never_call_kafka(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter, broker: KafkaBroker
) -> None:
    exporter = start_exporter(
        config={
            "poll_interval": "1h",
            "clusters": [{"name": "test", "kafka": {"bootstrap.servers": broker.bootstrap}}],
        }
    )
    first = exporter.get("/metrics")[1]
    for _ in range(50):
        status, body = exporter.get("/metrics")
        assert status == 200
        # Same bytes: rendered once after the poll, not per scrape; so no
        # request counter moved either.
        assert body == first
    status, zipped = exporter.get("/metrics", {"Accept-Encoding": "gzip"})
    assert gzip.decompress(zipped) == first


def test_java_console_consumer_group_is_reported_with_members(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter, broker: KafkaBroker
) -> None:
    topic = kafka.create_topic(unique("java"), partitions=2)
    group = unique("console")
    kafka.produce(topic, 10, partition=0)
    consumer = start_java_process(
        tool_class("console-consumer", broker.version),
        [
            "--bootstrap-server",
            broker.bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--consumer-property",
            "group.protocol=classic",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        version=broker.version,
    )
    try:
        exporter = start_exporter()

        def consumed() -> bool:
            g = exporter.group(group)
            return bool(
                g
                and g["state"] == "Stable"
                and g["members"]
                and g["total_lag"] == 0
                and any(p["committed_offset"] == 10 for p in g["partitions"])
            )

        wait_until(consumed, timeout=60, what="console consumer caught up")
        s = exporter.metrics()
        assert value(s, "kafka_consumergroup_members", consumergroup=group) == 1
        assert value(s, "kafka_consumergroup_lag", consumergroup=group, partition="0") == 0
    finally:
        consumer.terminate()
        consumer.wait(15)


def test_check_command_prints_table_json_and_gates_on_max_lag(
    kafka: Kafka, unique: Callable[[str], str], broker: KafkaBroker
) -> None:
    topic = kafka.create_topic(unique("gate"), partitions=1)
    group = unique("gated")
    kafka.produce(topic, 12)
    kafka.commit(group, {(topic, 0): 2})

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            exporter_command("check", "--bootstrap-servers", broker.bootstrap, *args),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )

    table = check()
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "CLUSTER",
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    mine = [r.split() for r in rows if group in r]
    assert mine == [["default", group, topic, "0", "2", "12", "10", "-", "-", "-"]]

    doc = json.loads(check("--format", "json").stdout)
    (g,) = [g for g in doc["clusters"][0]["groups"] if g["group"] == group]
    assert g["partitions"][0]["lag"] == 10

    assert check("--max-lag", "9").returncode == 1
    assert check("--max-lag", "1000000").returncode == 0
    # A short --timeout is enough for a broker that answers; the probe before the
    # poll recognises it as Kafka.
    assert check("--timeout", "5s", "--max-lag", "1000000").returncode == 0


def test_sigterm_stops_within_seconds(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    started = time.monotonic()
    assert exporter.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in exporter.log()


def test_cli_flags_alone_work(broker: KafkaBroker) -> None:
    from .conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        exporter_command(
            "--bootstrap-servers",
            broker.bootstrap,
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--poll-interval",
            "1s",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        exporter = Exporter(process, port, ROOT / "unused.log", ROOT / "unused.yml")
        wait_until(lambda: exporter.get("/readyz")[0] == 200, timeout=60, what="ready")
        assert value(exporter.metrics(), "lag_exporter_cluster_up", cluster="default") == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def _offset(n: int) -> object:
    from kafka.structs import OffsetAndMetadata

    return OffsetAndMetadata(n, "", -1)
