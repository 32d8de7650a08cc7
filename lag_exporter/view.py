"""One poll plus the recent past -> what the exporter reports for a cluster.

Pure. A value this poll could not read is carried from the previous view for
at most `max_staleness` seconds and marked stale; a value this poll knows to
be gone (topic deleted, group no longer listed) disappears at once. So a
broker outage makes the report partial and honest, never empty and never
silently old.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from .config import ClusterConfig, InsightConfig, NameFilter
from .history import History, MemberKey
from .insight import build_insight
from .lag import partition_lag
from .model import (
    ClusterHealth,
    ClusterView,
    ErrorKind,
    GroupDescription,
    GroupTopicRates,
    GroupView,
    Member,
    PartitionLag,
    PartitionOffsets,
    PollError,
    PollResult,
    TopicPartition,
    TopicView,
)
from .status import Status, StatusRules, group_status, partition_status
from .timelag import time_lag

# Groups in this state have no members and no offsets to report.
_GONE_STATES = frozenset({"Dead"})


@dataclass(frozen=True, slots=True)
class Derivation:
    """How time lag, status and rates are derived from a cluster's history."""

    history: History
    status_rules: StatusRules = field(default_factory=StatusRules)
    rate_window: float = 300.0
    # Groups whose lag seconds come from record timestamps when the poll read them.
    exact_groups: NameFilter | None = None
    # Partition advice, hot partitions, idle members, retry topics; None: not computed.
    insight: InsightConfig | None = None

    @classmethod
    def for_cluster(cls, cluster: ClusterConfig) -> Derivation:
        """A fresh history and the rules a cluster's configuration asks for."""
        return cls(
            History(size=cluster.lag_seconds.history_size, window=cluster.status.window),
            StatusRules(
                allowed_lag=cluster.status.allowed_lag,
                window=cluster.status.window,
                stop_after=cluster.status.stop_after,
                stop_after_max=cluster.status.stop_after_max,
            ),
            rate_window=cluster.rate_window,
            exact_groups=cluster.lag_seconds.exact_groups,
            insight=cluster.insight,
        )


