"""Partitioning insight: what a cluster view and its history say about partitions. Pure.

- **Partition advice** per group and topic. A topic has enough partitions
  when production x headroom <= capacity per partition x partitions, the
  rule of thumb that sizes topics and listener concurrency. Production comes
  from log-end offsets. Capacity is measured, not assumed: the rate at which
  the group commits while it has a backlog (see history.BusyMeter), so a
  consumer that keeps up is never mistaken for a slow one. A consumer thread
  that owns several partitions shares its time among them, so when the
  group's members and assignment are known, capacity is measured per member:
  its progress over all its partitions of the topic together, while any of
  them had a backlog (history.MemberKey); otherwise per partition.
- **Hot partitions**: a partition whose production rate (or a group's lag on
  it) is more than `hot_factor` times the mean of the other partitions: the
  mark of key-based partitioning with a dominant key.
- **Idle members** (no partition: more consumers than partitions) and
  **unowned partitions** (subscribed, but no member has them) of stable groups.
- **Retry and dead-letter topics** named like Spring Kafka's retryable
  topics, related to their main topic.

Where the data do not support a number (too few polls, consumers that never
had a backlog), the result says so and carries no number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .config import InsightConfig
from .history import BusyMeter, History
from .model import (
    CapacityMethod,
    ClusterInsight,
    ClusterView,
    GroupInsight,
    GroupView,
    Member,
    PartitionAdvice,
    PartitionLag,
    RetryTopics,
    TopicInsight,
    TopicView,
    Verdict,
)

# Group state in which assignments are settled, for both group protocols.
_STABLE = "Stable"
# Relative slack for ceil(): 25 x 1.2 / 10 is 3.0000000000000004 in floating point.
_SLACK = 1e-9


def skew(values: Iterable[float]) -> float | None:
    """Largest value / mean value: 1 when even, n when all of it is in one of n.

    None for fewer than two values or a zero total (nothing to compare).
    """
    items = list(values)
    total = sum(items)
    if len(items) < 2 or total <= 0:
        return None
    return max(items) * len(items) / total


def disproportionate(
    values: Mapping[int, float], factor: float, floor: float = 0.0
) -> tuple[int, ...]:
    """Keys whose value is above `floor` and above `factor` x the mean of the others.

    Comparing with the other partitions rather than with the overall mean
    works for two partitions too (one cannot exceed twice the overall mean of
    two), and a partition that takes everything is flagged however many
    partitions there are.
    """
    n = len(values)
    if n < 2:
        return ()
    total = sum(values.values())
    return tuple(
        sorted(
            key
            for key, value in values.items()
            if value > floor and value > factor * (total - value) / (n - 1)
        )
    )


def partitions_needed(production: float, capacity: float, headroom: float) -> int:
    """ceil(production x headroom / capacity), at least 1: a topic has one partition."""
    if capacity <= 0:
        raise ValueError("capacity must be positive")
    need = production * headroom / capacity
    return max(1, math.ceil(need - _SLACK * max(1.0, need)))


def classify_topic(topic: str, config: InsightConfig) -> tuple[str, str] | None:
    """('dead_letter' | 'retry', main topic) for a retry or dead-letter topic's name."""
    for kind, patterns in (
        ("dead_letter", config.dead_letter_patterns),
        ("retry", config.retry_patterns),
    ):
        for pattern in patterns:
            match = pattern.fullmatch(topic)
            if match and match.group("main"):
                return kind, match.group("main")
    return None


def build_insight(
    view: ClusterView,
    history: History,
    config: InsightConfig,
    *,
    now: float,
    allowed_lag: int,
) -> ClusterInsight:
    """Everything this module tells about one cluster, from its view and history."""
    topics = {name: topic_insight(t, config) for name, t in view.topics.items()}
    groups = {
        group_id: _group_insight(g, view, topics, history, config, now, allowed_lag)
        for group_id, g in view.groups.items()
    }
    return ClusterInsight(
        topics=topics,
        groups=groups,
        retries=retry_topics(view, config),
        headroom=config.headroom,
    )


