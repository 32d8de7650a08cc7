"""What a rule can measure: measure name -> series extracted from a ClusterView. Pure.

A series is identified by its labels (the exporter's own label names, so an
alert carries the same `consumergroup`, `topic`, `partition` as the metric
it is about). Adding a measure is one entry in MEASURES: its label names and
a function from a view to its series, usually made by `per_partition` or
`per_group` from the field that holds the value, e.g.
`"max_lag": per_group(lambda g: g.max_lag)`.

A series knows whether its value is trustworthy this poll: `stale` when the
row was carried over from an earlier poll, `value is None` when the series
exists but this poll could not compute it (a partition whose log-end offset
was not read). The engine keeps the state of such series unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..model import ClusterView, GroupView, PartitionLag, RetryTopics

Value = int | float | str
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Series:
    labels: Labels  # the measure's labels, in the measure's order (cluster not included)
    value: Value | None  # None: the series exists but its value is unknown this poll
    stale: bool  # carried over from an earlier poll
    lower_bound: bool = False  # the real value is at least this (lag older than the history)


@dataclass(frozen=True, slots=True)
class Measure:
    labels: tuple[str, ...]  # label names of every series, after `cluster`
    extract: Callable[[ClusterView], Iterator[Series]]
    numeric: bool = True  # False: values are words, compared with == and != only
    # How values read to people (template.humanize): messages, seconds,
    # messages/s, status, up, failing.
    unit: str = "messages"
    # False: about the exporter itself, not a cluster (series have no
    # `cluster` label and are not read from a view; see EXPORTER_MEASURES).
    per_cluster: bool = True


def _committed(group: GroupView) -> Iterator[PartitionLag]:
    # A partition without a committed offset has no lag at all (not 0, not the
    # whole log), exactly as the metrics show it.
    return (p for p in group.partitions if p.committed is not None)


def per_partition(
    value: Callable[[PartitionLag], Value | None],
    numeric: bool = True,
    lower_bound: Callable[[PartitionLag], bool] = lambda p: False,
    unit: str = "messages",
) -> Measure:
    """A measure with one series per committed group partition."""

    def extract(view: ClusterView) -> Iterator[Series]:
        for group in view.groups.values():
            for p in _committed(group):
                yield Series(
                    (
                        ("consumergroup", group.group_id),
                        ("topic", p.topic),
                        ("partition", str(p.partition)),
                    ),
                    value(p),
                    group.stale or p.stale,
                    lower_bound(p),
                )

    return Measure(("consumergroup", "topic", "partition"), extract, numeric, unit)


def per_group(
    value: Callable[[GroupView], Value | None],
    numeric: bool = True,
    lower_bound: Callable[[GroupView], bool] = lambda g: False,
    unit: str = "messages",
) -> Measure:
    """A measure with one series per group that has a value, or committed
    offsets (whose value this poll could not compute)."""

    def extract(view: ClusterView) -> Iterator[Series]:
        for group in view.groups.values():
            rows = list(_committed(group))
            v = value(group)
            if v is None and not rows:
                continue
            yield Series(
                (("consumergroup", group.group_id),),
                v,
                group.stale or any(p.stale for p in rows),
                lower_bound(group),
            )

    return Measure(("consumergroup",), extract, numeric, unit)


def _lag_sum(view: ClusterView) -> Iterator[Series]:
    for group in view.groups.values():
        by_topic: dict[str, list[PartitionLag]] = {}
        for p in _committed(group):
            by_topic.setdefault(p.topic, []).append(p)
        for topic, rows in by_topic.items():
            # The sum of the lags that are known, as kafka_consumergroup_lag_sum shows it.
            known = [p.lag for p in rows if p.lag is not None]
            yield Series(
                (("consumergroup", group.group_id), ("topic", topic)),
                sum(known) if known else None,
                group.stale or any(p.stale for p in rows),
            )


def _dead_letters(
    value: Callable[[RetryTopics, str], Value | None], unit: str = "messages"
) -> Measure:
    """One series per dead-letter topic, labelled with its main topic."""

    def extract(view: ClusterView) -> Iterator[Series]:
        if view.insight is None:
            return
        for r in view.insight.retries.values():
            for topic in r.dead_letter_topics:
                yield Series(
                    (("main_topic", r.main_topic), ("topic", topic)), value(r, topic), False
                )

    return Measure(("main_topic", "topic"), extract, unit=unit)


def _retry_lag(view: ClusterView) -> Iterator[Series]:
    if view.insight is None:
        return
    for r in view.insight.retries.values():
        for (group, topic), lag in r.retry_lag.items():
            yield Series(
                (("consumergroup", group), ("main_topic", r.main_topic), ("topic", topic)),
                lag,
                False,
            )


def _max_is_lower_bound(group: GroupView) -> bool:
    # The group's maximum is a lower bound when some partition's value is one:
    # that partition may really be further behind than the maximum shown.
    return any(p.lag_seconds_lower_bound for p in group.partitions if p.lag_seconds is not None)


def per_cluster(value: Callable[[ClusterView], Value | None], unit: str) -> Measure:
    """A measure with one series per cluster (no labels but `cluster`)."""

    def extract(view: ClusterView) -> Iterator[Series]:
        yield Series((), value(view), False)

    return Measure((), extract, True, unit)


def _poll_age(view: ClusterView) -> float | None:
    # Seconds from the last successful poll to this one: how old the data is.
    h = view.health
    if h.last_poll_at is None or h.last_success_at is None:
        return None
    return max(0.0, h.last_poll_at - h.last_success_at)


# Measure name (a rule's `metric`) -> its series. One line per measure.
MEASURES: dict[str, Measure] = {
    "lag": per_partition(lambda p: p.lag),
    "lag_sum": Measure(("consumergroup", "topic"), _lag_sum),
    "max_lag": per_group(lambda g: g.max_lag),
    "lag_seconds": per_partition(
        lambda p: p.lag_seconds, lower_bound=lambda p: p.lag_seconds_lower_bound, unit="seconds"
    ),
    "max_lag_seconds": per_group(
        lambda g: g.max_lag_seconds, lower_bound=_max_is_lower_bound, unit="seconds"
    ),
    # Status words (OK, WARN, STOP, STALL, REWIND; ERR for groups), compared with == / !=.
    "status": per_partition(
        lambda p: str(p.status) if p.status else None, numeric=False, unit="status"
    ),
    "group_status": per_group(
        lambda g: str(g.status) if g.status else None, numeric=False, unit="status"
    ),
    # Retry and dead-letter topics (Spring Kafka's naming), labelled with their main topic.
    "dead_letter_messages": _dead_letters(lambda r, t: r.messages.get(t, 0)),
    "dead_letter_rate": _dead_letters(lambda r, t: r.messages_in.get(t), unit="messages/s"),
    "retry_lag": Measure(("consumergroup", "main_topic", "topic"), _retry_lag),
    # The exporter's own view of a cluster: 1 reached by the last poll, 0 not.
    "cluster_up": per_cluster(lambda v: 1 if v.health.up else 0, unit="up"),
    # Seconds since the last successful poll of the cluster (0 while polls succeed).
    "poll_age_seconds": per_cluster(_poll_age, unit="seconds"),
    # Per notifier, from its outbox: 1 while its last attempt failed and
    # something is queued, else 0. Evaluated with engine.evaluate_exporter.
    "notifications_failing": Measure(("notifier",), lambda view: iter(()), True, "failing", False),
}
