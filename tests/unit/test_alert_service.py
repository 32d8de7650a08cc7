"""The daemon's alerting: engine, state file and delivery together, on a fake transport."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lag_exporter.alerts.delivery import HttpRequest
from lag_exporter.alerts.service import Alerting
from lag_exporter.config import ConfigError

from .alert_factories import alerting, lag_poll
from .factories import view_of

T0 = 1_700_000_000.0
HOOK = {"hook": {"type": "webhook", "url": "http://127.0.0.1:1/"}}


class Transport:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = threading.Condition()

    def __call__(self, request: HttpRequest) -> int:
        with self.arrived:
            self.bodies.append(json.loads(request.body))
            self.arrived.notify_all()
        return 200

    def wait(self, count: int) -> list[dict[str, Any]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.bodies) >= count, timeout=5)
            return list(self.bodies)


def service(tmp_path: Path, *rules: dict[str, Any], transport: Transport) -> Alerting:
    settings = alerting(*rules, notifiers=HOOK)
    settings = type(settings)(
        rules=settings.rules,
        notifiers=settings.notifiers,
        state_file=str(tmp_path / "alerts.json"),
        instance="test-1",
    )
    return Alerting(
        settings,
        cluster_names=["c1"],
        listen_host_port=("0.0.0.0", 9308),
        transport=transport,
        clock=lambda: T0 + 1000,
    )


RULE = {"name": "behind", "metric": "lag", "threshold": 100}


def test_one_log_line_per_change_and_state_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lag_exporter.alerts.service")
    transport = Transport()
    a = service(tmp_path, {**RULE, "for": "10s"}, transport=transport)
    a.start()
    try:
        a.evaluate(view_of(lag_poll(T0, 500)), T0)
        a.evaluate(view_of(lag_poll(T0 + 10, 600)), T0 + 10)
        a.evaluate(view_of(lag_poll(T0 + 20, 700)), T0 + 20)
        snapshot = a.evaluate(view_of(lag_poll(T0 + 30, 5)), T0 + 30)
        bodies = transport.wait(2)
    finally:
        a.stop(1)
    assert [b["state"] for b in bodies] == ["firing", "resolved"]
    assert bodies[0]["instance"] == "test-1" and bodies[0]["value"] == 600
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("service")]
    assert lines == [
        "alert behind pending: cluster=c1 consumergroup=g topic=t partition=0; "
        "lag=500 (threshold > 100); condition true",
        "alert behind firing: cluster=c1 consumergroup=g topic=t partition=0; "
        "lag=600 (threshold > 100); condition true for 10s",
        "alert behind resolved: cluster=c1 consumergroup=g topic=t partition=0; "
        "lag=5 (threshold > 100); condition no longer true",
    ]
    assert snapshot.alerts == ()
    assert json.loads((tmp_path / "alerts.json").read_text())["alerts"] == []


def test_start_resolves_alerts_of_a_rule_removed_while_stopped(tmp_path: Path) -> None:
    transport = Transport()
    first = service(tmp_path, RULE, {**RULE, "name": "old"}, transport=transport)
    first.evaluate(view_of(lag_poll(T0, 500)), T0)  # not started: queued, never sent
    saved = json.loads((tmp_path / "alerts.json").read_text())["alerts"]
    assert sorted(a["rule"] for a in saved) == ["behind", "old"]

    again = service(tmp_path, RULE, transport=transport)
    again.start()
    try:
        bodies = transport.wait(3)
    finally:
        again.stop(1)
    # The firings queued before the restart were never delivered: they go out
    # first, and the receiver of `old` learns that it fired, then that it ended.
    assert [(b["rule"], b["state"]) for b in bodies] == [
        ("behind", "firing"),
        ("old", "firing"),
        ("old", "resolved"),
    ]
    assert [a.rule for a in again.snapshot().alerts] == ["behind"]


def test_corrupt_state_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "alerts.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"alerting.state_file: alert state file .* not valid"):
        service(tmp_path, RULE, transport=Transport())


def test_an_exporter_rule_on_notifications_failing_pages_through_another_notifier(
    tmp_path: Path,
) -> None:
    from lag_exporter.alerts.delivery import Deliverer

    transport = Transport()
    notifiers = {
        "pager": {"type": "webhook", "url": "http://127.0.0.1:1/pager"},
        "dead": {"type": "webhook", "url": "http://127.0.0.1:2/dead", "backoff": "1h"},
    }
    settings = alerting(
        {**RULE, "notifiers": ["dead"]},
        {
            "name": "DeliveryFailing",
            "metric": "notifications_failing",
            "op": "==",
            "threshold": 1,
            "notifiers": ["pager"],
        },
        notifiers=notifiers,
    )

    def route(request: HttpRequest) -> int:
        if request.url.endswith("/dead"):
            return 503
        return transport(request)

    a = Alerting(
        settings,
        cluster_names=["c1"],
        listen_host_port=("0.0.0.0", 9308),
        transport=route,
        clock=lambda: T0 + 1000,
    )
    a.start()
    try:
        a.evaluate(view_of(lag_poll(T0, 500)), T0)  # queued for "dead", which fails
        dead: Deliverer = a._deliverers["dead"]
        started = time.monotonic()
        while not dead.stats().failing:
            assert time.monotonic() - started < 5, "the dead notifier never failed"
            time.sleep(0.01)
        snapshot = a.evaluate(view_of(lag_poll(T0 + 10, 500)), T0 + 10)
        (body,) = transport.wait(1)
    finally:
        a.stop(1)
    assert body["rule"] == "DeliveryFailing" and body["state"] == "firing"
    assert body["labels"] == {
        "alertname": "DeliveryFailing",
        "notifier": "dead",
        "severity": "warning",
    }
    assert body["cluster"] is None and body["value_text"] == "failing"
    assert {x.rule for x in snapshot.alerts} == {"behind", "DeliveryFailing"}