def build_view(
    poll: PollResult,
    previous: ClusterView | None,
    *,
    labels: dict[str, str],
    topic_filter: NameFilter,
    max_staleness: float,
    health: ClusterHealth,
    derive: Derivation | None = None,
) -> tuple[ClusterView, list[PollError]]:
    """Returns the view and notices worth one log line (topics deleted under a group).

    With `derive`, the poll's offsets are added to the cluster's history and
    each row gets its lag in seconds, status and rates from it.
    """
    now = poll.started_at

    def young(read_at: float) -> bool:
        return now - read_at <= max_staleness

    if derive is not None:
        derive.history.begin_poll()
        if poll.cluster_id:
            derive.history.cluster_id = poll.cluster_id
        for tp, read in poll.partition_offsets.items():
            if read.log_end is not None:
                derive.history.add_end(tp, read.read_at, read.log_end)
        # Offsets went back (topic re-created): every group's track there restarts.
        derive.history.forget_pairs_on(derive.history.resets)
    topics = _topic_views(poll, previous, young, derive)
    notices: list[PollError] = []
    groups: dict[str, GroupView] = {}

    for group_id, committed in poll.committed.items():
        description = poll.groups.get(group_id)
        if description is None or (description.state in _GONE_STATES and not committed):
            continue
        before = previous.groups.get(group_id) if previous else None
        groups[group_id] = _group_view(
            description, committed, poll, topics, topic_filter, before, notices, derive
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
            description, {}, poll, topics, topic_filter, before, notices, derive
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

    if derive is not None and derive.insight is not None:
        derive.history.retain_members(
            _observe_members(groups.values(), topics, derive, derive.insight.capacity_window)
        )
    if derive is not None and poll.reached and poll.topics_complete and poll.groups_complete:
        # Histories of partitions and pairs known to be gone are dropped. Pairs
        # observed this poll (fresh rows with a status) are kept by History's own
        # mark; rows still reported without being re-read are named here, and so
        # are partitions of topics that still exist and pairs of groups whose
        # offsets could not be read: their series may go after max_staleness,
        # their history stays, so values come back where they were. A poll that
        # did not see the whole cluster forgets nothing.
        derive.history.retain(
            itertools.chain(
                ((t.topic, p) for t in topics.values() for p in t.offsets),
                (
                    tp
                    for tp in derive.history.ends
                    if tp[0] in poll.failed_topics or tp[1] < poll.topics.get(tp[0], 0)
                ),
            ),
            itertools.chain(
                (
                    (g.group_id, (r.topic, r.partition))
                    for g in groups.values()
                    for r in g.partitions
                    if r.stale or r.status is None
                ),
                (key for key in derive.history.commits if key[0] in poll.failed_groups)
                if poll.failed_groups
                else (),
            ),
        )

    view = ClusterView(
        cluster=poll.cluster,
        labels=labels,
        brokers=poll.brokers,
        topics=topics,
        groups=dict(sorted(groups.items())),
        health=health,
    )
    if derive is not None and derive.insight is not None:
        view = replace(
            view,
            insight=build_insight(
                view,
                derive.history,
                derive.insight,
                now=now,
                allowed_lag=derive.status_rules.allowed_lag,
            ),
        )
    return view, notices


def _topic_views(
    poll: PollResult,
    previous: ClusterView | None,
    young: Callable[[float], bool],
    derive: Derivation | None,
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
        rates: dict[int, float] = {}
        if derive is not None:
            for partition in offsets:
                h = derive.history.ends.get((topic, partition))
                rate = h.rate(derive.rate_window) if h is not None else None
                if rate is not None:
                    rates[partition] = rate
        out[topic] = TopicView(
            topic,
            count,
            dict(sorted(offsets.items())),
            production_rate=sum(rates.values()) if rates else None,
            partition_rates=rates,
        )
    return out


def _group_view(
    description: GroupDescription,
    committed: dict[TopicPartition, int],
    poll: PollResult,
    topics: dict[str, TopicView],
    topic_filter: NameFilter,
    before: GroupView | None,
    notices: list[PollError],
    derive: Derivation | None,
) -> GroupView:
    owner: dict[TopicPartition, Member] = {}
    for member in description.members:
        for tp in member.assignment:
            owner[tp] = member

    rows: list[PartitionLag] = []
    uncommitted = 0
    deleted_topics: set[str] = set()
    # The previous rows by partition, built only when a row has to be carried.
    previous_rows: dict[TopicPartition, PartitionLag] | None = None
    group_id = description.group_id
    # Record timestamps of committed offsets, for groups whose lag seconds are exact.
    timestamps = (
        poll.record_timestamps
        if derive is not None
        and derive.exact_groups is not None
        and derive.exact_groups.accepts(group_id)
        else None
    )
    accepted: dict[str, bool] = {}  # the topic filter's answer, asked once per topic
    for tp in sorted(set(committed).union(owner)) if owner else sorted(committed):
        topic, partition = tp
        accept = accepted.get(topic)
        if accept is None:
            accept = accepted[topic] = topic_filter.accepts(topic)
        if not accept:
            continue
        view = topics.get(topic)
        if view is None or partition >= view.partitions:
            if poll.topics_complete and topic not in poll.failed_topics:
                deleted_topics.add(topic)
            elif before is not None:
                if previous_rows is None:
                    previous_rows = {(p.topic, p.partition): p for p in before.partitions}
                old = previous_rows.get(tp)
                if old is not None and old.log_end is not None:
                    rows.append(_stale_row(old))
            continue
        offsets = view.offsets.get(partition)
        position = committed.get(tp)
        if position is None or position < 0:
            uncommitted += 1
            position = None
        log_start = offsets.log_start if offsets else None
        log_end = offsets.log_end if offsets else None
        lag, lost = partition_lag(position, log_start, log_end)
        stale = offsets is None or offsets.read_at < poll.started_at
        holder = owner.get(tp)
        if (
            derive is not None
            and not stale
            and offsets is not None
            and position is not None
            and lag is not None
        ):
            # Derived fields first, so each row is built once: at 10^5 rows a
            # second dataclass per row was a quarter of the view's time.
            rows.append(
                PartitionLag(
                    topic,
                    partition,
                    position,
                    log_start,
                    log_end,
                    lag,
                    lost,
                    holder,
                    False,
                    *_derive(
                        group_id,
                        tp,
                        position,
                        lag,
                        log_end,
                        holder is not None,
                        offsets.read_at,
                        timestamps,
                        derive,
                    ),
                )
            )
        else:
            rows.append(
                PartitionLag(
                    topic=topic,
                    partition=partition,
                    committed=position,
                    log_start=log_start,
                    log_end=log_end,
                    lag=lag,
                    lost_to_retention=lost,
                    member=holder,
                    stale=stale,
                )
            )

    had = {p.topic for p in before.partitions} if before is not None else deleted_topics
    for topic in sorted(deleted_topics & had):
        notices.append(
            PollError(
                ErrorKind.TOPIC_DELETED,
                f"group {group_id!r} holds offsets for topic {topic!r}, "
                "which no longer exists; not reporting them",
                group=group_id,
                topic=topic,
            )
        )

    statuses = [r.status for r in rows]
    return GroupView(
        group_id=group_id,
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
        status=group_status(statuses) if any(s is not None for s in statuses) else None,
        topic_rates=(
            _topic_rates(rows, topics, group_id, derive, poll.started_at)
            if derive is not None
            else {}
        ),
        group_type=description.group_type,
    )


def _derive(
    group_id: str,
    tp: TopicPartition,
    committed: int,
    lag: int,
    log_end: int | None,
    owned: bool,
    now: float,
    timestamps: Mapping[tuple[str, int, int], float] | None,
    derive: Derivation,
) -> tuple[float | None, bool, bool, Status | None, float | None]:
    """(lag seconds, lower bound?, exact?, status, consumption rate) of a freshly read row."""
    history = derive.history
    rules = derive.status_rules
    insight = derive.insight
    track = history.track(
        group_id,
        tp,
        now,
        committed,
        lag,
        log_end,
        rules.allowed_lag,
        insight.capacity_window if insight is not None else None,
    )
    rewound_at = track.rewound_at
    status: Status | None
    if lag <= rules.allowed_lag and rewound_at is None:
        status = Status.OK  # what partition_status says, without the call (most rows)
    else:
        status = partition_status(
            track.samples, track.changes or (), track.stuck_since, owned, rules, rewound_at
        )
    seconds: float | None = None
    lower_bound = exact = False
    if lag <= rules.allowed_lag:
        # Caught up, as for the status: a lag of 1-2 left by transaction markers
        # is not a message waiting, however long ago the marker was written.
        seconds = 0.0
    else:
        stamp = timestamps.get((tp[0], tp[1], committed)) if timestamps is not None else None
        if stamp is not None:
            seconds, exact = max(0.0, now - stamp), True
        else:
            ends = history.ends.get(tp)
            if ends is not None and log_end is not None:
                # The oldest message still waiting: the one at the committed
                # offset, or at the log start when retention deleted that one
                # (lag counts only what still exists, and so does its age).
                estimate = time_lag(log_end - lag, now, ends.times, ends.ends)
                if estimate is not None:
                    seconds, lower_bound = estimate
    return seconds, lower_bound, exact, status, track.rate(derive.rate_window)


def _observe_members(
    groups: Iterable[GroupView],
    topics: dict[str, TopicView],
    derive: Derivation,
    window: float,
) -> list[MemberKey]:
    """Feed each member's summed offsets per topic to its busy meter; the keys seen.

    A consumer thread works through whichever of its partitions has data, so
    it is busy while any of them has a backlog: summed over its partitions,
    its progress is its capacity, however unevenly it serves them.
    """
    seen: list[MemberKey] = []
    for g in groups:
        if g.stale:
            # Not re-read this poll: keep what was measured while it is carried.
            seen.extend(key for key in derive.history.members if key[0] == g.group_id)
            continue
        if not g.members_known:
            continue
        rows = {(r.topic, r.partition): r for r in g.partitions}
        for m in g.members:
            by_topic: dict[str, list[PartitionLag]] = {}
            for tp in m.assignment:
                row = rows.get(tp)
                if row is not None:
                    by_topic.setdefault(tp[0], []).append(row)
            for topic, owned in by_topic.items():
                if any(r.stale or r.committed is None or r.log_end is None for r in owned):
                    continue  # a partial sum would jump when the missing part returns
                view = topics.get(topic)
                if view is None:
                    continue
                read_at = max(
                    (
                        view.offsets[r.partition].read_at
                        for r in owned
                        if r.partition in view.offsets
                    ),
                    default=None,
                )
                if read_at is None:
                    continue
                key = (g.group_id, topic, m.member_id, tuple(sorted(r.partition for r in owned)))
                derive.history.member(key).observe(
                    read_at,
                    sum(r.committed or 0 for r in owned),
                    sum(r.log_end or 0 for r in owned),
                    # Transaction markers may leave each partition a little lag.
                    derive.status_rules.allowed_lag * len(owned),
                    window,
                )
                seen.append(key)
    return seen


# Catch-up time is given only when consumption beats production by this share,
# over rate_window: with the two rates about equal, their difference is noise
# and lag / noise is any number at all (16 days was seen).
CATCHUP_MARGIN = 0.1
# And never above this: a longer estimate extrapolates rates measured over
# minutes to days, which says nothing anyone can act on.
CATCHUP_CAP = 86400.0


def _topic_rates(
    rows: list[PartitionLag],
    topics: dict[str, TopicView],
    group_id: str,
    derive: Derivation,
    now: float,
) -> dict[str, GroupTopicRates]:
    by_topic: dict[str, list[PartitionLag]] = {}
    for r in rows:
        if r.lag is not None and not r.stale:
            by_topic.setdefault(r.topic, []).append(r)
    out: dict[str, GroupTopicRates] = {}
    allowed = derive.status_rules.allowed_lag
    for topic, topic_rows in by_topic.items():
        rates = [r.consumption_rate for r in topic_rows if r.consumption_rate is not None]
        consumption = sum(rates) if rates else None
        lag = sum(r.lag or 0 for r in topic_rows)
        view = topics.get(topic)
        # Production into the partitions this group reads, not the whole topic.
        produced = [
            view.partition_rates[r.partition]
            for r in topic_rows
            if view is not None and r.partition in view.partition_rates
        ]
        production = sum(produced) if produced else None
        catchup: float | None = None
        if all((r.lag or 0) <= allowed for r in topic_rows):
            catchup = 0.0  # caught up, as the status and lag seconds say
        elif (
            consumption is not None
            and production is not None
            and consumption > production * (1 + CATCHUP_MARGIN)
            and _falling(topic_rows, view, group_id, derive, now - derive.rate_window)
        ):
            estimate = lag / (consumption - production)
            catchup = estimate if estimate <= CATCHUP_CAP else None
        out[topic] = GroupTopicRates(consumption, catchup)
    return out


def _falling(
    rows: list[PartitionLag],
    view: TopicView | None,
    group_id: str,
    derive: Derivation,
    since: float,
) -> bool:
    """Whether the rows' summed lag fell since `since` by more than their commit sawtooth.

    A consumer that keeps up but commits rarely has a lag that drops by a
    whole tooth at each commit (production x its interval between commits):
    a drop that size is its rhythm, not catching up.
    """
    before = teeth = 0.0
    commits = derive.history.commits
    rates = view.partition_rates if view is not None else {}
    for r in rows:
        track = commits.get((group_id, (r.topic, r.partition)))
        if track is None:
            return False  # not observed before: no trend to speak of
        before += track.lag_at(since)
        changes = track.changes
        if changes is not None and len(changes) >= 2:
            longest = max(b - a for a, b in itertools.pairwise(changes))
            teeth += rates.get(r.partition, 0.0) * longest
    lag = sum(r.lag or 0 for r in rows)
    return before - lag > derive.status_rules.allowed_lag * len(rows) + teeth


def _stale_row(row: PartitionLag) -> PartitionLag:
    return row._replace(stale=True)


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
        status=before.status,
        topic_rates=before.topic_rates,
        group_type=before.group_type,
    )
