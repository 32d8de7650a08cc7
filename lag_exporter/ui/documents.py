"""The overview across clusters, its filters, and the JSON the pages refresh from. Pure.

/api/v1/overview and /api/v1/group serve these documents; the HTML pages
(pages.py) are rendered from the same selections, so a page without
JavaScript shows what the script would fetch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from ..alerts.engine import Alert, Phase
from ..alerts.publish import AlertsSnapshot, alert_document
from ..api import group_document, partition_document
from ..model import PartitionLag
from ..status import Status, StatusRules
from .snapshot import ClusterUi, GroupSummary, partition_reason, severity
from .trend import Trend

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PARTITION_ROWS = 1000  # on a group page, worst first
STATUS_FILTERS = ("ERR", "WARN", "OK")


@dataclass(frozen=True, slots=True)
class Overview:
    """Every cluster's UI snapshot and the alerts, from one published moment."""

    clusters: tuple[ClusterUi, ...] = ()
    groups: tuple[GroupSummary, ...] = ()  # all clusters, worst first
    alerts: AlertsSnapshot | None = None
    firing: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (cluster, group)
    index: Mapping[tuple[str, str], tuple[ClusterUi, GroupSummary]] = field(default_factory=dict)

    @classmethod
    def build(cls, clusters: Sequence[ClusterUi], alerts: AlertsSnapshot | None) -> Overview:
        groups = sorted((g for c in clusters for g in c.groups), key=lambda g: g.sort_key)
        firing: dict[tuple[str, str], int] = {}
        for a in alerts.alerts if alerts is not None else ():
            group = a.label("consumergroup")
            if a.phase is Phase.FIRING and group is not None:
                key = (a.label("cluster") or "", group)
                firing[key] = firing.get(key, 0) + 1
        index = {(g.cluster, g.group): (c, g) for c in clusters for g in c.groups}
        return cls(tuple(clusters), tuple(groups), alerts, firing, index)

    @property
    def refresh_seconds(self) -> float:
        """How often a page asks again: the shortest poll interval, at least a second."""
        return max(1.0, min((c.poll_interval for c in self.clusters), default=15.0))

    def find(self, cluster: str, group: str) -> tuple[ClusterUi, GroupSummary] | None:
        return self.index.get((cluster, group))

    def group_alerts(self, cluster: str, group: str) -> list[Alert]:
        if self.alerts is None:
            return []
        return [
            a
            for a in self.alerts.alerts
            if a.label("consumergroup") == group and (a.label("cluster") or "") == cluster
        ]


@dataclass(frozen=True, slots=True)
class Query:
    cluster: str = ""  # exact name; "" all
    group: str = ""  # substring of the group id, any case
    topic: str = ""  # substring of one of its topics, any case
    status: str = ""  # ERR, WARN or OK; "" all
    page: int = 1
    limit: int = PAGE_SIZE

    @classmethod
    def parse(cls, query: str) -> Query:
        values = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items() if v}

        def number(name: str, default: int, top: int) -> int:
            try:
                return max(1, min(top, int(values.get(name, default))))
            except ValueError:
                return default

        status = values.get("status", "").upper()
        return cls(
            cluster=values.get("cluster", "")[:500],
            group=values.get("group", "")[:500],
            topic=values.get("topic", "")[:500],
            status=status if status in STATUS_FILTERS else "",
            page=number("page", 1, 1_000_000),
            limit=number("limit", PAGE_SIZE, MAX_PAGE_SIZE),
        )

    def with_page(self, page: int) -> str:
        """The query string of another page of the same selection."""
        pairs = {
            "cluster": self.cluster,
            "group": self.group,
            "topic": self.topic,
            "status": self.status,
        }
        out = {k: v for k, v in pairs.items() if v}
        if page != 1:
            out["page"] = str(page)
        if self.limit != PAGE_SIZE:
            out["limit"] = str(self.limit)
        return urlencode(out)


def _status_class(status: Status | None) -> str:
    if status is None:
        return ""
    return "ERR" if status in (Status.ERR, Status.STOP, Status.STALL, Status.REWIND) else status


def matches(g: GroupSummary, q: Query) -> bool:
    if q.cluster and g.cluster != q.cluster:
        return False
    if q.status and _status_class(g.status) != q.status:
        return False
    if q.group and q.group.lower() not in g.group.lower():
        return False
    if q.topic:
        needle = q.topic.lower()
        return any(needle in t.lower() for t in g.topics)
    return True


@dataclass(frozen=True, slots=True)
class Selection:
    groups: tuple[GroupSummary, ...]  # this page
    matched: int
    page: int
    pages: int


def select(overview: Overview, q: Query) -> Selection:
    if not (q.cluster or q.group or q.topic or q.status):
        matched: Sequence[GroupSummary] = overview.groups
    else:
        matched = [g for g in overview.groups if matches(g, q)]
    pages = max(1, math.ceil(len(matched) / q.limit))
    page = min(q.page, pages)
    start = (page - 1) * q.limit
    return Selection(tuple(matched[start : start + q.limit]), len(matched), page, pages)


def counts(overview: Overview) -> dict[str, Any]:
    by_status = {"ERR": 0, "WARN": 0, "OK": 0, "unknown": 0}
    partitions = 0
    for g in overview.groups:
        by_status[_status_class(g.status) or "unknown"] += 1
        partitions += len(g.view.partitions)
    return {
        "clusters": len(overview.clusters),
        "clusters_up": sum(1 for c in overview.clusters if c.view.health.up),
        "groups": len(overview.groups),
        "group_partitions": partitions,
        "by_status": by_status,
        "firing_alerts": sum(
            1
            for a in (overview.alerts.alerts if overview.alerts else ())
            if a.phase is Phase.FIRING
        ),
    }


