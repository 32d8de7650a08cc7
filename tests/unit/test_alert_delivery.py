"""Delivery: queue, worker, retries and backoff, against a real local HTTP receiver."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lag_exporter.alerts.delivery import (
    DELIVERED,
    DROPPED_AFTER_HORIZON,
    FAILED,
    RETRIED,
    Deliverer,
    HttpRequest,
)
from lag_exporter.alerts.engine import Notification
from lag_exporter.alerts.notifiers import Context, endpoint, payload_builder
from lag_exporter.alerts.rules import NotifierConfig, parse_alerting

from ..receiver import receiving
from .alert_factories import Run, lag_poll, rule

T0 = 1_700_000_000.0
CTX = Context("exporter-1:9308", "http://exporter-1:9308")


def notifier(url: str, **fields: Any) -> NotifierConfig:
    doc = {"type": "webhook", "url": url, "backoff": "10ms", **fields}
    return parse_alerting(
        {"notifiers": {"hook": doc}}, cluster_names=["c1"], cluster_label_names=()
    ).notifiers["hook"]


def a_notification() -> Notification:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    (n,) = run.notifications
    return n


def deliverer(cfg: NotifierConfig, **kwargs: Any) -> Deliverer:
    return Deliverer(cfg, payload_builder(cfg, CTX), endpoint(cfg), **kwargs)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_delivered_with_headers_and_basic_auth(tmp_path: Path) -> None:
    with receiving() as r:
        cfg = notifier(
            r.url + "/in",
            headers={"X-Api-Key": "k3y"},
            basic_auth={"username": "u", "password": "p4ss"},
        )
        d = deliverer(cfg)
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(DELIVERED) == 1)
        d.stop(1)
    (req,) = r.received()
    assert req.path == "/in"
    assert req.headers["X-Api-Key"] == "k3y"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p4ss").decode()
    assert req.headers["Content-Type"] == "application/json"
    assert req.json()["state"] == "firing" and req.json()["version"] == "1"


def test_retries_5xx_with_doubling_backoff_then_delivers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "lag_exporter.alerts.delivery")
    with receiving([503, 500, 502]) as r:
        d = deliverer(
            notifier(r.url, max_attempts=5, basic_auth={"username": "u", "password": "pw!"})
        )
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(DELIVERED) == 1)
        d.stop(1)
        assert [q.status for q in r.received(None)] == [503, 500, 502, 200]
        gaps = [b.at - a.at for a, b in zip(r.received(None), r.received(None)[1:], strict=False)]
    assert d.stats().results[RETRIED] == 3
    # 10 ms, 20 ms, 40 ms: each wait at least as long as planned, and doubling.
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039
    assert "retrying in 0.01s" in caplog.text and "retrying in 0.04s" in caplog.text
    assert "pw!" not in caplog.text and r.url not in caplog.text


def test_4xx_is_final_and_counted_as_failed(caplog: pytest.LogCaptureFixture) -> None:
    with receiving([400, 400]) as r:
        d = deliverer(notifier(r.url))
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(FAILED) == 1)
        d.stop(1)
        assert len(r.received(None)) == 1
    assert "behind{cluster=c1,consumergroup=g,topic=t,partition=0} firing not delivered" in (
        caplog.text
    )
    assert "HTTP 400, not retried" in caplog.text


def test_429_is_retried() -> None:
    with receiving([429]) as r:
        d = deliverer(notifier(r.url))
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(DELIVERED) == 1)
        d.stop(1)


def test_redirect_is_not_followed() -> None:
    with receiving([302]) as r:
        d = deliverer(notifier(r.url))
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(FAILED) == 1)
        d.stop(1)
        assert [q.path for q in r.received(None)] == ["/"]


def test_attempts_exhausted_on_connection_errors(caplog: pytest.LogCaptureFixture) -> None:
    with receiving() as r:
        url = r.url  # closed when the block ends: nothing listens there afterwards
    d = deliverer(notifier(url, max_attempts=3))
    d.start()
    d.submit(a_notification())
    wait_for(lambda: d.stats().results.get(DROPPED_AFTER_HORIZON) == 1)
    d.stop(1)
    assert d.stats().results[RETRIED] == 2
    assert "given up after 3 attempt(s)" in caplog.text and "last: URLError" in caplog.text


def test_timeout_is_retried() -> None:
    with receiving(delay=0.5) as r:
        d = deliverer(notifier(r.url, timeout="100ms", max_attempts=2))
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(DROPPED_AFTER_HORIZON) == 1)
        d.stop(1)
        assert len(r.received(None)) == 2


def notifications_of_partitions(count: int) -> list[Notification]:
    """First firings of `count` different alerts (one per partition)."""
    run = Run([rule()])
    run.step(lag_poll(T0, *([500] * count)))
    return list(run.notifications)


def test_full_outbox_pushes_out_the_oldest_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def stuck(request: HttpRequest) -> int:
        release.wait(5)
        return 200

    d = deliverer(notifier("http://127.0.0.1:9/", queue_size=2), transport=stuck)
    d.start()
    first, *rest = notifications_of_partitions(6)
    d.submit(first)
    wait_for(lambda: d.stats().pending.get(first.alert.key, ("", 0, 0))[0] == "firing")
    time.sleep(0.05)  # the worker has taken `first`: it is in flight
    for n in rest:
        d.submit(n)
    # Room for 2, the one in flight included: partitions 1-4 pushed out, oldest first.
    assert d.stats().results[FAILED] == 4
    assert "not delivered: outbox full (2 waiting)" in caplog.text
    release.set()
    wait_for(lambda: d.stats().results.get(DELIVERED) == 2)
    d.stop(1)
    assert "partition=4} firing not delivered" in caplog.text
    assert "partition=5} firing not delivered" not in caplog.text


def test_one_alert_retrying_does_not_hold_back_another() -> None:
    first, second = notifications_of_partitions(2)
    sent: list[str] = []

    def picky(request: HttpRequest) -> int:
        partition = json.loads(request.body)["partition"]
        sent.append(str(partition))
        return 503 if partition == 0 else 200

    d = deliverer(notifier("http://127.0.0.1:9/", backoff="200ms"), transport=picky)
    d.start()
    d.submit(first)
    d.submit(second)
    wait_for(lambda: d.stats().results.get(DELIVERED) == 1)
    d.stop(1)
    # One attempt for partition 0, then partition 1 at once, not after the backoff.
    assert sent[:2] == ["0", "1"]
    assert d.stats().pending.keys() == {first.alert.key}


def test_resolved_waits_for_its_own_firing() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 10, 5))
    firing, resolved = run.notifications
    states: list[str] = []
    answers = [503, 503]

    def flaky(request: HttpRequest) -> int:
        states.append(json.loads(request.body)["state"])
        return answers.pop(0) if answers else 200

    d = deliverer(notifier("http://127.0.0.1:9/"), transport=flaky)
    d.submit(firing)
    d.submit(resolved)
    d.start()
    wait_for(lambda: d.stats().results.get(DELIVERED) == 2)
    d.stop(1)
    assert states == ["firing", "firing", "firing", "resolved"]


def test_submit_never_blocks_on_a_dead_receiver() -> None:
    def slow(request: HttpRequest) -> int:
        time.sleep(0.5)
        return 503

    d = deliverer(notifier("http://127.0.0.1:9/", queue_size=1), transport=slow)
    d.start()
    notifications = notifications_of_partitions(100)
    started = time.monotonic()
    for n in notifications:
        d.submit(n)
    # A blocking submit would wait 0.5 s per notification.
    assert time.monotonic() - started < 2
    d.stop(0.1)


def test_stop_mid_backoff_keeps_the_notification_queued(caplog: pytest.LogCaptureFixture) -> None:
    d = deliverer(notifier("http://127.0.0.1:9/", backoff="30s"), transport=lambda r: 503)
    d.start()
    n = a_notification()
    d.submit(n)
    wait_for(lambda: "retrying in 30s" in caplog.text)
    started = time.monotonic()
    d.stop(0.2)
    assert time.monotonic() - started < 3
    assert d.stats().results.get(FAILED) is None and d.stats().queued == 1
    (entry,), _ = d.entries()
    assert entry.notification == n and entry.attempts == 1
    assert "1 notification(s) still queued at stop" in caplog.text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.mark.parametrize(
    ("tls", "outcome"),
    [
        ({"ca_file": "CERT"}, DELIVERED),
        ({"insecure_skip_verify": True}, DELIVERED),
        (None, DROPPED_AFTER_HORIZON),  # self-signed, not trusted: retried, then given up
    ],
)
def test_tls_ca_file_and_skip_verify(
    certificate: tuple[str, str], tls: dict[str, Any] | None, outcome: str
) -> None:
    with receiving(tls=certificate) as r:
        fields: dict[str, Any] = {"max_attempts": 1}
        if tls is not None:
            fields["tls"] = {k: certificate[0] if v == "CERT" else v for k, v in tls.items()}
        d = deliverer(notifier(r.url, **fields))
        d.start()
        d.submit(a_notification())
        wait_for(lambda: d.stats().results.get(outcome) == 1)
        d.stop(1)


def test_a_receiver_answering_too_late_gets_the_resolve_next() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 10, 5))
    firing, resolved = run.notifications
    with receiving(delay=0.5) as r:
        d = deliverer(notifier(r.url, timeout="100ms", backoff="50ms"))
        d.submit(firing)
        d.start()
        wait_for(lambda: len(r.received()) >= 2)  # two timed-out attempts of the firing
        d.submit(resolved)
        wait_for(lambda: any(q.json()["state"] == "resolved" for q in r.received()))
        d.stop(1)
        states = [q.json()["state"] for q in r.received()]
    # Copies of the firing (the receiver took each), then the resolve: it does
    # not wait behind a firing that is never acknowledged.
    assert states[0] == "firing" and "resolved" in states
    first_resolved = states.index("resolved")
    assert set(states[:first_resolved]) == {"firing"}