def topic_insight(topic: TopicView, config: InsightConfig) -> TopicInsight:
    rates = topic.partition_rates
    total = topic.production_rate
    shares = {p: r / total for p, r in sorted(rates.items())} if total else {}
    hot: tuple[int, ...] = ()
    if total is not None and total >= config.hot_min_rate:
        hot = disproportionate(rates, config.hot_factor)
    return TopicInsight(
        topic=topic.topic,
        partitions=topic.partitions,
        production_rate=total,
        shares=shares,
        skew=skew(rates.values()),
        hot_partitions=hot,
    )


def _group_insight(
    group: GroupView,
    view: ClusterView,
    topics: Mapping[str, TopicInsight],
    history: History,
    config: InsightConfig,
    now: float,
    allowed_lag: int,
) -> GroupInsight:
    settled = (
        group.members_known
        and group.state == _STABLE
        and group.protocol_type == "consumer"
        and bool(group.members)
    )
    idle = tuple(m for m in group.members if not m.assignment) if settled else ()
    unowned = unowned_partitions(group.members, view.topics) if settled else {}
    # Rows carried over (stale) count as they are shown: the group's staleness
    # is reported apart, and its measurements are kept meanwhile.
    by_topic: dict[str, list[PartitionLag]] = {}
    for row in group.partitions:
        by_topic.setdefault(row.topic, []).append(row)
    advice = {
        topic: _advice(
            group, rows, view.topics[topic], topics[topic], history, config, now, allowed_lag
        )
        for topic, rows in sorted(by_topic.items())
        if topic in view.topics
    }
    return GroupInsight(
        group_id=group.group_id,
        members=len(group.members) if group.members_known else None,
        idle_members=idle,
        unowned=unowned,
        topics=advice,
    )


def unowned_partitions(
    members: Iterable[Member], topics: Mapping[str, TopicView]
) -> dict[str, tuple[int, ...]]:
    """Topic -> partitions of the topics the members subscribe to or own that no member owns."""
    owned: dict[str, set[int]] = {}
    wanted: set[str] = set()
    for m in members:
        wanted.update(m.subscribed_topics)
        for topic, partition in m.assignment:
            owned.setdefault(topic, set()).add(partition)
    wanted.update(owned)
    out: dict[str, tuple[int, ...]] = {}
    for topic in sorted(wanted):
        view = topics.get(topic)
        if view is None:
            continue  # filtered out, or not created yet
        have = owned.get(topic, set())
        missing = tuple(p for p in range(view.partitions) if p not in have)
        if missing:
            out[topic] = missing
    return out


# (seconds with a backlog within the capacity window, messages committed
# meanwhile, ordinary consumption rate over rate_window or None). A plain
# tuple: there is one per group partition and poll.
_Busy = tuple[float, float, float | None]


_NEVER_BUSY: _Busy = (0.0, 0.0, None)


@dataclass(frozen=True, slots=True)
class _Capacity:
    method: CapacityMethod
    value: float | None
    measured: int
    busy_seconds: float
    at_least: float | None
    consumers: int | None
    longest_busy: float  # longest busy time measured, even below the minimum


def _busy(meter: BusyMeter | None, now: float, window: float, rate: float | None) -> _Busy:
    if meter is None:
        return _NEVER_BUSY if rate is None else (0.0, 0.0, rate)
    seconds, messages = meter.totals(now, window)
    return seconds, messages, rate


def _measure(units: list[_Busy], min_busy: float) -> tuple[float | None, int, float]:
    """(mean busy rate of the units busy long enough, how many, the least busy time)."""
    busy = [u for u in units if u[0] >= min_busy and u[0] > 0]
    if not busy:
        return None, 0, 0.0
    return sum(u[1] / u[0] for u in busy) / len(busy), len(busy), min(u[0] for u in busy)


