"""Payloads: the documented webhook format, Alertmanager's two formats, Slack; and
what the HTTP server shows."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lag_exporter.alerts.delivery import NotifierStats
from lag_exporter.alerts.engine import Notification
from lag_exporter.alerts.notifiers import Context, endpoint, payload_builder, rfc3339
from lag_exporter.alerts.publish import AlertsSnapshot, families, render_alerts
from lag_exporter.alerts.rules import NotifierConfig, parse_alerting
from lag_exporter.alerts.service import Alerting
from lag_exporter.daemon import Store
from lag_exporter.server import HttpServer

from .alert_factories import Run, alerting, lag_poll, rule
from .factories import view_of

T0 = 1_700_000_000.0
CTX = Context("exporter-1:9308", "http://exporter-1:9308")


def cfg(**fields: Any) -> NotifierConfig:
    doc = {"type": "webhook", "url": "http://r.example/hook", **fields}
    return parse_alerting(
        {"notifiers": {"n": doc}}, cluster_names=["c1"], cluster_label_names=()
    ).notifiers["n"]


def episode() -> tuple[Notification, Notification]:
    run = Run([rule(**{"for": "30s"}, annotations={"summary": "lag {{ $value }}"})])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 30.25, 600))
    run.step(lag_poll(T0 + 90, 3))
    firing, resolved = run.notifications
    return firing, resolved


def body(config: NotifierConfig, n: Notification) -> Any:
    return json.loads(payload_builder(config, CTX)(n))


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(T0 + 0.9996) == "2023-11-14T22:13:21.000Z"


def test_native_webhook_payload_version_1() -> None:
    firing, resolved = episode()
    doc = body(cfg(), firing)
    assert doc == {
        "version": "1",
        "rule": "behind",
        "state": "firing",
        "repeat": False,
        "fingerprint": firing.alert.fingerprint,
        "labels": {
            "alertname": "behind",
            "severity": "warning",
            "cluster": "c1",
            "consumergroup": "g",
            "topic": "t",
            "partition": "0",
        },
        "annotations": {"summary": "lag 600"},
        "metric": "lag",
        "op": ">",
        "value": 600,
        "threshold": 100,
        "status": None,
        "threshold_status": None,
        "value_text": "600 messages",
        "threshold_text": "100 messages",
        "startsAt": rfc3339(T0 + 30.25),
        "endsAt": None,
        "cluster": "c1",
        "group": "g",
        "topic": "t",
        "partition": 0,
        "instance": "exporter-1:9308",
        "generatorURL": "http://exporter-1:9308/api/v1/alerts",
        "timestamp": rfc3339(T0 + 30.25),
    }
    done = body(cfg(), resolved)
    assert done["state"] == "resolved" and done["endsAt"] == rfc3339(T0 + 90)
    assert done["value"] == 3 and done["startsAt"] == doc["startsAt"]
    assert done["fingerprint"] == doc["fingerprint"]


def test_alertmanager_webhook_format_for_existing_receivers() -> None:
    firing, resolved = episode()
    doc = body(cfg(format="alertmanager"), firing)
    assert doc["version"] == "4" and doc["status"] == "firing" and doc["receiver"] == "n"
    assert doc["groupLabels"] == doc["commonLabels"] == dict(firing.alert.labels)
    assert doc["groupKey"] == (
        '{}:{alertname="behind", cluster="c1", consumergroup="g", partition="0", '
        'severity="warning", topic="t"}'
    )
    assert doc["truncatedAlerts"] == 0
    (alert,) = doc["alerts"]
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["labels"]["consumergroup"] == "g" and alert["startsAt"] == rfc3339(T0 + 30.25)
    assert alert["generatorURL"] == "http://exporter-1:9308/api/v1/alerts"
    (ended,) = body(cfg(format="alertmanager"), resolved)["alerts"]
    assert ended["status"] == "resolved" and ended["endsAt"] == rfc3339(T0 + 90)


def test_alertmanager_webhook_group_key_is_one_per_alert_and_kept_by_its_resolve() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500, 600, 700))
    run.step(lag_poll(T0 + 10, 5, 600, 700))
    am = cfg(format="alertmanager")
    keys = [body(am, n)["groupKey"] for n in run.notifications]
    firing_keys, resolved_key = keys[:3], keys[3]
    assert len(set(firing_keys)) == 3  # one incident per alert
    assert resolved_key == firing_keys[0]  # the resolve closes the incident that fired
    assert body(am, run.notifications[3])["alerts"][0]["labels"]["partition"] == "0"


def test_status_rules_give_numbers_in_value_and_words_beside() -> None:
    from lag_exporter.alerts.notifiers import measured
    from lag_exporter.alerts.template import humanize, humanize_seconds

    (alert,) = Run([rule()]).step(lag_poll(T0, 14018)).state.values()
    status = replace(alert, metric="status", op="==", value="STOP", threshold="STOP")
    assert measured(status) == {
        "value": 4,
        "threshold": 4,
        "status": "STOP",
        "threshold_status": "STOP",
        "value_text": "STOP",
        "threshold_text": "STOP",
    }
    assert measured(alert)["value_text"] == "14,018 messages"
    seconds = replace(alert, metric="max_lag_seconds", value=100.0, threshold=60)
    assert measured(seconds)["value_text"] == "1m 40s"
    assert measured(seconds)["value"] == 100.0 and measured(seconds)["status"] is None
    assert humanize_seconds(7500) == "2h 5m" and humanize_seconds(0.25) == "0.25s"
    assert humanize(1, "messages") == "1 message" and humanize(0, "up") == "down"
    assert humanize(3.5, "messages/s") == "3.50 messages/s"


def test_alertmanager_api_body_like_prometheus() -> None:
    firing, resolved = episode()
    am = cfg(type="alertmanager", url="http://am:9093/")
    assert endpoint(am) == "http://am:9093/api/v2/alerts"
    (alert,) = body(am, firing)
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    # Valid for four re-send intervals, so Alertmanager ends it if the exporter dies.
    assert alert["endsAt"] == rfc3339(T0 + 30.25 + 4 * 60)
    (ended,) = body(am, resolved)
    assert ended["endsAt"] == rfc3339(T0 + 90) and ended["startsAt"] == alert["startsAt"]


def test_slack_message_reads_well() -> None:
    firing, resolved = episode()
    slack = cfg(type="slack", url="https://hooks.slack.example/x", channel="#kafka")
    doc = body(slack, firing)
    assert doc["text"] == "[FIRING] behind: lag 600" and doc["channel"] == "#kafka"
    (attachment,) = doc["attachments"]
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields == {
        "Cluster": "c1",
        "Group": "g",
        "Topic": "t",
        "Partition": "0",
        "Value": "600 messages",
        "Threshold": "lag > 100 messages",
        "Severity": "warning",
    }
    assert attachment["color"] == "#d63232"
    done = body(slack, resolved)
    assert done["text"].startswith("[RESOLVED] behind") and "Value" not in str(done)


def snapshot() -> AlertsSnapshot:
    run = Run([rule(**{"for": "1m"}), rule(name="sum", metric="lag_sum")])
    run.step(lag_poll(T0, 500, 50))
    firing = next(a for a in run.state.values() if a.rule == "sum")
    stats = NotifierStats(
        {"delivered": 3, "failed": 1, "retried": 2},
        queued=1,
        oldest_queued_age=12.5,
        failing=True,
        told={},
        pending={firing.key: ("firing", T0, 2)},
    )
    return AlertsSnapshot(
        alerts=tuple(run.state.values()),
        rules=("behind", "sum", "quiet"),
        notifiers={"hook": stats},
    )


def test_alert_metrics_by_rule_state_and_notifier_outcome() -> None:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import Collector, CollectorRegistry

    class C(Collector):
        def collect(self) -> Any:
            return iter(families(snapshot()))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(C())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert samples[("lag_exporter_alerts", (("rule", "behind"), ("state", "pending")))] == 1
    assert samples[("lag_exporter_alerts", (("rule", "sum"), ("state", "firing")))] == 1
    assert samples[("lag_exporter_alerts", (("rule", "quiet"), ("state", "firing")))] == 0

    def result(name: str) -> float:
        key = (("notifier", "hook"), ("result", name))
        return samples[("lag_exporter_notifications_total", key)]

    assert [result(r) for r in ("delivered", "retried", "failed", "dropped_after_horizon")] == [
        3,
        2,
        1,
        0,
    ]
    hook = (("notifier", "hook"),)
    assert samples[("lag_exporter_notification_queue_length", hook)] == 1
    assert samples[("lag_exporter_notification_oldest_queued_age_seconds", hook)] == 12.5
    assert samples[("lag_exporter_notifications_failing", hook)] == 1


def test_alerts_api_says_which_notifiers_were_told_and_which_wait() -> None:
    snap = snapshot()
    doc = json.loads(render_alerts(snap))
    by_rule = {a["rule"]: a for a in doc["alerts"]}
    assert by_rule["sum"]["pending_notifications"] == {
        "hook": {"state": "firing", "queued_at": rfc3339(T0), "attempts": 2}
    }
    assert by_rule["sum"]["notified"] == {}
    assert by_rule["sum"]["startsAt"] == rfc3339(T0)
    told = NotifierStats(told={next(a for a in snap.alerts if a.rule == "sum").key: T0 + 1})
    doc = json.loads(render_alerts(AlertsSnapshot(snap.alerts, snap.rules, {"hook": told})))
    by_rule = {a["rule"]: a for a in doc["alerts"]}
    assert by_rule["sum"]["notified"] == {"hook": rfc3339(T0 + 1)}
    assert by_rule["sum"]["pending_notifications"] == {}


def test_alerts_api_served_with_metrics_from_one_snapshot() -> None:
    settings = alerting(
        {"name": "behind", "metric": "lag", "threshold": 100, "for": "1m"},
        {"name": "sum", "metric": "lag_sum", "threshold": 100},
    )
    service = Alerting(settings, cluster_names=["c1"], listen_host_port=("0.0.0.0", 9308))
    store = Store(["c1"], service)
    assert json.loads(store.published.alerts_json) == {"alerts": []}
    assert b'lag_exporter_alerts{rule="behind",state="firing"} 0.0' in (
        store.published.exposition.text
    )
    store.update(view_of(lag_poll(T0, 500, 50)))
    server = HttpServer("127.0.0.1", 0, lambda: store.published)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/v1/alerts") as r:
            doc = json.loads(r.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as r:
            text = r.read()
    finally:
        server.stop()
    by_rule = {(a["rule"], a["partition"]): a for a in doc["alerts"]}
    pending = by_rule[("behind", 0)]
    assert pending["state"] == "pending" and pending["since"] == T0 and pending["value"] == 500
    assert pending["group"] == "g" and pending["topic"] == "t" and pending["firing_since"] is None
    fired = by_rule[("sum", None)]
    assert fired["state"] == "firing" and fired["value"] == 550 and fired["since"] == T0
    assert b'lag_exporter_alerts{rule="sum",state="firing"} 1.0' in text
    assert b"kafka_consumergroup_lag{" in text
    assert json.loads(render_alerts(None)) == {"alerts": []}
    # The firing alert was queued for both notifiers (not started here: nothing sent).
    assert b'lag_exporter_notification_queue_length{notifier="hook"} 1.0' in text
