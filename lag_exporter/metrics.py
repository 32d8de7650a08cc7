"""Cluster views -> Prometheus exposition, rendered once per poll.

A pure view in prometheus_client's custom-collector style: every render
builds all families from immutable views, so a series whose group, topic or
partition is gone simply is not in the next exposition, and a scrape never
sees a half-updated state. The core lag and offset series keep
kafka_exporter's names and labels (plus `cluster`), so its dashboards and
alerts work unchanged.
"""

from __future__ import annotations

import gzip
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__
from .model import ClusterView
from .textformat import Family, render_text

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class Exposition:
    """One rendered exposition and its gzip form, served as is to every scrape."""

    text: bytes
    gzipped: bytes


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
    for topic in view.topics.values():
        partitions.add_metric([*base, topic.topic], topic.partitions)
        for partition, offsets in topic.offsets.items():
            labels = [*base, topic.topic, str(partition)]
            if offsets.log_end is not None:
                current.add_metric(labels, offsets.log_end)
            if offsets.log_start is not None:
                oldest.add_metric(labels, offsets.log_start)


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
        "Group protocol and coordinator; the value is always 1.",
        [*group_labels, "protocol_type", "protocol", "coordinator"],
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

    for group in view.groups.values():
        g = [*base, group.group_id]
        state.add_metric([*g, group.state], 1)
        info.add_metric([*g, group.protocol_type, group.protocol, str(group.coordinator or "")], 1)
        stale.add_metric(g, 1 if group.stale else 0)
        uncommitted.add_metric(g, group.uncommitted_partitions)
        if group.members_known:
            members.add_metric(g, len(group.members))
            for m in group.members:
                member_partitions.add_metric(
                    [*g, m.member_id, m.client_id, m.host], len(m.assignment)
                )
        sums: dict[str, list[int]] = {}
        for p in group.partitions:
            labels = [*g, p.topic, str(p.partition)]
            per_topic = sums.setdefault(p.topic, [0, 0, 0, 0])
            if p.committed is not None:
                current.add_metric(labels, p.committed)
                per_topic[1] += p.committed
                per_topic[3] += 1
            if p.lag is not None:
                lag.add_metric(labels, p.lag)
                per_topic[0] += p.lag
            per_topic[2] += p.lost_to_retention
            if p.member is not None:
                assignment.add_metric(
                    [*labels, p.member.member_id, p.member.client_id, p.member.host], 1
                )
        for topic, (lag_total, offset_total, lost_total, committed_count) in sums.items():
            if committed_count:
                lag_sum.add_metric([*g, topic], lag_total)
                current_sum.add_metric([*g, topic], offset_total)
                lost.add_metric([*g, topic], lost_total)
        worst = group.max_lag
        if worst is not None:
            max_lag.add_metric(g, worst)


def render(
    views: Sequence[ClusterView], *, granularity: Mapping[str, str] | None = None
) -> Exposition:
    """The text exposition of all clusters, and its gzip form.

    gzip level 1: a third of level 6's time for a document under twice the
    size; zlib releases the GIL while it works, so scrapes are not held up.
    """
    text = render_text(_rendered(families(views, granularity)))
    return Exposition(text=text, gzipped=gzip.compress(text, compresslevel=1))


def _rendered(sinks: Iterable[Sink]) -> Iterator[Family | Metric]:
    for sink in sinks:
        assert isinstance(sink, Family | Metric)
        yield sink
