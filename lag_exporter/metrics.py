"""Cluster views -> Prometheus exposition, rendered once per poll.

A pure view in prometheus_client's custom-collector style: every render
builds all families from immutable views, so a series whose group, topic or
partition is gone simply is not in the next exposition, and a scrape never
sees a half-updated state. The core lag and offset series keep
kafka_exporter's names and labels (plus `cluster`), so its dashboards and
alerts work unchanged.
"""

from __future__ import annotations

import platform
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__
from .model import ClusterInsight, ClusterView
from .status import STATUS_CODES
from .textformat import Family, LabelRows, render_gzip

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class Exposition:
    """One rendered exposition, kept only in its gzip form, served as is to every scrape.

    Prometheus always asks for gzip; the text form is 25 times the size (60 MB
    at 10^5 group partitions) and is decompressed, in pieces, for the rare
    client that does not.
    """

    gzipped: bytes
    size: int  # bytes of the text form

    def pieces(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The text form, at most `size` bytes at a time."""
        inflate = zlib.decompressobj(wbits=31)
        data = self.gzipped
        while data:
            piece = inflate.decompress(data, size)
            data = inflate.unconsumed_tail
            if piece:
                yield piece
        rest = inflate.flush()
        if rest:
            yield rest

    @property
    def text(self) -> bytes:
        return b"".join(self.pieces())


def _kafka_python_version() -> str:
    try:
        from kafka.version import __version__ as version

        return str(version)
    except Exception:
        return "unknown"


_BUILD_LABELS = {
    "version": __version__,
    "python_version": platform.python_version(),
    "kafka_python_version": _kafka_python_version(),
}


class Sink(Protocol):
    """What the family helpers hand out: something series can be added to."""

    def add_metric(self, labels: Sequence[str], value: float) -> None: ...


# (name, documentation, label names, "gauge" | "counter") -> a family. The
# default formats samples as they come (textformat.Family); tests pass
# prometheus_client's own families to check the output against generate_latest.
FamilyFactory = Callable[[str, str, Sequence[str], str], Sink]


def exposed(granularity: str, label_names: Sequence[str]) -> bool:
    """Whether a family with these labels is exposed at a cluster's `granularity`.

    Only consumer-group series are cut: `topic` drops those per partition
    (lag, current offset, assignment, ...), `group` also those per topic
    (the *_sum series). Topic series (kafka_topic_*) grow with partitions,
    not with groups, and are always kept.
    """
    if "consumergroup" not in label_names or granularity == "partition":
        return True
    if granularity == "topic":
        return "partition" not in label_names
    return "partition" not in label_names and "topic" not in label_names


def add_column(sink: Sink, labels: LabelRows, values: Sequence[float | None]) -> None:
    """One series per row of `labels` whose value is not None."""
    if isinstance(sink, Family):
        sink.add_column(labels, values)
    elif sink is not _DROPPED:
        for row, value in zip(labels.rows, values, strict=True):
            if value is not None:
                sink.add_metric(row, value)


class _Dropped:
    """The sink of families a cluster's granularity does not expose."""

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        pass


_DROPPED = _Dropped()


class _Families:
    """Helper that creates gauge families whose label names start with
    `cluster` and the cluster's constant labels, in a fixed order."""

    def __init__(self, constant_label_names: Sequence[str], make: FamilyFactory) -> None:
        self.base = ["cluster", *constant_label_names]
        self.families: dict[str, Sink] = {}
        self.make = make
        self.granularity = "partition"  # of the cluster being added

    def _family(self, name: str, doc: str, labels: Sequence[str], kind: str) -> Sink:
        names = [*self.base, *labels]
        if not exposed(self.granularity, names):
            return _DROPPED
        family = self.families.get(name)
        if family is None:
            family = self.make(name, doc, names, kind)
            self.families[name] = family
        return family

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> Sink:
        return self._family(name, doc, labels, "gauge")

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> Sink:
        return self._family(name, doc, labels, "counter")


def _constant_label_names(views: Iterable[ClusterView]) -> list[str]:
    names: set[str] = set()
    for view in views:
        names.update(view.labels)
    return sorted(names)


def families(
    views: Sequence[ClusterView],
    granularity: Mapping[str, str] | None = None,
    make: FamilyFactory = Family,
) -> Iterator[Sink]:
    """All metric families for the given clusters, plus the exporter's build info.

    `granularity` maps a cluster name to partition (the default), topic or group.
    """
    build = make(
        "lag_exporter_build_info",
        "Build information of the exporter; the value is always 1.",
        list(_BUILD_LABELS),
        "gauge",
    )
    build.add_metric(list(_BUILD_LABELS.values()), 1)
    yield build

    constant = _constant_label_names(views)
    f = _Families(constant, make)
    for view in views:
        f.granularity = (granularity or {}).get(view.cluster, "partition")
        base = [view.cluster, *(view.labels.get(name, "") for name in constant)]
        _health(f, view, base)
        _topics(f, view, base)
        _groups(f, view, base)
        if view.insight is not None:
            _insight(f, view.insight, base)
    yield from f.families.values()


def _health(f: _Families, view: ClusterView, base: list[str]) -> None:
    h = view.health
    f.gauge(
        "lag_exporter_cluster_up",
        "1 when the last poll reached the cluster, 0 when no broker answered.",
        [],
    ).add_metric(base, 1 if h.up else 0)
    f.gauge(
        "lag_exporter_poll_partial",
        "1 when the last poll reached the cluster but could not read everything "
        "(see lag_exporter_poll_errors_total).",
        [],
    ).add_metric(base, 1 if h.partial else 0)
    if h.last_poll_duration is not None:
        f.gauge(
            "lag_exporter_poll_duration_seconds",
            "Wall time of the last poll of the cluster.",
            [],
        ).add_metric(base, h.last_poll_duration)
    if h.last_publish_duration is not None:
        f.gauge(
            "lag_exporter_publish_duration_seconds",
            "Wall time of the previous poll of the cluster end to end: Kafka requests, lag "
            "computation and rendering of /metrics.",
            [],
        ).add_metric(base, h.last_publish_duration)
    if h.last_poll_at is not None:
        f.gauge(
            "lag_exporter_last_poll_timestamp_seconds",
            "Unix time at which the last poll (successful or not) started.",
            [],
        ).add_metric(base, h.last_poll_at)
    if h.last_success_at is not None:
        f.gauge(
            "lag_exporter_last_successful_poll_timestamp_seconds",
            "Unix time at which the last poll that reached the cluster started.",
            [],
        ).add_metric(base, h.last_success_at)
    polls = f.counter(
        "lag_exporter_polls",
        "Polls of the cluster by result (success, partial, failure).",
        ["result"],
    )
    for result in ("success", "partial", "failure"):
        polls.add_metric([*base, result], h.polls_total.get(result, 0))
    errors = f.counter("lag_exporter_poll_errors", "Errors met while polling, by kind.", ["kind"])
    for kind, count in sorted(h.errors_total.items()):
        errors.add_metric([*base, kind], count)
    last = f.gauge(
        "lag_exporter_poll_kafka_requests",
        "Kafka requests sent by the last poll, by API.",
        ["api"],
    )
    for api, count in sorted(h.last_requests.items()):
        last.add_metric([*base, api], count)
    total = f.counter(
        "lag_exporter_kafka_requests", "Kafka requests sent since start, by API.", ["api"]
    )
    for api, count in sorted(h.requests_total.items()):
        total.add_metric([*base, api], count)
    f.gauge(
        "lag_exporter_groups_tracked", "Consumer groups reported for the cluster.", []
    ).add_metric(base, len(view.groups))
    f.gauge(
        "lag_exporter_partitions_tracked", "Topic partitions whose offsets are reported.", []
    ).add_metric(base, sum(len(t.offsets) for t in view.topics.values()))
    f.gauge(
        "lag_exporter_group_partitions_tracked",
        "Consumer-group partitions (group, topic, partition) reported.",
        [],
    ).add_metric(base, sum(len(g.partitions) for g in view.groups.values()))
    if h.up:
        f.gauge("kafka_brokers", "Number of brokers in the cluster.", []).add_metric(
            base, view.brokers
        )


def _topics(f: _Families, view: ClusterView, base: list[str]) -> None:
    partitions = f.gauge("kafka_topic_partitions", "Number of partitions of the topic.", ["topic"])
    current = f.gauge(
        "kafka_topic_partition_current_offset",
        "Log-end offset (high watermark) of the partition.",
        ["topic", "partition"],
    )
    oldest = f.gauge(
        "kafka_topic_partition_oldest_offset",
        "Log-start offset of the partition (oldest offset still in the log).",
        ["topic", "partition"],
    )
    produced = f.gauge(
        "kafka_topic_messages_in_per_second",
        "Messages produced per second into the topic, from log-end offsets over rate_window.",
        ["topic"],
    )
    produced_partition = f.gauge(
        "kafka_topic_partition_messages_in_per_second",
        "Messages produced per second into the partition, from log-end offsets over rate_window.",
        ["topic", "partition"],
    )
    for topic in view.topics.values():
        partitions.add_metric([*base, topic.topic], topic.partitions)
        if topic.production_rate is not None:
            produced.add_metric([*base, topic.topic], topic.production_rate)
        for partition, rate in topic.partition_rates.items():
            produced_partition.add_metric([*base, topic.topic, str(partition)], rate)
        offsets = topic.offsets
        labels = LabelRows([(*base, topic.topic, str(partition)) for partition in offsets])
        add_column(current, labels, [o.log_end for o in offsets.values()])
        add_column(oldest, labels, [o.log_start for o in offsets.values()])


def _groups(f: _Families, view: ClusterView, base: list[str]) -> None:
    group_labels = ["consumergroup"]
    tp_labels = ["consumergroup", "topic", "partition"]
    topic_labels = ["consumergroup", "topic"]
    lag = f.gauge(
        "kafka_consumergroup_lag",
        "Messages the group has yet to consume on the partition (log-end minus committed, "
        "counting only messages still in the log). No series without a committed offset.",
        tp_labels,
    )
    current = f.gauge(
        "kafka_consumergroup_current_offset",
        "Committed offset of the group on the partition.",
        tp_labels,
    )
    lag_sum = f.gauge(
        "kafka_consumergroup_lag_sum", "Lag of the group summed over the topic.", topic_labels
    )
    current_sum = f.gauge(
        "kafka_consumergroup_current_offset_sum",
        "Committed offsets of the group summed over the topic.",
        topic_labels,
    )
    lost = f.gauge(
        "kafka_consumergroup_retention_lost_messages",
        "Messages deleted by retention before the group consumed them (committed offset "
        "below log-start), summed over the topic.",
        topic_labels,
    )
    past_end = f.gauge(
        "kafka_consumergroup_offset_past_log_end",
        "By how many offsets the committed offset exceeds the log-end offset (lag is 0 "
        "there): a topic re-created under the group, a truncated log, or an offset set by "
        "hand. Only where above 0.",
        tp_labels,
    )
    max_lag = f.gauge(
        "kafka_consumergroup_max_lag", "Largest partition lag of the group.", group_labels
    )
    members = f.gauge(
        "kafka_consumergroup_members", "Number of members of the group.", group_labels
    )
    state = f.gauge(
        "kafka_consumergroup_state",
        "State of the group (Stable, Empty, PreparingRebalance, ...); the value is always 1.",
        [*group_labels, "state"],
    )
    info = f.gauge(
        "kafka_consumergroup_info",
        "Group protocol, coordinator and group type (classic, consumer for KIP-848 groups, "
        "share, streams; empty when the broker does not tell); the value is always 1.",
        [*group_labels, "protocol_type", "protocol", "coordinator", "group_type"],
    )
    uncommitted = f.gauge(
        "kafka_consumergroup_uncommitted_partitions",
        "Partitions assigned to the group on which it has not committed an offset yet "
        "(they have no lag series).",
        group_labels,
    )
    stale = f.gauge(
        "kafka_consumergroup_stale",
        "1 when the group's offsets could not be read this poll and the values shown are "
        "carried over from an earlier poll (at most max_staleness old).",
        group_labels,
    )
    member_partitions = f.gauge(
        "kafka_consumergroup_member_assigned_partitions",
        "Partitions assigned to the member (0: an idle member).",
        [*group_labels, "member_id", "client_id", "host"],
    )
    assignment = f.gauge(
        "kafka_consumergroup_partition_assignment",
        "Which member owns the partition; the value is always 1.",
        [*tp_labels, "member_id", "client_id", "host"],
    )

    lag_seconds = f.gauge(
        "kafka_consumergroup_lag_seconds",
        "Age of the oldest unconsumed message of the partition, estimated from the history "
        "of log-end offsets (or read from the record in exact mode); accurate to one poll "
        "interval. 0 when caught up.",
        tp_labels,
    )
    lower_bound = f.gauge(
        "kafka_consumergroup_lag_seconds_is_lower_bound",
        "1 where the committed offset is older than the history kept, so lag_seconds is "
        "only a minimum (the age of the oldest point).",
        tp_labels,
    )
    max_lag_seconds = f.gauge(
        "kafka_consumergroup_max_lag_seconds",
        "Largest lag in seconds over the group's partitions.",
        group_labels,
    )
    status = f.gauge(
        "kafka_consumergroup_status",
        "Status of the group on the partition (label status: OK, WARN, STOP, STALL, REWIND); "
        "the value is its code: OK=1 WARN=2 ERR=3 STOP=4 STALL=5 REWIND=6.",
        [*tp_labels, "status"],
    )
    group_status = f.gauge(
        "kafka_consumergroup_group_status",
        "Status of the group (OK, WARN, ERR); the value is its code: OK=1 WARN=2 ERR=3.",
        [*group_labels, "status"],
    )
    consumed = f.gauge(
        "kafka_consumergroup_messages_consumed_per_second",
        "Messages the group commits per second on the topic, from committed offsets over "
        "rate_window.",
        topic_labels,
    )
    catchup = f.gauge(
        "kafka_consumergroup_catchup_seconds",
        "Estimated time for the group to consume its lag on the topic: lag / (consumption "
        "rate - production rate). Absent when the group is not catching up.",
        topic_labels,
    )

    # The per-partition families are exposed or dropped together (granularity):
    # when dropped, their label rows are not even built.
    per_partition = lag is not _DROPPED
    for group in view.groups.values():
        g = [*base, group.group_id]
        state.add_metric([*g, group.state], 1)
        if group.status is not None:
            group_status.add_metric([*g, str(group.status)], STATUS_CODES[group.status])
        worst_seconds = group.max_lag_seconds
        if worst_seconds is not None:
            max_lag_seconds.add_metric(g, worst_seconds)
        for topic, rates in group.topic_rates.items():
            if rates.consumption_rate is not None:
                consumed.add_metric([*g, topic], rates.consumption_rate)
            if rates.catchup_seconds is not None:
                catchup.add_metric([*g, topic], rates.catchup_seconds)
        info.add_metric(
            [
                *g,
                group.protocol_type,
                group.protocol,
                str(group.coordinator or ""),
                group.group_type,
            ],
            1,
        )
        stale.add_metric(g, 1 if group.stale else 0)
        uncommitted.add_metric(g, group.uncommitted_partitions)
        if group.members_known:
            members.add_metric(g, len(group.members))
            for m in group.members:
                member_partitions.add_metric(
                    [*g, m.member_id, m.client_id, m.host], len(m.assignment)
                )
        rows = group.partitions
        if per_partition:
            labels = LabelRows([(*g, p.topic, str(p.partition)) for p in rows])
            add_column(current, labels, [p.committed for p in rows])
            add_column(lag, labels, [p.lag for p in rows])
            add_column(past_end, labels, [p.offset_past_log_end or None for p in rows])
            add_column(lag_seconds, labels, [p.lag_seconds for p in rows])
            add_column(
                lower_bound,
                labels,
                [
                    1 if p.lag_seconds_lower_bound and p.lag_seconds is not None else None
                    for p in rows
                ],
            )
            with_status = [p for p in rows if p.status is not None]
            if with_status:
                add_column(
                    status,
                    LabelRows(
                        [(*g, p.topic, str(p.partition), str(p.status)) for p in with_status]
                    ),
                    [STATUS_CODES[p.status] for p in with_status if p.status is not None],
                )
            owned = [p for p in rows if p.member is not None]
            if owned:
                add_column(
                    assignment,
                    LabelRows(
                        [
                            (*g, p.topic, str(p.partition), o.member_id, o.client_id, o.host)
                            for p in owned
                            if (o := p.member) is not None
                        ]
                    ),
                    [1] * len(owned),
                )
        sums: dict[str, list[int]] = {}
        for p in rows:
            per_topic = sums.get(p.topic)
            if per_topic is None:
                per_topic = sums[p.topic] = [0, 0, 0, 0]
            if p.committed is not None:
                per_topic[1] += p.committed
                per_topic[3] += 1
            if p.lag is not None:
                per_topic[0] += p.lag
            per_topic[2] += p.lost_to_retention
        for topic, (lag_total, offset_total, lost_total, committed_count) in sums.items():
            if committed_count:
                lag_sum.add_metric([*g, topic], lag_total)
                current_sum.add_metric([*g, topic], offset_total)
                lost.add_metric([*g, topic], lost_total)
        worst = group.max_lag
        if worst is not None:
            max_lag.add_metric(g, worst)


def _insight(f: _Families, insight: ClusterInsight, base: list[str]) -> None:
    """Partition advice, hot partitions, idle members, retry and dead-letter topics."""
    share = f.gauge(
        "kafka_topic_partition_production_share",
        "Share of the topic's production that goes to the partition (0 to 1), over rate_window.",
        ["topic", "partition"],
    )
    skew = f.gauge(
        "kafka_topic_production_skew",
        "Production rate of the busiest partition divided by the mean over the topic's "
        "partitions: 1 when even, the number of partitions when one takes everything.",
        ["topic"],
    )
    hot = f.gauge(
        "kafka_topic_partition_hot",
        "1 for a partition that receives more than insight.hot_factor times the mean rate "
        "of the topic's other partitions (a dominant key); absent otherwise.",
        ["topic", "partition"],
    )
    for t in insight.topics.values():
        for partition, value in t.shares.items():
            share.add_metric([*base, t.topic, str(partition)], value)
        if t.skew is not None:
            skew.add_metric([*base, t.topic], t.skew)
        for partition in t.hot_partitions:
            hot.add_metric([*base, t.topic, str(partition)], 1)

    group_topic = ["consumergroup", "topic"]
    needed = f.gauge(
        "kafka_consumergroup_partitions_needed",
        "Partitions the topic needs for this group: ceil(production rate x headroom / "
        "capacity per partition). Absent when there is not enough data (see "
        "kafka_consumergroup_partition_advice).",
        group_topic,
    )
    consumers_needed = f.gauge(
        "kafka_consumergroup_consumers_needed",
        "Consumers (threads) the group needs on the topic, one per partition needed; "
        "absent when members are unknown or there is not enough data.",
        group_topic,
    )
    capacity = f.gauge(
        "kafka_consumergroup_consumption_capacity_per_partition_messages_per_second",
        "Messages per second one partition is consumed at while its consumer has a backlog: "
        "per member (method=member, a consumer owning one partition) or per partition "
        "(method=partition, members unknown).",
        [*group_topic, "method"],
    )
    busy = f.gauge(
        "kafka_consumergroup_capacity_busy_seconds",
        "Seconds of backlog behind the capacity measurement (the least of the measured "
        "members or partitions), within insight.capacity_window.",
        group_topic,
    )
    advice = f.gauge(
        "kafka_consumergroup_partition_advice",
        "1 for the verdict on the group's partitions and consumers on the topic: enough, "
        "add_consumers, add_partitions, hot_partition, never_saturated, not_consuming, "
        "not_enough_data.",
        [*group_topic, "verdict"],
    )
    lag_skew = f.gauge(
        "kafka_consumergroup_lag_skew",
        "Largest partition lag of the group on the topic divided by its mean lag there; "
        "absent without lag.",
        group_topic,
    )
    lag_hot = f.gauge(
        "kafka_consumergroup_partition_lag_hot",
        "1 for a partition whose lag is more than insight.hot_factor times the mean lag of "
        "the group's other partitions of the topic; absent otherwise.",
        [*group_topic, "partition"],
    )
    idle = f.gauge(
        "kafka_consumergroup_idle_members",
        "Members of a stable consumer group that own no partition (more consumers than "
        "partitions).",
        ["consumergroup"],
    )
    unowned = f.gauge(
        "kafka_consumergroup_unowned_partitions",
        "Partitions of a topic the stable group subscribes to (or partly owns) that no "
        "member owns.",
        group_topic,
    )
    for g in insight.groups.values():
        labels = [*base, g.group_id]
        if g.members is not None:
            idle.add_metric(labels, len(g.idle_members))
        for topic, missing in g.unowned.items():
            unowned.add_metric([*labels, topic], len(missing))
        for a in g.topics.values():
            gt = [*labels, a.topic]
            advice.add_metric([*gt, str(a.verdict)], 1)
            if a.partitions_needed is not None:
                needed.add_metric(gt, a.partitions_needed)
            if a.consumers_needed is not None:
                consumers_needed.add_metric(gt, a.consumers_needed)
            if a.capacity is not None:
                capacity.add_metric([*gt, str(a.method)], a.capacity)
                busy.add_metric(gt, a.busy_seconds)
            if a.lag_skew is not None:
                lag_skew.add_metric(gt, a.lag_skew)
            for partition in a.hot_lag_partitions:
                lag_hot.add_metric([*gt, str(partition)], 1)

    dlt = f.gauge(
        "kafka_topic_dead_letter_messages",
        "Messages in a dead-letter topic (log-end minus log-start, summed over partitions), "
        "labelled with its main topic.",
        ["main_topic", "topic"],
    )
    dlt_rate = f.gauge(
        "kafka_topic_dead_letter_messages_in_per_second",
        "Messages produced per second into a dead-letter topic, over rate_window.",
        ["main_topic", "topic"],
    )
    retry_rate = f.gauge(
        "kafka_topic_retry_messages_in_per_second",
        "Messages produced per second into a retry topic (deliveries that failed and wait "
        "for another attempt), over rate_window.",
        ["main_topic", "topic"],
    )
    retry_lag = f.gauge(
        "kafka_consumergroup_retry_lag",
        "Lag of a group on a retry topic: retries not yet attempted.",
        ["consumergroup", "main_topic", "topic"],
    )
    for r in insight.retries.values():
        for topic in r.dead_letter_topics:
            dlt.add_metric([*base, r.main_topic, topic], r.messages.get(topic, 0))
            if topic in r.messages_in:
                dlt_rate.add_metric([*base, r.main_topic, topic], r.messages_in[topic])
        for topic in r.retry_topics:
            if topic in r.messages_in:
                retry_rate.add_metric([*base, r.main_topic, topic], r.messages_in[topic])
        for (group_id, topic), lag in r.retry_lag.items():
            retry_lag.add_metric([*base, group_id, r.main_topic, topic], lag)


def render(
    views: Sequence[ClusterView],
    extra: Sequence[Metric] = (),
    *,
    granularity: Mapping[str, str] | None = None,
) -> Exposition:
    """The text exposition of all clusters, and its gzip form. `extra`: families
    rendered alongside (the alerts').

    Each family is compressed as it fills (gzip level 1, see gzipjoin), so
    the text is never held whole.
    """
    gzipped, size = render_gzip(list(_rendered([*families(views, granularity), *extra])))
    return Exposition(gzipped=gzipped, size=size)


def _rendered(sinks: Iterable[Sink | Metric]) -> Iterator[Family | Metric]:
    for sink in sinks:
        assert isinstance(sink, Family | Metric)
        yield sink
