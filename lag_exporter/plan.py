"""Cluster views after a measuring run -> the `plan` report, as text or JSON. Pure.

The report says, per topic and consuming group, how many partitions and
consumers the measured rates call for, which partitions are hot, which
members sit idle, and how retry and dead-letter topics fill up; and it says
Kafka's rules that any change of partitions must respect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .model import (
    CapacityMethod,
    ClusterInsight,
    ClusterView,
    GroupView,
    PartitionAdvice,
    RetryTopics,
    TopicInsight,
    Verdict,
)

KAFKA_RULES = (
    "Partitions can be added to a topic but never removed: size for the rate you expect, "
    "not far beyond it.",
    "Adding partitions changes which partition a key goes to (hash of the key modulo the "
    "number of partitions): messages of one key produced before and after the change may be "
    "consumed out of order. Where per-key order matters, add partitions while producers are "
    "paused and consumers have caught up, or move to a new topic.",
    "A partition is consumed by at most one member of a group: consumers beyond the number "
    "of partitions sit idle.",
)


@dataclass(frozen=True, slots=True)
class Run:
    """How the measurements were taken."""

    polls: int
    duration: float  # seconds from the first poll to the last
    interval: float  # seconds between polls
    interrupted: bool = False


def _rate(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _advice_document(a: PartitionAdvice) -> dict[str, Any]:
    return {
        "group": a.group_id,
        "verdict": str(a.verdict),
        "reason": a.reason,
        "partitions": a.partitions,
        "partitions_needed": a.partitions_needed,
        "consumers": a.consumers,
        "consumers_needed": a.consumers_needed,
        "production_rate": _rate(a.production_rate),
        "consumption_rate": _rate(a.consumption_rate),
        "lag": a.lag,
        "lag_skew": _rate(a.lag_skew),
        "hot_lag_partitions": list(a.hot_lag_partitions),
        "capacity_per_partition": _rate(a.capacity),
        "capacity_method": str(a.method),
        "capacity_measured": a.capacity_measured,
        "capacity_at_least": _rate(a.capacity_at_least),
        "busy_seconds": round(a.busy_seconds, 1),
        "overloaded_partitions": list(a.overloaded_partitions),
        "headroom": a.headroom,
    }


def _topic_document(
    t: TopicInsight, rates: dict[int, float], advice: list[PartitionAdvice]
) -> dict[str, Any]:
    return {
        "topic": t.topic,
        "partitions": t.partitions,
        "production_rate": _rate(t.production_rate),
        "partition_rates": {
            str(p): {"rate": _rate(r), "share": _rate(t.shares.get(p))}
            for p, r in sorted(rates.items())
        },
        "skew": _rate(t.skew),
        "hot_partitions": list(t.hot_partitions),
        "groups": [_advice_document(a) for a in advice],
    }


def _retry_document(r: RetryTopics) -> dict[str, Any]:
    return {
        "main_topic": r.main_topic,
        "main_topic_exists": r.main_exists,
        "retry_topics": list(r.retry_topics),
        "dead_letter_topics": list(r.dead_letter_topics),
        "retry_rate": _rate(r.retry_rate),
        "retry_backlog": r.retry_backlog,
        "retry_lag": [
            {"group": group, "topic": topic, "lag": lag}
            for (group, topic), lag in r.retry_lag.items()
        ],
        "dead_letter_rate": _rate(r.dead_letter_rate),
        "dead_letter_messages": r.dead_letter_messages,
        "messages_in": {t: _rate(v) for t, v in r.messages_in.items()},
        "messages": dict(r.messages),
    }


def _consumed_topics(insight: ClusterInsight) -> dict[str, list[PartitionAdvice]]:
    by_topic: dict[str, list[PartitionAdvice]] = {}
    for g in insight.groups.values():
        for a in g.topics.values():
            by_topic.setdefault(a.topic, []).append(a)
    return by_topic


def _reported_topics(insight: ClusterInsight) -> list[str]:
    """Topics some group consumes, and topics with hot partitions."""
    consumed = _consumed_topics(insight)
    return sorted(
        name for name, t in insight.topics.items() if name in consumed or t.hot_partitions
    )


def _group_document(g: GroupView, insight: ClusterInsight) -> dict[str, Any]:
    gi = insight.groups.get(g.group_id)
    return {
        "group": g.group_id,
        "state": g.state,
        "group_type": g.group_type,
        "protocol": g.protocol,
        "members": len(g.members) if g.members_known else None,
        "idle_members": [
            {"member_id": m.member_id, "client_id": m.client_id, "host": m.host}
            for m in (gi.idle_members if gi else ())
        ],
        "unowned_partitions": {t: list(ps) for t, ps in (gi.unowned.items() if gi else ())},
    }


def plan_document(views: Sequence[ClusterView], run: Run) -> dict[str, Any]:
    """The report as one JSON-ready document."""
    clusters = []
    for view in views:
        insight = view.insight
        doc: dict[str, Any] = {"cluster": view.cluster, "up": view.health.up}
        if insight is not None:
            consumed = _consumed_topics(insight)
            doc["headroom"] = insight.headroom
            doc["topics"] = [
                _topic_document(
                    insight.topics[name],
                    view.topics[name].partition_rates,
                    consumed.get(name, []),
                )
                for name in _reported_topics(insight)
            ]
            doc["groups"] = [_group_document(g, insight) for g in view.groups.values()]
            doc["retry_topics"] = [_retry_document(r) for r in insight.retries.values()]
        clusters.append(doc)
    return {
        "polls": run.polls,
        "duration_seconds": round(run.duration, 1),
        "poll_interval_seconds": run.interval,
        "interrupted": run.interrupted,
        "kafka_rules": list(KAFKA_RULES),
        "clusters": clusters,
    }


# --- text --------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def _advice_lines(a: PartitionAdvice, g: GroupView | None) -> list[str]:
    if g is not None:
        kind = {"consumer": "consumer protocol", "classic": "classic"}.get(
            g.group_type, g.group_type or g.protocol_type or "group"
        )
        members = f", {_plural(len(g.members), 'member')}" if g.members_known else ""
        head = f"  group {a.group_id} [{kind}, {g.state}{members}]"
    else:
        head = f"  group {a.group_id}"
    lines = [head]
    trend = ""
    if a.consumption_rate is not None and a.production_rate is not None and a.lag:
        diff = a.production_rate - a.consumption_rate
        if abs(diff) < 0.05:
            trend = ", steady"
        else:
            trend = f", {'growing' if diff > 0 else 'shrinking'} {abs(diff):.1f} msg/s"
    skew = f", lag skew {a.lag_skew:.2f}" if a.lag_skew is not None else ""
    hot_lag = (
        f", disproportionate lag on partition(s) {_list(a.hot_lag_partitions)}"
        if a.hot_lag_partitions
        else ""
    )
    lines.append(
        f"    consumed {_num(a.consumption_rate)} msg/s, lag {a.lag}{trend}{skew}{hot_lag}"
    )
    unit = "consumer" if a.method is CapacityMethod.MEMBER else "partition"
    measured = "member" if a.method is CapacityMethod.MEMBER else "partition"
    if a.capacity is not None:
        each = " each" if a.capacity_measured > 1 else ""
        lines.append(
            f"    capacity {a.capacity:.1f} msg/s per {unit} "
            f"(measured on {_plural(a.capacity_measured, 'busy ' + measured)},{each} "
            f"with a backlog for {a.busy_seconds:.0f} s or more)"
        )
    if a.partitions_needed is not None and a.capacity is not None:
        consumers = (
            f", {_plural(a.consumers_needed, 'consumer')} (have {a.consumers})"
            if a.consumers_needed is not None
            else ""
        )
        lines.append(
            f"    needed {_plural(a.partitions_needed, 'partition')} (have {a.partitions})"
            f"{consumers}"
            f" = ceil({_num(a.production_rate)} x {a.headroom:g} / {a.capacity:.1f})"
        )
    lines.append(f"    => {a.verdict}: {a.reason}")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _list(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


def _topic_lines(
    t: TopicInsight,
    rates: dict[int, float],
    advice: list[PartitionAdvice],
    groups: dict[str, GroupView],
) -> list[str]:
    lines = [
        f"topic {t.topic} ({_plural(t.partitions, 'partition')}): "
        f"{_num(t.production_rate)} msg/s produced"
    ]
    if rates:
        spread = ", ".join(
            f"{p}: {r:.1f} ({t.shares.get(p, 0) * 100:.0f}%)" for p, r in sorted(rates.items())
        )
        skew = f"; skew {t.skew:.2f}" if t.skew is not None else ""
        lines.append(f"  by partition {spread}{skew}")
    for p in t.hot_partitions:
        lines.append(
            f"  hot partition {p}: {t.shares.get(p, 0) * 100:.0f}% of the messages, "
            "the mark of a dominant key"
        )
    for a in advice:
        lines.extend(_advice_lines(a, groups.get(a.group_id)))
    return lines


def _group_lines(view: ClusterView, insight: ClusterInsight) -> list[str]:
    lines: list[str] = []
    for g in view.groups.values():
        gi = insight.groups.get(g.group_id)
        if gi is None:
            continue
        notes = []
        if gi.idle_members:
            names = ", ".join(sorted(m.client_id or m.member_id for m in gi.idle_members))
            notes.append(
                f"{len(gi.idle_members)} of {gi.members} members idle ({names}): "
                "more consumers than partitions"
            )
        for topic, missing in gi.unowned.items():
            notes.append(f"partition(s) {_list(missing)} of {topic} have no owner")
        if g.group_type == "share":
            notes.append(f"share group, state {g.state} (no committed offsets to report)")
        for note in notes:
            lines.append(f"  {g.group_id}: {note}")
    return lines


def _retry_lines(insight: ClusterInsight) -> list[str]:
    lines: list[str] = []
    for r in insight.retries.values():
        missing = "" if r.main_exists else " (main topic not found)"
        lines.append(f"  {r.main_topic}{missing}")
        for topic in r.retry_topics:
            backlog = sum(lag for (_, t), lag in r.retry_lag.items() if t == topic)
            lines.append(
                f"    retry {topic}: {_num(r.messages_in.get(topic))} msg/s in, backlog {backlog}"
            )
        for topic in r.dead_letter_topics:
            lines.append(
                f"    dead letters {topic}: {r.messages.get(topic, 0)} messages, "
                f"{_num(r.messages_in.get(topic))} msg/s in"
            )
    return lines


def plan_text(views: Sequence[ClusterView], run: Run) -> str:
    """The report for a terminal."""
    out: list[str] = []
    every = f"every {run.interval:g} s"
    status = " (interrupted)" if run.interrupted else ""
    for view in views:
        insight = view.insight
        out.append(
            f"cluster {view.cluster}: {run.polls} polls over {run.duration:.0f} s ({every})"
            f"{status}" + (f", headroom {insight.headroom:g}" if insight else "")
        )
        if not view.health.up:
            out.append("  not reachable at the last poll")
        if insight is None:
            continue
        if run.polls < 2:
            out.append("  not enough polls to measure any rate; run longer")
        consumed = _consumed_topics(insight)
        for name in _reported_topics(insight):
            out.append("")
            out.extend(
                _topic_lines(
                    insight.topics[name],
                    view.topics[name].partition_rates,
                    consumed.get(name, []),
                    view.groups,
                )
            )
        groups = _group_lines(view, insight)
        if groups:
            out.extend(["", "groups", *groups])
        retries = _retry_lines(insight)
        if retries:
            out.extend(["", "retry and dead-letter topics", *retries])
        out.append("")
    verdicts = {
        a.verdict
        for v in views
        if v.insight
        for g in v.insight.groups.values()
        for a in g.topics.values()
    }
    if Verdict.NEVER_SATURATED in verdicts or Verdict.NOT_ENOUGH_DATA in verdicts:
        out.append(
            "Capacity is only measured while a consumer has a backlog; where none had one, "
            "or not for long enough, no number is given rather than a guess."
        )
        out.append("")
    out.append("Kafka's rules")
    out.extend(f"  - {rule}" for rule in KAFKA_RULES)
    return "\n".join(out) + "\n"
