"""The alert state machine. Pure: (rules, view, now, state) -> new state, changes, notifications.

Prometheus' semantics, per rule and matching series:

    inactive -> pending   the condition became true
    pending  -> firing    it has been true for at least `for` (at once when `for` is 0)
    pending  -> inactive  it became false before that (nobody is told)
    firing   -> resolved  it became false, or its series is gone (group, topic or
                          partition no longer exists)

With `keep_firing_for` (as in Prometheus) a firing alert whose condition
turned false keeps firing until it has stayed false that long; the
condition turning true again meanwhile continues the same alert.

What a poll could not see keeps its state: a stale series, a series whose
value could not be computed, a value that is only a lower bound and does
not meet the condition (lag in seconds older than the history: the real
value may be higher), or a missing series whose absence may be the poll's
fault (cluster down, an error naming its group or topic, or an error that
could hide anything) neither fires nor resolves anything. A firing alert
kept that way is still reminded every repeat interval, so a receiver that
expires silent alerts (Alertmanager) does not resolve it during an outage.

Notifications are decided here too, so that "exactly once per change" is a
property of a pure function: a firing alert is announced to each of its
notifiers once, then again every notifier's repeat interval; a resolved
notification goes once to every notifier that was told it fired. The time
each notifier was last told is part of the state, which is what survives a
restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ..model import ClusterView
from .measures import MEASURES, Labels, Value
from .rules import Rule

# (rule name, identity labels: cluster then the measure's labels)
AlertKey = tuple[str, Labels]


class Phase(StrEnum):
    PENDING = "pending"
    FIRING = "firing"


class Change(StrEnum):
    """What happened to an alert; one log line each."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    INACTIVE = "inactive"  # was pending, condition false again before `for` elapsed
    KEPT = "kept"  # firing, condition false, kept firing for `keep_firing_for`


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    identity: Labels
    labels: Labels  # every label of the alert, sorted by name
    annotations: Labels  # rendered with the latest value
    phase: Phase
    active_since: float  # when the condition became true
    fired_at: float | None  # when it started firing
    value: Value | None
    evaluated_at: float
    metric: str
    op: str
    threshold: Value
    # notifier -> when it was last sent a firing notification for this alert
    sent: Mapping[str, float] = field(default_factory=dict)
    # firing, condition false since then, kept firing for `keep_firing_for`
    cleared_at: float | None = None

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.identity)

    def label(self, name: str) -> str | None:
        return dict(self.identity).get(name)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.identity)


