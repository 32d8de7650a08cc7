"""Alert state -> metric families and the /api/v1/alerts JSON, rendered once per poll. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .delivery import RESULTS, NotifierStats
from .engine import Alert, Phase
from .notifiers import rfc3339


@dataclass(frozen=True, slots=True)
class AlertsSnapshot:
    """The alert state at one moment, as the HTTP server shows it."""

    alerts: tuple[Alert, ...] = ()
    rules: tuple[str, ...] = ()
    notifiers: Mapping[str, NotifierStats] = field(default_factory=dict)


def families(snapshot: AlertsSnapshot) -> list[Metric]:
    by_state = GaugeMetricFamily(
        "lag_exporter_alerts",
        "Alerts by rule and state (pending: condition true, not yet for `for`; firing).",
        labels=["rule", "state"],
    )
    for rule in snapshot.rules:
        for phase in Phase:
            count = sum(1 for a in snapshot.alerts if a.rule == rule and a.phase is phase)
            by_state.add_metric([rule, str(phase)], count)
    notifications = CounterMetricFamily(
        "lag_exporter_notifications",
        "Delivery attempts by notifier and result: delivered (the receiver accepted it); "
        "retried (an attempt failed, the notification stays queued); failed (the "
        "receiver rejected it, or the outbox was full); dropped_after_horizon (still "
        "failing when the notifier's retry_for ran out).",
        labels=["notifier", "result"],
    )
    queued = GaugeMetricFamily(
        "lag_exporter_notification_queue_length",
        "Notifications waiting in the notifier's outbox (queued or being retried).",
        labels=["notifier"],
    )
    oldest = GaugeMetricFamily(
        "lag_exporter_notification_oldest_queued_age_seconds",
        "Age of the oldest notification in the notifier's outbox; 0 when it is empty.",
        labels=["notifier"],
    )
    failing = GaugeMetricFamily(
        "lag_exporter_notifications_failing",
        "1 while the notifier's last attempt failed and something is queued, else 0.",
        labels=["notifier"],
    )
    for name, stats in sorted(snapshot.notifiers.items()):
        for result in RESULTS:
            notifications.add_metric([name, result], stats.results.get(result, 0))
        queued.add_metric([name], stats.queued)
        oldest.add_metric([name], stats.oldest_queued_age)
        failing.add_metric([name], 1 if stats.failing else 0)
    return [by_state, notifications, queued, oldest, failing]


def alert_document(a: Alert, notifiers: Mapping[str, NotifierStats]) -> dict[str, Any]:
    partition = a.label("partition")
    told: dict[str, str] = {}
    pending: dict[str, dict[str, Any]] = {}
    for name, stats in sorted(notifiers.items()):
        if (at := stats.told.get(a.key)) is not None:
            told[name] = rfc3339(at)
        if (waiting := stats.pending.get(a.key)) is not None:
            status, since, attempts = waiting
            pending[name] = {"state": status, "queued_at": rfc3339(since), "attempts": attempts}
    return {
        "rule": a.rule,
        "state": str(a.phase),
        "since": a.fired_at if a.phase is Phase.FIRING else a.active_since,
        "active_since": a.active_since,
        "firing_since": a.fired_at,
        "startsAt": rfc3339(a.fired_at if a.fired_at is not None else a.active_since),
        "kept_firing_since": rfc3339(a.cleared_at) if a.cleared_at is not None else None,
        "value": a.value,
        "metric": a.metric,
        "op": a.op,
        "threshold": a.threshold,
        "cluster": a.label("cluster"),
        "group": a.label("consumergroup"),
        "topic": a.label("topic"),
        "partition": int(partition) if partition is not None else None,
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "fingerprint": a.fingerprint,
        "evaluated_at": a.evaluated_at,
        # notifier -> when it accepted this alert's latest firing notification
        "notified": told,
        # notifier -> the notification it has not accepted yet
        "pending_notifications": pending,
    }


def alerts_document(
    alerts: Sequence[Alert], notifiers: Mapping[str, NotifierStats] | None = None
) -> dict[str, Any]:
    return {"alerts": [alert_document(a, notifiers or {}) for a in alerts]}


def render_alerts(snapshot: AlertsSnapshot | None) -> bytes:
    if snapshot is None:
        return json.dumps(alerts_document(()), separators=(",", ":")).encode()
    doc = alerts_document(snapshot.alerts, snapshot.notifiers)
    return json.dumps(doc, separators=(",", ":")).encode()
