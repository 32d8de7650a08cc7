"""Alert state -> metric families and the /api/v1/alerts JSON, rendered once per poll. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .delivery import OUTCOMES, NotifierStats
from .engine import Alert, Phase


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
        "lag_exporter_alert_notifications",
        "Notifications by notifier and outcome: delivered; failed (attempts exhausted or "
        "rejected by the receiver); dropped (queue full or exporter stopping).",
        labels=["notifier", "outcome"],
    )
    retries = CounterMetricFamily(
        "lag_exporter_alert_notification_retries",
        "Delivery attempts that failed and were retried.",
        labels=["notifier"],
    )
    queued = GaugeMetricFamily(
        "lag_exporter_alert_notification_queue_length",
        "Notifications waiting to be delivered.",
        labels=["notifier"],
    )
    for name, stats in sorted(snapshot.notifiers.items()):
        for outcome in OUTCOMES:
            notifications.add_metric([name, outcome], stats.outcomes.get(outcome, 0))
        retries.add_metric([name], stats.retries)
        queued.add_metric([name], stats.queued)
    return [by_state, notifications, retries, queued]


def alert_document(a: Alert) -> dict[str, Any]:
    partition = a.label("partition")
    return {
        "rule": a.rule,
        "state": str(a.phase),
        "since": a.fired_at if a.phase is Phase.FIRING else a.active_since,
        "active_since": a.active_since,
        "firing_since": a.fired_at,
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
    }


def alerts_document(alerts: Sequence[Alert]) -> dict[str, Any]:
    return {"alerts": [alert_document(a) for a in alerts]}


def render_alerts(snapshot: AlertsSnapshot | None) -> bytes:
    alerts = snapshot.alerts if snapshot is not None else ()
    return json.dumps(alerts_document(alerts), separators=(",", ":")).encode()