def _capacity(
    group: GroupView,
    rows: list[PartitionLag],
    history: History,
    config: InsightConfig,
    now: float,
) -> _Capacity:
    topic = rows[0].topic
    by_partition = {r.partition: r for r in rows}
    window = config.capacity_window
    owners: list[_Busy] = []
    if group.members_known:
        for m in group.members:
            owned = sorted(p for t, p in m.assignment if t == topic and p in by_partition)
            if not owned:
                continue
            rates = [by_partition[p].consumption_rate for p in owned]
            known = [r for r in rates if r is not None]
            meter = history.members.get((group.group_id, topic, m.member_id, tuple(owned)))
            owners.append(_busy(meter, now, window, sum(known) if known else None))
    if owners:
        method = CapacityMethod.MEMBER
        units = owners
    else:
        method = CapacityMethod.PARTITION
        units = []
        commits = history.commits
        group_id = group.group_id
        for r in rows:
            track = commits.get((group_id, (topic, r.partition)))
            meter = track.busy if track is not None else None
            units.append(_busy(meter, now, window, r.consumption_rate))
    value, measured, least = _measure(units, config.min_busy_time)
    observed = [u[2] for u in units if u[2] is not None]
    return _Capacity(
        method=method,
        value=value,
        measured=measured,
        busy_seconds=least,
        at_least=max(observed) if observed else None,
        consumers=len(owners) if owners else None,
        longest_busy=max((u[0] for u in units), default=0.0),
    )


def _advice(
    group: GroupView,
    rows: list[PartitionLag],
    topic: TopicView,
    spread: TopicInsight,
    history: History,
    config: InsightConfig,
    now: float,
    allowed_lag: int,
) -> PartitionAdvice:
    lags = {r.partition: float(r.lag) for r in rows if r.lag is not None}
    lag = int(sum(lags.values()))
    rates = group.topic_rates.get(topic.topic)
    consumption = rates.consumption_rate if rates is not None else None
    production = topic.production_rate
    capacity = _capacity(group, rows, history, config, now)

    needed: int | None = None
    consumers_needed: int | None = None
    overloaded: tuple[int, ...] = ()
    if production is None:
        verdict = Verdict.NOT_ENOUGH_DATA
        reason = "fewer than two polls of log-end offsets: production rate unknown"
    elif consumption == 0 and lag > allowed_lag:
        verdict = Verdict.NOT_CONSUMING
        reason = (
            f"no commits in the window while {lag} messages wait: the consumers are stopped "
            "or stuck (see the group's status), more partitions would not help"
        )
    elif capacity.value is None:
        verdict, reason = _unmeasured(capacity, production, consumption, lag, allowed_lag, config)
    else:
        needed = partitions_needed(production, capacity.value, config.headroom)
        if capacity.method is CapacityMethod.MEMBER:
            # One consumer thread per partition at most: the extra ones sit idle.
            consumers_needed = needed
        # A hot partition that alone needs more than one consumer: a dominant
        # key, which no number of partitions splits.
        limit = capacity.value / config.headroom
        overloaded = tuple(
            p for p in spread.hot_partitions if topic.partition_rates.get(p, 0.0) > limit
        )
        verdict, reason = _verdict(
            needed, consumers_needed, topic.partitions, capacity, overloaded, topic, config
        )
    return PartitionAdvice(
        group_id=group.group_id,
        topic=topic.topic,
        partitions=topic.partitions,
        consumers=capacity.consumers,
        production_rate=production,
        consumption_rate=consumption,
        lag=lag,
        headroom=config.headroom,
        method=capacity.method,
        capacity=capacity.value,
        capacity_measured=capacity.measured,
        busy_seconds=capacity.busy_seconds,
        capacity_at_least=capacity.at_least if capacity.value is None else None,
        partitions_needed=needed,
        consumers_needed=consumers_needed,
        overloaded_partitions=overloaded,
        lag_skew=skew(lags.values()) if lag > allowed_lag else None,
        hot_lag_partitions=disproportionate(lags, config.hot_factor, floor=allowed_lag),
        verdict=verdict,
        reason=reason,
    )


def _unmeasured(
    capacity: _Capacity,
    production: float,
    consumption: float | None,
    lag: int,
    allowed_lag: int,
    config: InsightConfig,
) -> tuple[Verdict, str]:
    if consumption is None:
        return Verdict.NOT_ENOUGH_DATA, (
            "fewer than two polls of committed offsets: consumption rate unknown"
        )
    if production == 0 and lag <= allowed_lag:
        return Verdict.NEVER_SATURATED, "nothing produced or waiting during the window"
    if capacity.longest_busy > 0:
        return Verdict.NOT_ENOUGH_DATA, (
            f"busy for {capacity.longest_busy:.0f} s so far; capacity needs "
            f"{config.min_busy_time:.0f} s of backlog (insight.min_busy_time)"
        )
    unit = "consumer" if capacity.method is CapacityMethod.MEMBER else "partition"
    floor = (
        f"; capacity is at least {capacity.at_least:.1f} msg/s per {unit}"
        if capacity.at_least
        else ""
    )
    return Verdict.NEVER_SATURATED, (
        f"consumers kept up, never had a backlog to measure their capacity{floor}"
    )


