"""Alerts end to end: a real broker, the real exporter process, a real HTTP receiver
on 127.0.0.1 and a real Alertmanager."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lag_exporter.alerts.notifiers import rfc3339

from ..receiver import Receiver, receiving
from .conftest import Exporter, Kafka, free_port, value, wait_until

StartExporter = Callable[..., Exporter]
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def config(kafka: Kafka, rules: list[dict[str, Any]], **alerting: Any) -> dict[str, Any]:
    return {
        "poll_interval": "1s",
        "clusters": [{"name": "test", "kafka": {"bootstrap.servers": kafka.bootstrap}}],
        "alerting": {"rules": rules, **alerting},
    }


def caught_up_group(kafka: Kafka, unique: Callable[[str], str]) -> tuple[str, str, Any]:
    """A topic and a live consumer group with no lag: (topic, group, consumer)."""
    topic = kafka.create_topic(unique("orders"), partitions=2)
    group = unique("billing")
    kafka.produce(topic, 10)
    consumer = kafka.consumer(group, topic)
    assert kafka.consume(consumer, 10) == 10
    return topic, group, consumer


def lag_sum(exporter: Exporter, group: str) -> float | None:
    return value(exporter.metrics(), "kafka_consumergroup_lag_sum", consumergroup=group)


def states(receiver: Receiver) -> list[str]:
    return [body["state"] for body in receiver.bodies()]


def alerts_api(exporter: Exporter) -> list[dict[str, Any]]:
    status, body = exporter.get("/api/v1/alerts")
    assert status == 200
    alerts: list[dict[str, Any]] = json.loads(body)["alerts"]
    return alerts


def test_consumer_stops_one_firing_then_catches_up_one_resolved(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic, group, consumer = caught_up_group(kafka, unique)
    rule = {
        "name": "BillingBehind",
        "metric": "lag_sum",
        "threshold": 50,
        "for": "2s",
        "groups": [group],
        "annotations": {"summary": "{{ $labels.consumergroup }} is {{ $value }} behind"},
    }
    with receiving() as receiver:
        hook = {"type": "webhook", "url": receiver.url + "/alerts"}
        exporter = start_exporter(
            config=config(kafka, [rule], notifiers={"hook": hook}, instance="it-1")
        )
        wait_until(lambda: lag_sum(exporter, group) == 0, what="group caught up")

        kafka.produce(topic, 100)  # the consumer has stopped: lag 100 > 50
        wait_until(lambda: alerts_api(exporter), what="alert pending or firing")
        wait_until(lambda: states(receiver) == ["firing"], what="firing notification")
        (firing,) = receiver.bodies()
        assert firing["version"] == "1" and firing["rule"] == "BillingBehind"
        assert (firing["cluster"], firing["group"], firing["topic"]) == ("test", group, topic)
        assert firing["value"] == 100 and firing["threshold"] == 50
        assert firing["instance"] == "it-1" and firing["partition"] is None
        assert firing["annotations"]["summary"] == f"{group} is 100 behind"
        (shown,) = alerts_api(exporter)
        assert shown["state"] == "firing" and shown["value"] == 100
        # True for at least `for` before it fired.
        assert shown["firing_since"] - shown["active_since"] >= 2

        exporter.wait_polls(3)
        assert states(receiver) == ["firing"]  # still firing: no second notification

        assert kafka.consume(consumer, 100) == 100
        wait_until(lambda: states(receiver) == ["firing", "resolved"], what="resolved")
        resolved = receiver.bodies()[1]
        assert resolved["value"] == 0 and resolved["endsAt"] is not None
        assert resolved["fingerprint"] == firing["fingerprint"]
        exporter.wait_polls(3)
        assert states(receiver) == ["firing", "resolved"]
        assert alerts_api(exporter) == []
        assert receiver.received()[0].path == "/alerts"

    s = exporter.metrics()
    assert value(s, "lag_exporter_notifications_total", notifier="hook", result="delivered") == 2
    assert value(s, "lag_exporter_alerts", rule="BillingBehind", state="firing") == 0
    log = exporter.log()
    assert log.count("alert BillingBehind firing:") == 1
    assert log.count("alert BillingBehind resolved:") == 1


def test_receiver_answering_503_still_gets_the_notification(
    kafka: Kafka, unique: Callable[[str], str], start_exporter: StartExporter
) -> None:
    topic, group, _ = caught_up_group(kafka, unique)
    rule = {"name": "Behind503", "metric": "max_lag", "threshold": 5, "groups": [group]}
    with receiving(statuses=[503, 503, 503]) as receiver:
        hook = {"type": "webhook", "url": receiver.url, "backoff": "200ms", "max_attempts": 5}
        exporter = start_exporter(config=config(kafka, [rule], notifiers={"hook": hook}))
        wait_until(lambda: lag_sum(exporter, group) == 0, what="group caught up")
        kafka.produce(topic, 20, partition=0)
        wait_until(lambda: states(receiver) == ["firing"], what="delivered after retries")
        assert [r.status for r in receiver.received(None)] == [503, 503, 503, 200]
        assert all(r.body == receiver.received()[0].body for r in receiver.received(None))
        exporter.wait_polls(2)
        assert states(receiver) == ["firing"]
    s = exporter.metrics()
    assert value(s, "lag_exporter_notifications_total", notifier="hook", result="retried") == 3
    assert value(s, "lag_exporter_notifications_total", notifier="hook", result="delivered") == 1
    assert value(s, "lag_exporter_notification_queue_length", notifier="hook") == 0
    assert value(s, "lag_exporter_notifications_failing", notifier="hook") == 0
    assert "attempt 1 failed (HTTP 503), retrying in 0.2s" in exporter.log()


def test_state_file_survives_restarts(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    tmp_path: Path,
) -> None:
    topic, group, consumer = caught_up_group(kafka, unique)
    rule = {"name": "Restarted", "metric": "lag_sum", "threshold": 5, "groups": [group]}
    state = tmp_path / "alerts.json"
    with receiving() as receiver:

        def start() -> Exporter:
            hook = {"type": "webhook", "url": receiver.url}
            doc = config(kafka, [rule], notifiers={"hook": hook}, state_file=str(state))
            return start_exporter(config=doc)

        exporter = start()
        wait_until(lambda: lag_sum(exporter, group) == 0, what="group caught up")
        kafka.produce(topic, 30)
        wait_until(lambda: states(receiver) == ["firing"], what="firing")
        assert exporter.stop() == 0
        assert json.loads(state.read_text())["alerts"][0]["phase"] == "firing"

        # Restarted while the alert still fires: it is not announced a second time.
        exporter = start()
        wait_until(lambda: alerts_api(exporter), what="alert restored")
        exporter.wait_polls(3)
        assert states(receiver) == ["firing"]
        assert alerts_api(exporter)[0]["state"] == "firing"
        assert exporter.stop() == 0

        # The consumer catches up while the exporter is down: the resolve is not lost.
        assert kafka.consume(consumer, 30) == 30
        exporter = start()
        wait_until(lambda: states(receiver) == ["firing", "resolved"], what="resolved")
        exporter.wait_polls(2)
        assert states(receiver) == ["firing", "resolved"]
        assert json.loads(state.read_text())["alerts"] == []


def test_notification_queued_at_sigkill_is_delivered_after_the_restart(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    tmp_path: Path,
) -> None:
    """The receiver is down, the firing notification waits in the outbox; the
    exporter is killed (no chance to save anything then); after the restart
    the receiver, back, gets it once, and the resolve after it."""
    topic, group, consumer = caught_up_group(kafka, unique)
    rule = {"name": "Queued", "metric": "lag_sum", "threshold": 5, "groups": [group]}
    state = tmp_path / "alerts.json"
    port = free_port()  # nothing listens there yet: connection refused
    hook = {"type": "webhook", "url": f"http://127.0.0.1:{port}/", "backoff": "200ms"}
    doc = config(kafka, [rule], notifiers={"hook": hook}, state_file=str(state))
    exporter = start_exporter(config=doc)
    wait_until(lambda: lag_sum(exporter, group) == 0, what="group caught up")
    kafka.produce(topic, 30)

    def queued() -> bool:
        s = exporter.metrics()
        return bool(value(s, "lag_exporter_notifications_total", notifier="hook", result="retried"))

    wait_until(queued, what="attempts failing")
    s = exporter.metrics()
    assert value(s, "lag_exporter_notification_queue_length", notifier="hook") == 1
    assert value(s, "lag_exporter_notifications_failing", notifier="hook") == 1
    assert (
        value(s, "lag_exporter_notification_oldest_queued_age_seconds", notifier="hook") or 0
    ) > 0
    (shown,) = alerts_api(exporter)
    assert shown["pending_notifications"]["hook"]["state"] == "firing"
    assert shown["notified"] == {}
    assert exporter.stop(signal.SIGKILL) == -signal.SIGKILL
    (entry,) = json.loads(state.read_text())["outboxes"]["hook"]["entries"]

    with receiving(port=port) as receiver:
        exporter = start_exporter(config=doc)
        wait_until(lambda: states(receiver) == ["firing"], what="the queued firing delivered")
        (body,) = receiver.bodies()
        assert body["timestamp"] == rfc3339(entry["at"]) and body["repeat"] is False
        wait_until(lambda: alerts_api(exporter)[0]["notified"].get("hook"), what="notified")
        assert alerts_api(exporter)[0]["pending_notifications"] == {}
        assert kafka.consume(consumer, 30) == 30
        wait_until(lambda: states(receiver) == ["firing", "resolved"], what="resolved")
        exporter.wait_polls(2)
        assert states(receiver) == ["firing", "resolved"]
    s = exporter.metrics()
    assert value(s, "lag_exporter_notification_queue_length", notifier="hook") == 0
    assert value(s, "lag_exporter_notifications_failing", notifier="hook") == 0


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free port, clustering off, a receiver that drops everything."""
    if ALERTMANAGER is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus-alertmanager is not installed (make install-system)")
        pytest.skip("prometheus-alertmanager is not installed (make install-system)")
    port = free_port()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(
        "route:\n  receiver: 'null'\n  group_wait: 1s\n  group_interval: 1s\n"
        "receivers:\n  - name: 'null'\n"
    )
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
                return r.status == 200

        wait_until(ready, timeout=30, what="alertmanager ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def alertmanager_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/api/v2/alerts", timeout=5) as r:
        alerts: list[dict[str, Any]] = json.loads(r.read())
    return [a for a in alerts if a["labels"].get("alertname") == alertname]


