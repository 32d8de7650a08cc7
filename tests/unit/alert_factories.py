"""Rules and one-group scenarios for the alert engine tests, on a fake clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lag_exporter.alerts.engine import Alert, AlertKey, Evaluation, Notification, evaluate
from lag_exporter.alerts.rules import AlertingSettings, Rule, parse_alerting
from lag_exporter.model import ClusterView, ErrorKind, PollError, PollResult

from .factories import group, member, poll, view_of

NOTIFIERS: dict[str, Any] = {
    "hook": {"type": "webhook", "url": "http://127.0.0.1:1/hook", "repeat_interval": "1h"},
    "am": {"type": "alertmanager", "url": "http://127.0.0.1:2"},
}


def alerting(*rules: dict[str, Any], notifiers: dict[str, Any] | None = None) -> AlertingSettings:
    return parse_alerting(
        {"notifiers": NOTIFIERS if notifiers is None else notifiers, "rules": list(rules)},
        cluster_names=["c1"],
        cluster_label_names=["env"],
    )


def rule(**fields: Any) -> Rule:
    doc = {"name": "behind", "metric": "lag", "threshold": 100, "notifiers": ["hook"], **fields}
    return alerting(doc).rules[0]


def lag_poll(at: float, *lags: int | None, **kwargs: Any) -> PollResult:
    """Group `g` on topic `t`, one partition per lag, committed at 1000; None:
    the partition's offsets were not read this poll."""
    tps = [("t", p) for p in range(len(lags))]
    return poll(
        at,
        topics={"t": len(lags)},
        ends={tp: (0, 1000 + lag) for tp, lag in zip(tps, lags, strict=True) if lag is not None},
        groups=[group("g", member("m", *tps))],
        committed={"g": dict.fromkeys(tps, 1000)},
        **kwargs,
    )


@dataclass
class Run:
    """Feeds polls to the engine one after another, like the daemon does."""

    rules: Sequence[Rule]
    repeat: Mapping[str, float] = field(default_factory=lambda: {"hook": 3600.0, "am": 60.0})
    state: dict[AlertKey, Alert] = field(default_factory=dict)
    view: ClusterView | None = None
    notifications: list[Notification] = field(default_factory=list)
    last: Evaluation | None = None
    cluster_labels: dict[str, str] = field(default_factory=dict)

    def step(self, p: PollResult, max_staleness: float = 60.0) -> Evaluation:
        self.view = replace(
            view_of(p, self.view, max_staleness=max_staleness), labels=self.cluster_labels
        )
        result = evaluate(self.rules, self.view, p.started_at, self.state, self.repeat)
        self.state = result.state
        self.notifications.extend(result.notifications)
        self.last = result
        return result

    def phases(self) -> list[str]:
        return [str(a.phase) for a in self.state.values()]

    def sent(self) -> list[tuple[float, str, str, bool]]:
        return [(n.at, n.notifier, n.status, n.repeat) for n in self.notifications]


def down(at: float) -> PollResult:
    return poll(at, reached=False, errors=(PollError(ErrorKind.CONNECTION, "refused"),))
