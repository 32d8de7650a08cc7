"""Notification payloads: webhook (native or Alertmanager's), Alertmanager API, Slack. Pure.

Native webhook payload, version "1" (documented in README.md, "Alerting"):
one JSON object per notification; fields are only ever added within a
version, so a receiver written against "1" keeps working.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..status import STATUS_CODES, Status
from .engine import Alert, Notification
from .measures import MEASURES
from .rules import NotifierConfig
from .template import humanize

PAYLOAD_VERSION = "1"
# Alertmanager's "no end time" in its webhook payloads.
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Context:
    """Who sends: the exporter instance and where its alerts can be seen."""

    instance: str
    external_url: str

    @property
    def generator_url(self) -> str:
        return f"{self.external_url}/api/v1/alerts"


def rfc3339(ts: float) -> str:
    """Unix time -> '2024-05-01T12:00:00.123Z' (UTC, milliseconds)."""
    whole = int(ts)
    millis = round((ts - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _code(word: object) -> int | None:
    try:
        return STATUS_CODES[Status(str(word))]
    except ValueError:
        return None


def measured(a: Alert) -> dict[str, Any]:
    """`value` and `threshold` as numbers whatever the measure (a status word as
    its numeric code, the value of kafka_consumergroup_status), the words in
    `status` and `threshold_status` (status rules only, else null), and both
    for people in `value_text` and `threshold_text`."""
    measure = MEASURES.get(a.metric)
    unit = measure.unit if measure is not None else ""
    words = unit == "status"
    return {
        "value": _code(a.value) if words and a.value is not None else a.value,
        "threshold": _code(a.threshold) if words else a.threshold,
        "status": str(a.value) if words and a.value is not None else None,
        "threshold_status": str(a.threshold) if words else None,
        "value_text": humanize(a.value, unit),
        "threshold_text": humanize(a.threshold, unit),
    }


def native(n: Notification, ctx: Context) -> dict[str, Any]:
    """The exporter's own payload (version 1)."""
    a = n.alert
    partition = a.label("partition")
    return {
        "version": PAYLOAD_VERSION,
        "rule": a.rule,
        "state": n.status,
        "repeat": n.repeat,
        "fingerprint": a.fingerprint,
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "metric": a.metric,
        "op": a.op,
        **measured(a),
        "startsAt": rfc3339(a.fired_at if a.fired_at is not None else a.active_since),
        "endsAt": rfc3339(n.ends_at) if n.ends_at is not None else None,
        "cluster": a.label("cluster"),
        "group": a.label("consumergroup"),
        "topic": a.label("topic"),
        "partition": int(partition) if partition is not None else None,
        "instance": ctx.instance,
        "generatorURL": ctx.generator_url,
        "timestamp": rfc3339(n.at),
    }


def _alertmanager_alert(n: Notification, ctx: Context, ends_at: str) -> dict[str, Any]:
    a = n.alert
    return {
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "startsAt": rfc3339(a.fired_at if a.fired_at is not None else a.active_since),
        "endsAt": ends_at,
        "generatorURL": ctx.generator_url,
    }


def group_key(labels: Mapping[str, str]) -> str:
    """Alertmanager's groupKey for a group of one alert grouped by all its labels
    (route `{}`, then the label set as Alertmanager prints it: sorted, quoted)."""
    body = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))
    return f"{{}}:{{{body}}}"


def alertmanager_webhook(n: Notification, ctx: Context, receiver: str) -> dict[str, Any]:
    """What Alertmanager's own webhook_config sends (version 4), for one alert,
    so receivers written for Alertmanager work unchanged. Each notification
    carries one alert, as from a route with `group_by: ['...']`: the group is
    the alert, so groupKey (its full label set) is unique per alert and the
    same in its firing and resolved notifications, and groupLabels and
    commonLabels are its labels."""
    a = n.alert
    alert = _alertmanager_alert(n, ctx, rfc3339(n.ends_at) if n.ends_at else _ZERO_TIME)
    alert["status"] = n.status
    alert["fingerprint"] = a.fingerprint
    labels = dict(a.labels)
    return {
        "version": "4",
        "groupKey": group_key(labels),
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": receiver,
        "groupLabels": labels,
        "commonLabels": dict(labels),
        "commonAnnotations": dict(a.annotations),
        "externalURL": ctx.external_url,
        "alerts": [alert],
    }


def alertmanager_api(n: Notification, ctx: Context, repeat_interval: float) -> list[dict[str, Any]]:
    """A POST /api/v2/alerts body, as Prometheus sends it: a firing alert is
    valid for four repeat intervals (Alertmanager resolves it by itself if the
    exporter dies); a resolved one ends when it ended."""
    ends = n.ends_at if n.ends_at is not None else n.at + 4 * repeat_interval
    return [_alertmanager_alert(n, ctx, rfc3339(ends))]


_SLACK_COLOURS = {"firing": "#d63232", "resolved": "#2eb67d"}


def slack(n: Notification, ctx: Context, cfg: NotifierConfig) -> dict[str, Any]:
    """An incoming-webhook message: one line that says it all, details as fields."""
    a = n.alert
    labels = dict(a.labels)
    annotations = dict(a.annotations)
    state = "RESOLVED" if n.status == "resolved" else "FIRING"
    if n.repeat:
        state += " (still)"
    summary = annotations.get("summary", "")
    headline = f"[{state}] {a.rule}" + (f": {summary}" if summary else "")
    fields = [
        {"title": title, "value": value, "short": True}
        for title, value in (
            ("Cluster", a.label("cluster")),
            ("Group", a.label("consumergroup")),
            ("Topic", a.label("topic")),
            ("Partition", a.label("partition")),
            ("Value", measured(a)["value_text"] if n.status == "firing" else None),
            ("Threshold", f"{a.metric} {a.op} {measured(a)['threshold_text']}"),
            ("Severity", labels.get("severity")),
        )
        if value
    ]
    attachment: dict[str, Any] = {
        "color": _SLACK_COLOURS[n.status],
        "fallback": headline,
        "title": f"[{state}] {a.rule}",
        "text": "\n".join(t for t in (summary, annotations.get("description", "")) if t),
        "fields": fields,
        "footer": f"lag-exporter {ctx.instance}",
        "ts": int(n.at),
    }
    doc: dict[str, Any] = {"text": headline, "attachments": [attachment]}
    if cfg.channel:
        doc["channel"] = cfg.channel
    if cfg.username:
        doc["username"] = cfg.username
    return doc


def endpoint(cfg: NotifierConfig) -> str:
    """Where the notifier POSTs."""
    url = cfg.url.reveal()
    if cfg.type == "alertmanager":
        return url.rstrip("/") + "/api/v2/alerts"
    return url


def payload_builder(cfg: NotifierConfig, ctx: Context) -> Callable[[Notification], bytes]:
    """The function that turns a notification into the body this notifier sends."""
    if cfg.type == "alertmanager":
        return lambda n: _json(alertmanager_api(n, ctx, cfg.repeat_interval))
    if cfg.type == "slack":
        return lambda n: _json(slack(n, ctx, cfg))
    if cfg.format == "alertmanager":
        return lambda n: _json(alertmanager_webhook(n, ctx, cfg.name))
    return lambda n: _json(native(n, ctx))