def test_real_alertmanager_lists_the_alert_while_it_fires(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: StartExporter,
    alertmanager: str,
) -> None:
    topic, group, consumer = caught_up_group(kafka, unique)
    name = unique("AmBehind")
    rule = {
        "name": name,
        "metric": "max_lag",
        "threshold": 10,
        "severity": "page",
        "groups": [group],
        "labels": {"team": "payments"},
    }
    am = {"type": "alertmanager", "url": alertmanager}
    exporter = start_exporter(
        config=config(
            kafka, [rule], notifiers={"am": am}, external_url="http://exporter.example:9308"
        )
    )
    wait_until(lambda: lag_sum(exporter, group) == 0, what="group caught up")
    kafka.produce(topic, 40, partition=1)

    (alert,) = wait_until(lambda: alertmanager_alerts(alertmanager, name), what="alert in AM")
    assert alert["status"]["state"] == "active"
    assert alert["labels"] == {
        "alertname": name,
        "severity": "page",
        "team": "payments",
        "cluster": "test",
        "consumergroup": group,
    }
    assert alert["generatorURL"] == "http://exporter.example:9308/api/v1/alerts"
    assert "summary" in alert["annotations"]

    assert kafka.consume(consumer, 40) == 40
    # The firing alert was valid for minutes: it leaves the list this soon only
    # because the resolve (endsAt = when it ended) reached Alertmanager.
    wait_until(lambda: alertmanager_alerts(alertmanager, name) == [], what="alert resolved in AM")
    exporter.wait_polls(3)
    assert alertmanager_alerts(alertmanager, name) == []  # and nothing re-fires it
    s = exporter.metrics()
    delivered = {"notifier": "am", "result": "delivered"}
    # Firing, resolved, and a reminder if the test ran past the 1-minute repeat interval.
    assert (value(s, "lag_exporter_notifications_total", **delivered) or 0) >= 2
    assert value(s, "lag_exporter_notifications_total", notifier="am", result="failed") == 0
