"""What the UI shows of one cluster, built by the poller after each poll. Pure.

The view says what each group's lag is; the history says since when a
partition has not moved and how lag went. Both belong to the poller thread,
so everything the pages need from the history (trends, reasons in words) is
read here, once per poll, into frozen values; pages only read those.

Trends cost a walk over each partition's samples, so they are computed for
at most `trend_budget` group partitions per poll, worst groups first: at
100,000 group partitions the groups on the overview's first pages have
theirs, and a group past the budget shows none until it gets worse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..history import History
from ..model import ClusterView, GroupView, PartitionLag, TopicPartition
from ..status import Status, StatusRules, stop_threshold
from .text import count, duration, rate
from .trend import Trend, group_trend

TREND_BUDGET = 20_000

# Worst first: the order of the overview and of a group's partitions.
SEVERITY = {
    Status.ERR: 5,
    Status.STOP: 5,
    Status.STALL: 5,
    Status.REWIND: 4,
    Status.WARN: 3,
    Status.OK: 1,
}


def severity(status: Status | None) -> int:
    return SEVERITY.get(status, 0) if status is not None else 0


@dataclass(frozen=True, slots=True)
class GroupSummary:
    cluster: str
    group: str
    view: GroupView
    status: Status | None
    total_lag: int
    max_lag_seconds: float | None
    lag_seconds_lower_bound: bool
    members: int | None  # None: unknown (group described only by ListGroups)
    topics: tuple[str, ...]
    consumption_rate: float | None  # messages per second, summed over its topics
    production_rate: float | None  # into the partitions it reads
    trend: Trend | None
    # Why a partition is not OK, in words; only partitions that are not.
    reasons: Mapping[TopicPartition, str] = field(default_factory=dict)

    @property
    def growing(self) -> bool:
        """Whether lag grew over the trend's span: more than the few messages that
        transaction markers leave, and more at the end than anywhere before."""
        t = self.trend
        if t is None:
            return False
        return t.lag[-1] > t.lag[0] + 2 and t.lag[-1] >= max(t.lag)

    @property
    def sort_key(self) -> tuple[int, float, int, str, str]:
        return (
            -severity(self.status),
            -(self.max_lag_seconds or 0.0),
            -self.total_lag,
            self.cluster,
            self.group,
        )


@dataclass(frozen=True, slots=True)
class ClusterUi:
    cluster: str
    view: ClusterView
    poll_interval: float
    groups: tuple[GroupSummary, ...]  # worst first
    allowed_lag: int = 2


def partition_reason(
    row: PartitionLag, history: History | None, group_id: str, rules: StatusRules
) -> str:
    """Why a partition has its status, in a sentence fragment a person reads at a glance."""
    if row.stale:
        return "not re-read in the last poll (shown as last read)"
    if row.committed is None:
        return "no committed offset"
    if row.lag is None:
        return "log-end offset unknown"
    track = history.commits.get((group_id, (row.topic, row.partition))) if history else None
    status = row.status
    if row.lag <= rules.allowed_lag:
        return "caught up"
    if track is None or status is None:
        if row.consumption_rate:
            return f"consuming at {rate(row.consumption_rate)}"
        return "consuming" if status is Status.OK else "judged after a few polls"
    if len(track.samples) < 3:
        return "judged after a few polls"
    now = track.samples[-3]
    if status is Status.REWIND and track.rewound_at is not None:
        return f"committed offset went back {duration(now - track.rewound_at)} ago"
    if status in (Status.STOP, Status.STALL):
        # The stop clock: since the lag went above the allowed lag with no commit.
        stuck = track.stuck_since if track.stuck_since is not None else now
        text = f"no commit for {duration(now - stuck)} while {count(row.lag)} behind"
        if status is Status.STALL and row.member is not None:
            return f"{text}; owned by {row.member.client_id or row.member.member_id}, stuck"
        return f"{text}; no member owns it"
    if status is Status.WARN:
        s = track.samples
        first = int(s[2])
        return f"lag grew from {count(first)} to {count(row.lag)} over {duration(now - s[0])}"
    if track.changes:
        moved = now - track.changes[-1]
        if moved > 0:
            limit = stop_threshold(track.changes, rules)
            return f"consuming; last commit {duration(moved)} ago (stop after {duration(limit)})"
    return "consuming"


def _summary(
    cluster: str,
    g: GroupView,
    view: ClusterView,
    history: History | None,
    rules: StatusRules,
) -> GroupSummary:
    total = 0
    worst: float | None = None
    bound = False
    production: float | None = None
    topics: dict[str, None] = {}
    reasons: dict[TopicPartition, str] = {}
    for r in g.partitions:
        topics.setdefault(r.topic)
        if r.lag is not None:
            total += r.lag
        if r.lag_seconds is not None and (worst is None or r.lag_seconds > worst):
            worst, bound = r.lag_seconds, r.lag_seconds_lower_bound
        t = view.topics.get(r.topic)
        if t is not None:
            rate = t.partition_rates.get(r.partition)
            if rate is not None:
                production = rate + (production or 0.0)
        if r.status is not None and r.status is not Status.OK:
            reasons[(r.topic, r.partition)] = partition_reason(r, history, g.group_id, rules)
    consumption = [x.consumption_rate for x in g.topic_rates.values()]
    known = [x for x in consumption if x is not None]
    return GroupSummary(
        cluster=cluster,
        group=g.group_id,
        view=g,
        status=g.status,
        total_lag=total,
        max_lag_seconds=worst,
        lag_seconds_lower_bound=bound,
        members=len(g.members) if g.members_known else None,
        topics=tuple(topics),
        consumption_rate=sum(known) if known else None,
        production_rate=production,
        trend=None,
        reasons=reasons,
    )


def cluster_ui(
    view: ClusterView,
    history: History | None,
    *,
    poll_interval: float,
    rules: StatusRules | None = None,
    trend_budget: int = TREND_BUDGET,
) -> ClusterUi:
    """The UI's snapshot of one cluster after a poll; reads `history`, never changes it."""
    rules = rules or StatusRules()
    summaries = sorted(
        (_summary(view.cluster, g, view, history, rules) for g in view.groups.values()),
        key=lambda s: s.sort_key,
    )
    if history is not None:
        now = view.health.last_poll_at or 0.0
        budget = trend_budget
        with_trends = []
        for s in summaries:
            size = len(s.view.partitions)
            if size <= budget:
                budget -= size
                trend = group_trend(s.group, s.view.partitions, history, now)
                with_trends.append(replace(s, trend=trend) if trend else s)
            else:
                with_trends.append(s)
        summaries = with_trends
    return ClusterUi(
        view.cluster, view, poll_interval, tuple(summaries), allowed_lag=rules.allowed_lag
    )
