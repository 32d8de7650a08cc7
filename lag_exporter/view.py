"""One poll plus the recent past -> what the exporter reports for a cluster.

Pure. A value this poll could not read is carried from the previous view for
at most `max_staleness` seconds and marked stale; a value this poll knows to
be gone (topic deleted, group no longer listed) disappears at once. So a
broker outage makes the report partial and honest, never empty and never
silently old.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import NameFilter
from .lag import partition_lag
from .model import (
    ClusterHealth,
    ClusterView,
    ErrorKind,
    GroupDescription,
    GroupView,
    Member,
    PartitionLag,
    PartitionOffsets,
    PollError,
    PollResult,
    TopicPartition,
    TopicView,
)

# Groups in this state have no members and no offsets to report.
_GONE_STATES = frozenset({"Dead"})


def build_view(
    poll: PollResult,
    previous: ClusterView | None,
    *,
    labels: dict[str, str],
    topic_filter: NameFilter,
    max_staleness: float,
    health: ClusterHealth,
) -> tuple[ClusterView, list[PollError]]:
    """Returns the view and notices worth one log line (topics deleted under a group)."""
    now = poll.started_at

    def young(read_at: float) -> bool:
        return now - read_at <= max_staleness

    topics = _topic_views(poll, previous, young)
    notices: list[PollError] = []
    groups: dict[str, GroupView] = {}

    for group_id, committed in poll.committed.items():
        description = poll.groups.get(group_id)
        if description is None or (description.state in _GONE_STATES and not committed):
            continue
        before = previous.groups.get(group_id) if previous else None
        groups[group_id] = _group_view(
            description, committed, poll, topics, topic_filter, before, notices, young
        )

    # Groups listed but whose offsets were not read, or not seen this poll:
    # carry the last good view while it is young enough, unless known gone.
    candidates = set(poll.groups) | (set(previous.groups) if previous else set())
    for group_id in candidates - set(groups):
        description = poll.groups.get(group_id)
        known_gone = description is None and poll.groups_complete and poll.reached
        if known_gone or (description is not None and description.state in _GONE_STATES):
            continue
        before = previous.groups.get(group_id) if previous else None
        if group_id in poll.failed_groups or description is None:
            if before is not None and young(before.read_at):
                groups[group_id] = _as_stale(before, description)
            continue
        # Listed, offsets read fine but empty (no commits): report state and members.
        groups[group_id] = _group_view(
            description, {}, poll, topics, topic_filter, before, notices, young
        )

    if previous is not None and poll.topics_complete:
        for topic in sorted(set(previous.topics) - set(topics)):
            holders = sorted(
                g.group_id
                for g in previous.groups.values()
                if any(p.topic == topic for p in g.partitions)
            )
            notices.append(
                PollError(
                    ErrorKind.TOPIC_DELETED,
                    f"topic {topic!r} no longer exists; dropping its series"
                    + (f" (groups with offsets on it: {', '.join(holders)})" if holders else ""),
                    topic=topic,
                )
            )

    view = ClusterView(
        cluster=poll.cluster,
        labels=labels,
        brokers=poll.brokers,
        topics=topics,
        groups=dict(sorted(groups.items())),
        health=health,
    )
    return view, notices


def _topic_views(
    poll: PollResult, previous: ClusterView | None, young: Callable[[float], bool]
) -> dict[str, TopicView]:
    by_topic: dict[str, dict[int, PartitionOffsets]] = {}
    for (topic, partition), read in poll.partition_offsets.items():
        by_topic.setdefault(topic, {})[partition] = read

    out: dict[str, TopicView] = {}
    names = set(poll.topics)
    if previous is not None and not poll.topics_complete:
        names |= set(previous.topics)  # metadata unread: keep what we knew, bounded below
    for topic in sorted(names):
        fresh = by_topic.get(topic, {})
        before = previous.topics.get(topic) if previous else None
        count = poll.topics.get(topic, before.partitions if before else 0)
        offsets = dict(fresh)
        if before is not None:
            for partition, old in before.offsets.items():
                if partition not in offsets and partition < count and young(old.read_at):
                    offsets[partition] = old
        if topic not in poll.topics and not offsets:
            continue
        out[topic] = TopicView(topic, count, dict(sorted(offsets.items())))
    return out


def _group_view(
    description: GroupDescription,
    committed: dict[TopicPartition, int],
    poll: PollResult,
    topics: dict[str, TopicView],
    topic_filter: NameFilter,
    before: GroupView | None,
    notices: list[PollError],
    young: Callable[[float], bool],
) -> GroupView:
    owner: dict[TopicPartition, Member] = {}
    for member in description.members:
        for tp in member.assignment:
            owner[tp] = member

    rows: list[PartitionLag] = []
    uncommitted = 0
    deleted_topics: set[str] = set()
    previous_rows = (
        {(p.topic, p.partition): p for p in before.partitions} if before is not None else {}
    )
    for tp in sorted(set(committed) | set(owner)):
        topic, partition = tp
        if not topic_filter.accepts(topic):
            continue
        view = topics.get(topic)
        if view is None or partition >= view.partitions:
            if poll.topics_complete and topic not in poll.failed_topics:
                deleted_topics.add(topic)
            elif (old := previous_rows.get(tp)) is not None and old.log_end is not None:
                rows.append(_stale_row(old))
            continue
        offsets = view.offsets.get(partition)
        position = committed.get(tp)
        if position is None or position < 0:
            uncommitted += 1
            position = None
        log_start = offsets.log_start if offsets else None
        log_end = offsets.log_end if offsets else None
        lag = partition_lag(position, log_start, log_end)
        rows.append(
            PartitionLag(
                topic=topic,
                partition=partition,
                committed=position,
                log_start=log_start,
                log_end=log_end,
                lag=lag.lag,
                lost_to_retention=lag.lost_to_retention,
                member=owner.get(tp),
                stale=offsets is None or offsets.read_at < poll.started_at,
            )
        )

    had = {p.topic for p in before.partitions} if before is not None else deleted_topics
    for topic in sorted(deleted_topics & had):
        notices.append(
            PollError(
                ErrorKind.TOPIC_DELETED,
                f"group {description.group_id!r} holds offsets for topic {topic!r}, "
                "which no longer exists; not reporting them",
                group=description.group_id,
                topic=topic,
            )
        )

    return GroupView(
        group_id=description.group_id,
        state=description.state,
        protocol_type=description.protocol_type,
        protocol=description.protocol,
        coordinator=description.coordinator,
        members=description.members,
        members_known=description.described,
        partitions=tuple(rows),
        uncommitted_partitions=uncommitted,
        stale=False,
        read_at=poll.started_at,
    )


def _stale_row(row: PartitionLag) -> PartitionLag:
    return PartitionLag(
        row.topic,
        row.partition,
        row.committed,
        row.log_start,
        row.log_end,
        row.lag,
        row.lost_to_retention,
        row.member,
        stale=True,
    )


def _as_stale(before: GroupView, description: GroupDescription | None) -> GroupView:
    """The last good view of a group whose offsets this poll could not read."""
    return GroupView(
        group_id=before.group_id,
        state=description.state if description else before.state,
        protocol_type=before.protocol_type,
        protocol=before.protocol,
        coordinator=before.coordinator,
        members=before.members,
        members_known=before.members_known,
        partitions=tuple(_stale_row(p) for p in before.partitions),
        uncommitted_partitions=before.uncommitted_partitions,
        stale=True,
        read_at=before.read_at,
    )