@dataclass(frozen=True, slots=True)
class Transition:
    alert: Alert  # as it was after the change (for resolved/inactive: its last state)
    change: Change
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one notifier, with everything a payload needs."""

    notifier: str
    status: str  # firing | resolved
    repeat: bool  # a reminder that the alert still fires
    alert: Alert
    at: float  # when it was decided
    ends_at: float | None  # resolved: when it ended


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: dict[AlertKey, Alert]
    transitions: list[Transition]
    notifications: list[Notification]

    @property
    def changed(self) -> bool:
        """Something worth saving happened (not just new values)."""
        return bool(self.transitions or self.notifications)


def fingerprint(rule: str, identity: Labels) -> str:
    """A stable id of an alert: the same rule and series give the same id, across restarts."""
    text = "\x00".join([rule, *(f"{k}={v}" for k, v in identity)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluate(
    rules: Sequence[Rule],
    view: ClusterView,
    now: float,
    state: Mapping[AlertKey, Alert],
    repeat_intervals: Mapping[str, float],
) -> Evaluation:
    """Evaluate every rule on one cluster's view. Alerts of other clusters are
    passed through untouched."""
    new = dict(state)
    transitions: list[Transition] = []
    notifications: list[Notification] = []
    for rule in rules:
        if not MEASURES[rule.metric].per_cluster:
            continue  # evaluate_exporter's
        series: dict[Labels, tuple[Value | None, bool, bool]] = {}
        if rule.clusters.matches(view.cluster):
            series = _selected_series(rule, view)

        for identity, (value, stale, lower_bound) in series.items():
            key = (rule.name, identity)
            alert = new.get(key)
            if stale or value is None:
                continue  # not read this poll: keep whatever state it had
            if rule.holds(value):
                alert = _active(rule, view.labels, identity, value, now, alert, transitions)
                if alert.phase is Phase.FIRING:
                    alert = _send_due(rule, alert, now, repeat_intervals, notifications)
                new[key] = alert
            elif alert is not None and not lower_bound:
                # A lower bound that misses the condition says nothing: the
                # real value may well meet it.
                _clear_or_end(
                    rule,
                    key,
                    alert,
                    now,
                    value,
                    "condition no longer true",
                    new,
                    transitions,
                    notifications,
                    repeat_intervals,
                )

        # A rule that no longer selects this cluster (edited across a restart)
        # has no series here: its alerts of this cluster are gone.
        for key, alert in state.items():
            if alert.rule != rule.name or alert.label("cluster") != view.cluster:
                continue
            seen = series.get(alert.identity)
            if seen is None and _absence_is_real(view, alert):
                _clear_or_end(
                    rule,
                    key,
                    alert,
                    now,
                    None,
                    "series gone",
                    new,
                    transitions,
                    notifications,
                    repeat_intervals,
                )
            elif alert.phase is Phase.FIRING and new.get(key) is alert:
                # Untouched by this poll (unseen, stale, or only a lower bound):
                # still firing, so keep reminding; a receiver must not take
                # silence for a resolve.
                new[key] = _send_due(rule, alert, now, repeat_intervals, notifications)
    return Evaluation(new, transitions, notifications)


def evaluate_exporter(
    rules: Sequence[Rule],
    values: Mapping[str, Mapping[Labels, Value]],
    now: float,
    state: Mapping[AlertKey, Alert],
    repeat_intervals: Mapping[str, float],
) -> Evaluation:
    """Evaluate the rules on measures of the exporter itself (no cluster):
    `values` maps such a measure to its series (identity -> value). A series
    that is gone (e.g. a notifier no longer configured) resolves its alert."""
    new = dict(state)
    transitions: list[Transition] = []
    notifications: list[Notification] = []
    for rule in rules:
        if MEASURES[rule.metric].per_cluster:
            continue
        series = values.get(rule.metric, {})
        for identity, value in series.items():
            key = (rule.name, identity)
            alert = new.get(key)
            if rule.holds(value):
                alert = _active(rule, {}, identity, value, now, alert, transitions)
                if alert.phase is Phase.FIRING:
                    alert = _send_due(rule, alert, now, repeat_intervals, notifications)
                new[key] = alert
            elif alert is not None:
                _clear_or_end(
                    rule,
                    key,
                    alert,
                    now,
                    value,
                    "condition no longer true",
                    new,
                    transitions,
                    notifications,
                    repeat_intervals,
                )
        for key, alert in state.items():
            if alert.rule == rule.name and alert.identity not in series:
                del new[key]
                _end(alert, now, None, "series gone", transitions, notifications)
    return Evaluation(new, transitions, notifications)


def _clear_or_end(
    rule: Rule,
    key: AlertKey,
    alert: Alert,
    now: float,
    value: Value | None,
    reason: str,
    new: dict[AlertKey, Alert],
    transitions: list[Transition],
    notifications: list[Notification],
    repeat_intervals: Mapping[str, float],
) -> None:
    """The condition stopped holding: end the alert, or, while `keep_firing_for`
    holds it, keep it and keep reminding its receivers."""
    kept = _clear(rule, alert, now, value, reason, transitions)
    if kept is None:
        del new[key]
        _end(alert, now, value, reason, transitions, notifications)
    else:
        new[key] = _send_due(rule, kept, now, repeat_intervals, notifications)


def _memo(match: Callable[[str], bool]) -> Callable[[str], bool]:
    cache: dict[str, bool] = {}

    def cached(name: str) -> bool:
        hit = cache.get(name)
        if hit is None:
            hit = cache[name] = match(name)
        return hit

    return cached


def _selected_series(
    rule: Rule, view: ClusterView
) -> dict[Labels, tuple[Value | None, bool, bool]]:
    """The rule's series in this view: identity (cluster first) -> (value, stale, lower bound)."""
    measure = MEASURES[rule.metric]
    # A large cluster has hundreds of thousands of partition series per poll,
    # but names repeat (a group has many partitions): match each name once.
    group_ok = _memo(rule.groups.matches)
    topic_ok = _memo(rule.topics.matches)
    names = measure.labels
    group_at = names.index("consumergroup") if "consumergroup" in names else None
    topic_at = names.index("topic") if "topic" in names else None
    if rule.groups.is_empty:
        group_at = None  # selects everything: no need to look
    if rule.topics.is_empty:
        topic_at = None
    cluster = ("cluster", view.cluster)
    out: dict[Labels, tuple[Value | None, bool, bool]] = {}
    for s in measure.extract(view):
        labels = s.labels
        if group_at is not None and not group_ok(labels[group_at][1]):
            continue
        if topic_at is not None and not topic_ok(labels[topic_at][1]):
            continue
        out[(cluster, *labels)] = (s.value, s.stale, s.lower_bound)
    return out


def retire(
    state: Mapping[AlertKey, Alert],
    rules: Sequence[Rule],
    clusters: Collection[str],
    now: float,
) -> Evaluation:
    """Resolve alerts whose rule or cluster is no longer configured (a state
    file from before a configuration change): they can never be evaluated again."""
    names = {r.name for r in rules}
    new = dict(state)
    transitions: list[Transition] = []
    notifications: list[Notification] = []
    for key, alert in state.items():
        cluster = alert.label("cluster")
        if alert.rule in names and (cluster is None or cluster in clusters):
            continue
        what = "rule" if alert.rule not in names else "cluster"
        del new[key]
        _end(alert, now, None, f"{what} no longer configured", transitions, notifications)
    return Evaluation(new, transitions, notifications)