def _verdict(
    needed: int,
    consumers_needed: int | None,
    partitions: int,
    capacity: _Capacity,
    overloaded: tuple[int, ...],
    topic: TopicView,
    config: InsightConfig,
) -> tuple[Verdict, str]:
    assert capacity.value is not None
    hot_note = ""
    if overloaded:
        worst = max(overloaded, key=lambda p: topic.partition_rates[p])
        hot_note = (
            f"; partition {worst} alone receives {topic.partition_rates[worst]:.1f} msg/s, "
            f"more than one consumer handles with headroom {config.headroom:g} "
            f"({capacity.value:.1f} msg/s): more partitions do not split one key's messages"
        )
    if needed > partitions:
        consumers = f" and run {consumers_needed} consumers" if consumers_needed else ""
        return Verdict.ADD_PARTITIONS, (
            f"needs {needed} partitions, has {partitions}: add {needed - partitions}"
            f"{consumers}{hot_note}"
        )
    if (
        consumers_needed is not None
        and capacity.consumers is not None
        and consumers_needed > capacity.consumers
    ):
        return Verdict.ADD_CONSUMERS, (
            f"{partitions} partitions are enough (needs {needed}); run {consumers_needed} "
            f"consumers, has {capacity.consumers}{hot_note}"
        )
    if overloaded:
        return Verdict.HOT_PARTITION, f"enough on average (needs {needed}){hot_note}"
    spare = (
        f"; {partitions - needed} more than needed, and partitions cannot be removed"
        if needed < partitions
        else ""
    )
    return Verdict.ENOUGH, f"{partitions} partitions are enough (needs {needed}){spare}"


def retry_topics(view: ClusterView, config: InsightConfig) -> dict[str, RetryTopics]:
    """Main topic -> its retry and dead-letter topics, with their traffic and backlog."""
    kinds: dict[str, dict[str, list[str]]] = {}
    for name in view.topics:
        found = classify_topic(name, config)
        if found is not None:
            kind, main = found
            kinds.setdefault(main, {"retry": [], "dead_letter": []})[kind].append(name)
    # Groups' lag on every retry topic, in one pass over the groups.
    retry_names = {name for found_kinds in kinds.values() for name in found_kinds["retry"]}
    lag_on: dict[str, dict[tuple[str, str], int]] = {}
    if retry_names:
        for g in view.groups.values():
            for r in g.partitions:
                if r.topic in retry_names and r.lag is not None:
                    lags = lag_on.setdefault(r.topic, {})
                    key = (g.group_id, r.topic)
                    lags[key] = lags.get(key, 0) + r.lag
    out: dict[str, RetryTopics] = {}
    for main, found_kinds in sorted(kinds.items()):
        related = found_kinds["retry"] + found_kinds["dead_letter"]
        messages_in: dict[str, float] = {}
        messages: dict[str, int] = {}
        for name in related:
            t = view.topics[name]
            if t.production_rate is not None:
                messages_in[name] = t.production_rate
            messages[name] = sum(
                o.log_end - o.log_start
                for o in t.offsets.values()
                if o.log_end is not None and o.log_start is not None
            )
        retry_lag = {
            key: lag for name in found_kinds["retry"] for key, lag in lag_on.get(name, {}).items()
        }
        out[main] = RetryTopics(
            main_topic=main,
            main_exists=main in view.topics,
            retry_topics=tuple(sorted(found_kinds["retry"])),
            dead_letter_topics=tuple(sorted(found_kinds["dead_letter"])),
            messages_in=messages_in,
            messages=messages,
            retry_lag=dict(sorted(retry_lag.items())),
        )
    return out
