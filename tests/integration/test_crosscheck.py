"""Kafka's own kafka-consumer-groups is the referee: same cluster, same moment, same numbers."""

from __future__ import annotations

from collections.abc import Callable

from kafka.structs import OffsetAndMetadata, TopicPartition

from localkafka import KafkaBroker, consumer_groups_describe_all

from .conftest import Exporter, Kafka, wait_until

Row = dict[str, int | None]


def parse_describe(output: str, groups: set[str]) -> dict[tuple[str, str, int], Row]:
    """Rows of `--describe --all-groups` for our groups; '-' becomes None."""
    rows: dict[tuple[str, str, int], Row] = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) < 6 or cells[0] not in groups or not cells[2].isdigit():
            continue
        group, topic, partition, current, end, lag = cells[:6]

        def num(cell: str) -> int | None:
            return None if cell == "-" else int(cell)

        rows[(group, topic, int(partition))] = {
            "committed": num(current),
            "log_end": num(end),
            "lag": num(lag),
        }
    return rows


def test_offsets_and_lag_equal_kafka_consumer_groups(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
    broker: KafkaBroker,
) -> None:
    orders = kafka.create_topic(unique("orders"), partitions=3)
    payments = kafka.create_topic(unique("payments"), partitions=2)
    doomed = kafka.create_topic(unique("doomed"), partitions=1)
    for p, n in enumerate((40, 25, 7)):
        kafka.produce(orders, n, partition=p)
    for p, n in enumerate((13, 0)):
        if n:
            kafka.produce(payments, n, partition=p)
    kafka.produce(doomed, 9)

    stable, partial, empty, orphan = (
        unique("stable"),
        unique("partial"),
        unique("empty"),
        unique("orphan"),
    )
    # Stable: a live member that consumed part of two topics and committed.
    live = kafka.consumer(stable, orders, payments)
    assert kafka.consume(live, 30) == 30
    # Some partitions never committed: a live member owning all of `orders`,
    # having committed on partition 1 only.
    half = kafka.consumer(partial, orders)
    wait_until(lambda: half.poll(timeout_ms=200) or half.assignment(), what="assignment")
    half.commit({TopicPartition(orders, 1): OffsetAndMetadata(11, "", -1)})
    # Empty: offsets only, no members, one of them at the very end.
    kafka.commit(empty, {(orders, 0): 40, (orders, 2): 1, (payments, 0): 5})
    # A group holding offsets on a topic that is then deleted.
    kafka.commit(orphan, {(doomed, 0): 4, (payments, 0): 13})
    kafka.admin.delete_topics([doomed])
    wait_until(lambda: doomed not in kafka.admin.list_topics(), what="topic deleted")

    exporter = start_exporter()
    groups = {stable, partial, empty, orphan}

    def all_groups_seen() -> bool:
        got = {g for g in groups if exporter.group(g)}
        stable_doc = exporter.group(stable)
        return got == groups and bool(stable_doc and stable_doc["state"] == "Stable")

    wait_until(all_groups_seen, timeout=60, what="all four groups reported")
    # Traffic is paused: nothing produces or commits from here on.
    exporter.wait_polls(2)
    tool = parse_describe(
        consumer_groups_describe_all(broker.bootstrap, version=broker.version), groups
    )
    exporter.wait_polls(1)
    ours: dict[tuple[str, str, int], Row] = {}
    for group in groups:
        doc = exporter.group(group)
        assert doc is not None
        for p in doc["partitions"]:
            ours[(group, p["topic"], p["partition"])] = {
                "committed": p["committed_offset"],
                "log_end": p["log_end_offset"],
                "lag": p["lag"],
            }

    compared = 0
    for key, theirs in tool.items():
        if key[1] == doomed:
            continue  # the tool may still list a deleted topic's offsets; we drop them
        assert key in ours, f"{key} is in kafka-consumer-groups but not reported"
        for field in ("committed", "log_end", "lag"):
            if theirs[field] is not None:
                assert ours[key][field] == theirs[field], (key, field, ours[key], theirs)
                compared += 1
            elif field != "log_end":
                assert ours[key][field] is None, (key, field, ours[key], theirs)
    # Every state is covered by rows with values on both sides.
    assert {k[0] for k, r in tool.items() if r["lag"] is not None} >= {
        stable,
        partial,
        empty,
        orphan,
    }
    assert compared >= 3 * 8
    # The partially committed group: the tool and the exporter agree that two
    # partitions have no lag at all, and we count them.
    partial_doc = exporter.group(partial)
    assert partial_doc is not None and partial_doc["uncommitted_partitions"] == 2
    assert not any(k[1] == doomed for k in ours)