def _labels(rule: Rule, constant: Mapping[str, str], identity: Labels) -> dict[str, str]:
    # Order of precedence, lowest first: cluster constant labels, the series'
    # own labels, the rule's labels, then the exporter's own.
    labels = {**constant, **dict(identity), **rule.labels}
    labels["alertname"] = rule.name
    labels["severity"] = rule.severity
    return labels


def _active(
    rule: Rule,
    constant: Mapping[str, str],
    identity: Labels,
    value: Value,
    now: float,
    alert: Alert | None,
    transitions: list[Transition],
) -> Alert:
    """The alert of a series whose condition holds, after this evaluation."""
    if alert is None:
        labels = _labels(rule, constant, identity)
        alert = Alert(
            rule=rule.name,
            identity=identity,
            labels=tuple(sorted(labels.items())),
            annotations=tuple(sorted(rule.render_annotations(labels, value).items())),
            phase=Phase.PENDING,
            active_since=now,
            fired_at=None,
            value=value,
            evaluated_at=now,
            metric=rule.metric,
            op=rule.op,
            threshold=rule.threshold,
        )
        if rule.for_seconds > 0:
            transitions.append(Transition(alert, Change.PENDING, now, "condition true"))
    else:
        alert = replace(
            alert,
            value=value,
            evaluated_at=now,
            annotations=tuple(sorted(rule.render_annotations(dict(alert.labels), value).items())),
            # A rule edited across a restart compares with its new threshold.
            op=rule.op,
            threshold=rule.threshold,
            cleared_at=None,
        )
    if alert.phase is Phase.PENDING and now - alert.active_since >= rule.for_seconds:
        alert = replace(alert, phase=Phase.FIRING, fired_at=now)
        reason = f"condition true for {now - alert.active_since:g}s"
        transitions.append(Transition(alert, Change.FIRING, now, reason))
    return alert


def _send_due(
    rule: Rule,
    alert: Alert,
    now: float,
    repeat_intervals: Mapping[str, float],
    notifications: list[Notification],
) -> Alert:
    """Announce a firing alert to the notifiers that were not told yet, or not
    for a whole repeat interval."""
    due = [
        (notifier, last)
        for notifier in rule.notifiers
        if (last := alert.sent.get(notifier)) is None
        or now - last >= repeat_intervals.get(notifier, float("inf"))
    ]
    if not due:
        return alert
    alert = replace(alert, sent={**alert.sent, **{notifier: now for notifier, _ in due}})
    notifications.extend(
        Notification(notifier, "firing", last is not None, alert, now, None)
        for notifier, last in due
    )
    return alert


def _clear(
    rule: Rule,
    alert: Alert,
    now: float,
    value: Value | None,
    reason: str,
    transitions: list[Transition],
) -> Alert | None:
    """A firing alert whose condition is false: the alert kept firing under
    `keep_firing_for`, or None when it ends now (a pending one ends at once)."""
    if alert.phase is not Phase.FIRING or rule.keep_firing_for <= 0:
        return None
    since = alert.cleared_at if alert.cleared_at is not None else now
    if now - since >= rule.keep_firing_for:
        return None
    kept = replace(alert, cleared_at=since)
    if value is not None:
        kept = replace(kept, value=value, evaluated_at=now)
    if alert.cleared_at is None:
        # Logged with the value that made the condition false.
        why = f"{reason}; kept firing for {rule.keep_firing_for:g}s"
        transitions.append(Transition(kept, Change.KEPT, now, why))
    return kept


def _end(
    alert: Alert,
    now: float,
    value: Value | None,
    reason: str,
    transitions: list[Transition],
    notifications: list[Notification],
) -> None:
    if value is not None:
        alert = replace(alert, value=value, evaluated_at=now)
    if alert.phase is Phase.PENDING:
        transitions.append(Transition(alert, Change.INACTIVE, now, reason))
        return
    transitions.append(Transition(alert, Change.RESOLVED, now, reason))
    notifications.extend(
        Notification(notifier, "resolved", False, alert, now, now) for notifier in alert.sent
    )


def _absence_is_real(view: ClusterView, alert: Alert) -> bool:
    """Whether a series missing from this view is really gone, rather than unseen."""
    if not view.health.up:
        return False
    group = alert.label("consumergroup")
    topic = alert.label("topic")
    for error in view.health.last_errors:
        if error.group is None and error.topic is None:
            return False  # e.g. ListGroups failed on a broker: anything may be missing
        if group is not None and error.group == group:
            return False
        if topic is not None and error.topic == topic:
            return False
    seen = view.groups.get(group) if group is not None else None
    return not (seen is not None and seen.stale)


def sorted_alerts(state: Mapping[AlertKey, Alert]) -> list[Alert]:
    """Alerts in a stable order for display: rule, then labels."""
    return sorted(state.values(), key=lambda a: (a.rule, a.identity))