def group_url(cluster: str, group: str) -> str:
    return "/group?" + urlencode({"cluster": cluster, "group": group})


def _trend(t: Trend | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "times": list(t.times),
        "lag": list(t.lag),
        "lag_seconds": list(t.lag_seconds),
    }


def cluster_document(c: ClusterUi) -> dict[str, Any]:
    h = c.view.health
    return {
        "cluster": c.cluster,
        "up": h.up,
        "partial": h.partial,
        "brokers": c.view.brokers,
        "last_poll_at": h.last_poll_at,
        "last_success_at": h.last_success_at,
        "poll_interval": c.poll_interval,
        "groups": len(c.groups),
    }


def summary_document(g: GroupSummary, firing: int) -> dict[str, Any]:
    return {
        "cluster": g.cluster,
        "group": g.group,
        "url": group_url(g.cluster, g.group),
        "status": str(g.status) if g.status is not None else None,
        "state": g.view.state,
        "stale": g.view.stale,
        "total_lag": g.total_lag,
        "growing": g.growing,
        "max_lag_seconds": g.max_lag_seconds,
        "lag_seconds_lower_bound": g.lag_seconds_lower_bound,
        "members": g.members,
        "partitions": len(g.view.partitions),
        "topics": list(g.topics),
        "consumption_rate": g.consumption_rate,
        "production_rate": g.production_rate,
        "firing_alerts": firing,
        "trend": _trend(g.trend),
    }


def overview_document(overview: Overview, q: Query, now: float) -> dict[str, Any]:
    sel = select(overview, q)
    return {
        "generated_at": now,
        "refresh_seconds": overview.refresh_seconds,
        "counts": counts(overview),
        "clusters": [cluster_document(c) for c in overview.clusters],
        "query": {
            "cluster": q.cluster,
            "group": q.group,
            "topic": q.topic,
            "status": q.status,
            "limit": q.limit,
        },
        "matched": sel.matched,
        "page": sel.page,
        "pages": sel.pages,
        "groups": [
            summary_document(g, overview.firing.get((g.cluster, g.group), 0)) for g in sel.groups
        ],
    }


def ordered_partitions(g: GroupSummary) -> list[PartitionLag]:
    """A group's partitions worst first (status, lag seconds, lag), at most MAX_PARTITION_ROWS."""
    rows = sorted(
        g.view.partitions,
        key=lambda r: (
            -severity(r.status),
            -(r.lag_seconds or 0.0),
            -(r.lag or 0),
            r.topic,
            r.partition,
        ),
    )
    return rows[:MAX_PARTITION_ROWS]


def reason(c: ClusterUi, g: GroupSummary, row: PartitionLag) -> str:
    known = g.reasons.get((row.topic, row.partition))
    if known is not None:
        return known
    return partition_reason(row, None, g.group, StatusRules(allowed_lag=c.allowed_lag))


def delivery(a: Alert, alerts: AlertsSnapshot | None) -> list[dict[str, Any]]:
    """Per notifier: when the receiver accepted this alert's latest firing, what of it
    still waits in the notifier's outbox, and whether the notifier is failing."""
    out = []
    notifiers = alerts.notifiers if alerts is not None else {}
    for name in sorted(set(a.sent) | set(notifiers)):
        stats = notifiers.get(name)
        waiting = stats.pending.get(a.key) if stats is not None else None
        out.append(
            {
                "notifier": name,
                "sent_at": stats.told.get(a.key) if stats is not None else None,
                "pending": (
                    {"state": waiting[0], "queued_at": waiting[1], "attempts": waiting[2]}
                    if waiting is not None
                    else None
                ),
                "failing": stats.failing if stats is not None else False,
                "queued": stats.queued if stats is not None else 0,
            }
        )
    return out


def advice_document(c: ClusterUi, g: GroupSummary) -> dict[str, Any]:
    insight = c.view.insight
    gi = insight.groups.get(g.group) if insight is not None else None
    if gi is None:
        return {}
    return {
        topic: {
            "verdict": str(a.verdict),
            "reason": a.reason,
            "partitions": a.partitions,
            "partitions_needed": a.partitions_needed,
            "consumers": a.consumers,
            "consumers_needed": a.consumers_needed,
        }
        for topic, a in gi.topics.items()
    }


def group_page_document(
    overview: Overview, c: ClusterUi, g: GroupSummary, now: float
) -> dict[str, Any]:
    doc = group_document(g.view)
    rows = ordered_partitions(g)
    doc["partitions"] = [
        {**p, "reason": reason(c, g, r)}
        for p, r in zip(map(partition_document, rows), rows, strict=True)
    ]
    doc["partitions_shown"] = len(rows)
    doc["partitions_total"] = len(g.view.partitions)
    alerts = overview.group_alerts(g.cluster, g.group)
    notifiers = overview.alerts.notifiers if overview.alerts is not None else {}
    return {
        **doc,
        "generated_at": now,
        "refresh_seconds": c.poll_interval,
        "cluster": g.cluster,
        "cluster_up": c.view.health.up,
        "last_poll_at": c.view.health.last_poll_at,
        "url": group_url(g.cluster, g.group),
        "total_lag": g.total_lag,
        "lag_seconds_lower_bound": g.lag_seconds_lower_bound,
        "consumption_rate": g.consumption_rate,
        "production_rate": g.production_rate,
        "firing_alerts": overview.firing.get((g.cluster, g.group), 0),
        "trend": _trend(g.trend),
        "advice": advice_document(c, g),
        "alerts": [
            {**alert_document(a, notifiers), "delivery": delivery(a, overview.alerts)}
            for a in alerts
        ],
    }
