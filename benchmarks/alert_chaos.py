"""Delivery chaos: do alerts reach their receivers whatever goes wrong on the way?

    python -m benchmarks.alert_chaos [--quick] [--only NAME ...] [--markdown FILE]

Starts a local Kafka broker (one listener behind a TCP proxy that can be cut),
a real Alertmanager, and for each scenario its own exporter process
(`python -m lag_exporter run`, a state file) and its own HTTP receivers on
127.0.0.1. The scenarios run at the same time, each on its own consumer groups:

- receiver_down: the receiver is down 10 minutes (alerts fire and resolve
  meanwhile), then comes back;
- receiver_flapping: the receiver answers 500 and 200 in turn;
- receiver_slow: the receiver answers after 20 s (the notifier's timeout is
  3 s), a second notifier with a healthy receiver gets the same alerts;
- sigkill_queued: the exporter is killed with SIGKILL while a notification
  is queued for a receiver that is down, then restarted;
- restart_firing: the exporter is restarted (SIGTERM) while lag, lag in
  seconds and group status alerts fire; histories are not kept (no state_dir);
- kafka_unreachable: the exporter cannot reach Kafka for 5 minutes (longer
  than max_staleness) while lag, lag in seconds and group status alerts
  fire, and a `cluster_up == 0` rule watches; it notifies a webhook and a
  real Alertmanager (whose own webhook goes to a receiver here), and the
  Alertmanager's alert list is checked throughout.

The benchmark decides every transition itself: a group's lag is raised above
the threshold (firing) and brought back to 0 (resolved) at known times, so
"expected" is what a perfect exporter would send. Per scenario and receiver it
prints transitions expected, delivered (accepted at least once), lost,
duplicated (extra copies of a transition, and whether every copy carries the
same fingerprint and timestamp), false resolves (a resolve that arrived before
the benchmark began to end the condition, or was decided longer than a poll
before that, or one never expected), extra pages (a firing never expected),
and the delivery latency (from the exporter's decision, the payload's
`timestamp`, which is the start of the poll that saw the change, to the first
copy accepted) p50 and max. `--quick` shortens the long outages to one or two minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata, TopicPartition

from localkafka import KafkaBroker
from tests.integration.proxy import Proxy

from .harness import ExporterProcess, exporter, free_port, percentile, wait_for

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
THRESHOLD = 100  # max_lag > THRESHOLD fires; each episode leaves 200 messages unconsumed
# Longer than any poll lasts (one that cannot reach Kafka takes up to ~30 s).
POLL_MAX = 45.0


# --- receivers ---------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    at: float  # time.time() when the request arrived
    status: int  # what the receiver answered (or will answer, when slow)
    body: dict[str, Any]


class ChaosReceiver:
    """An HTTP receiver on a fixed 127.0.0.1 port that can be down, flap or be slow.

    Every request is recorded when it arrives. A slow receiver has accepted the
    notification then, even if the sender gave up waiting for the answer: that
    is the one case where the sender cannot know and a duplicate is expected.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.arrivals: list[Arrival] = []
        self.flap = False  # answer 500 and 200 in turn
        self.delay = 0.0  # seconds before answering
        self._lock = threading.Lock()
        self._count = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver._count += 1
                    status = 500 if receiver.flap and receiver._count % 2 == 1 else 200
                    receiver.arrivals.append(Arrival(time.time(), status, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        """Stop listening: senders get "connection refused"."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if 200 <= a.status < 300]


# --- what was expected, what arrived -------------------------------------------


@dataclass(frozen=True)
class Expected:
    rule: str
    group: str  # consumergroup label, "-" for cluster alerts
    state: str  # firing | resolved
    at: float  # when the benchmark made the condition true or false


@dataclass
class Copy:
    arrival: Arrival
    fingerprint: str
    decided_at: float  # the exporter's decision (payload timestamp, or AM's times)


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def transitions(receiver: ChaosReceiver) -> dict[tuple[str, str, str, str], list[Copy]]:
    """Accepted notifications that announce a change (not reminders), by
    (rule, group, state, startsAt): each key is one transition, each value its copies."""
    out: dict[tuple[str, str, str, str], list[Copy]] = {}
    for a in receiver.accepted():
        b = a.body
        if "alerts" in b:  # Alertmanager's webhook: one alert per group (group_by ['...'])
            for alert in b["alerts"]:
                labels = alert["labels"]
                state = alert["status"]
                decided = _time(alert["endsAt"] if state == "resolved" else alert["startsAt"])
                key = (
                    labels["alertname"],
                    labels.get("consumergroup", "-"),
                    state,
                    alert["startsAt"],
                )
                out.setdefault(key, []).append(Copy(a, alert["fingerprint"], decided))
            continue
        if b.get("repeat"):
            continue
        key = (b["rule"], b.get("group") or "-", b["state"], b["startsAt"])
        out.setdefault(key, []).append(Copy(a, b["fingerprint"], _time(b["timestamp"])))
    return out


@dataclass
class Tally:
    scenario: str
    receiver: str
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicates_identical: bool = True  # every copy: same fingerprint and timestamp
    false_resolves: int = 0
    extra_pages: int = 0  # a firing never expected (e.g. after a false resolve)
    latencies: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self) -> str:
        p50 = percentile(self.latencies, 50) if self.latencies else float("nan")
        top = max(self.latencies) if self.latencies else float("nan")
        same = "yes" if self.duplicates_identical else "NO"
        return (
            f"| {self.scenario} | {self.receiver} | {self.expected} | {self.delivered} | "
            f"{self.lost} | {self.duplicated} ({same}) | {self.false_resolves} | "
            f"{self.extra_pages} | {p50:.1f} | {top:.1f} |"
        )


def tally(scenario: str, receiver: ChaosReceiver, expected: list[Expected]) -> Tally:
    t = Tally(scenario, receiver.name, expected=len(expected))
    got = transitions(receiver)
    used: set[tuple[str, str, str, str]] = set()
    for e in expected:
        # The earliest unused transition of this rule, group and state that was
        # decided after the benchmark caused it (a resolve decided before is false).
        candidates = sorted(
            (k for k in got if k[:3] == (e.rule, e.group, e.state) and k not in used),
            key=lambda k: min(c.decided_at for c in got[k]),
        )
        if not candidates:
            t.lost += 1
            continue
        key = candidates[0]
        used.add(key)
        copies = got[key]
        t.delivered += 1
        t.latencies.append(min(c.arrival.at for c in copies) - copies[0].decided_at)
        t.duplicated += len(copies) - 1
        if len({(c.fingerprint, c.decided_at) for c in copies}) > 1:
            t.duplicates_identical = False
        # `e.at` is when the benchmark began to end the condition. A resolve that
        # arrived before that, or was decided (stamped with the start of the
        # poll that saw it) longer than any poll lasts before it, was false.
        first = min(c.arrival.at for c in copies)
        if e.state == "resolved" and (first < e.at or copies[0].decided_at < e.at - POLL_MAX):
            t.false_resolves += 1
            t.notes.append(f"{e.rule}/{e.group}: resolved before the condition ended")
    for key in got.keys() - used:
        if key[2] == "resolved":
            t.false_resolves += 1
        else:
            t.extra_pages += 1
        t.notes.append(f"unexpected {key[2]} {key[0]}/{key[1]} startsAt {key[3]}")
    return t


# --- Kafka ---------------------------------------------------------------------


class Lag:
    """Consumer groups of one scenario, each on its own single-partition topic,
    committed by the admin client: lag is exactly what the benchmark says."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
        self.ends: dict[str, int] = {}

    def close(self) -> None:
        self.producer.close()
        self.admin.close()

    def group(self, name: str) -> str:
        group = f"{self.prefix}-{name}"
        self.admin.create_topics([NewTopic(group, 1, 1)])
        self.ends[group] = 0
        self._commit(group, 0)
        return group

    def _commit(self, group: str, offset: int) -> None:
        tp = TopicPartition(group, 0)

        def attempt() -> bool:
            try:
                result = self.admin.alter_group_offsets(
                    group, {tp: OffsetAndMetadata(offset, "", -1)}
                )
            except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                return False
            return all(e.__name__ == "NoError" for e in result.values())

        wait_for(attempt, 60, f"commit of {group}")

    def behind(self, group: str, count: int = 2 * THRESHOLD) -> float:
        """Leave `group` `count` messages behind; returns when that was true."""
        for _ in range(count):
            self.producer.send(group, b"x", partition=0)
        self.producer.flush()
        self.ends[group] += count
        return time.time()

    def caught_up(self, group: str) -> float:
        """Commit the group at its log end; returns when the commit began (the
        condition cannot have ended before)."""
        began = time.time()
        self._commit(group, self.ends[group])
        return began


# --- scenarios -----------------------------------------------------------------


@dataclass
class Bench:
    bootstrap: str  # direct
    proxied: str  # through the proxy that can be cut
    proxy: Proxy
    alertmanager: str | None
    am_receiver: ChaosReceiver | None
    workdir: Path
    quick: bool

    def outage(self, full: float, quick: float = 60.0) -> float:
        return quick if self.quick else full


@dataclass
class Outcome:
    tallies: list[Tally]
    notes: list[str] = field(default_factory=list)


def config(
    bootstrap: str,
    state_file: Path,
    notifiers: dict[str, Any],
    rules: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "poll_interval": "2s",
        "clusters": [
            {
                "name": "chaos",
                "kafka": {"bootstrap.servers": bootstrap},
                "status": {"stop_after": "10s", "stop_after_max": "10s"},
            }
        ],
        "alerting": {"state_file": str(state_file), "notifiers": notifiers, "rules": rules},
    }


def lag_rule(prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "ChaosLag",
        "metric": "max_lag",
        "threshold": THRESHOLD,
        "groups": [{"regex": f"{prefix}-.*"}],
        **extra,
    }


def webhook(receiver: ChaosReceiver, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": receiver.url, "backoff": "1s", **extra}


def wait_alert(ex: ExporterProcess, rule: str, group: str, state: str, timeout: float) -> None:
    """Until the exporter's /api/v1/alerts shows the alert in `state` (None: absent)."""

    def check() -> bool:
        _, body = ex.get("/api/v1/alerts")
        alerts = json.loads(body)["alerts"]
        found = [a for a in alerts if a["rule"] == rule and (a["group"] or "-") == group]
        return (state == "absent" and not found) or any(a["state"] == state for a in found)

    wait_for(check, timeout, f"{rule}/{group} {state}")


def delivered_all(receiver: ChaosReceiver, expected: list[Expected]) -> bool:
    got = transitions(receiver)
    counts: dict[tuple[str, str, str], int] = {}
    for k in got:
        counts[k[:3]] = counts.get(k[:3], 0) + 1
    wanted: dict[tuple[str, str, str], int] = {}
    for e in expected:
        wanted[(e.rule, e.group, e.state)] = wanted.get((e.rule, e.group, e.state), 0) + 1
    return all(counts.get(k, 0) >= v for k, v in wanted.items())


def settle(receivers: list[ChaosReceiver], expected: list[Expected], timeout: float) -> None:
    """Wait (bounded) for every expected transition to arrive; what has not is lost."""
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: all(delivered_all(r, expected) for r in receivers), timeout, "delivery")


def receiver_down(b: Bench) -> Outcome:
    prefix = "chaos-down-" + os.urandom(2).hex()
    lag = Lag(b.bootstrap, prefix)
    r = ChaosReceiver("webhook")  # down from the start
    d = b.workdir / "receiver_down"
    d.mkdir()
    cfg = config(b.bootstrap, d / "alerts.json", {"hook": webhook(r)}, [lag_rule(prefix)])
    outage = b.outage(600)
    expected: list[Expected] = []
    try:
        a, c = lag.group("a"), lag.group("b")
        with exporter(cfg, d) as ex:
            start = time.time()
            expected.append(Expected("ChaosLag", a, "firing", lag.behind(a)))
            wait_alert(ex, "ChaosLag", a, "firing", 60)
            time.sleep(outage / 3)
            expected.append(Expected("ChaosLag", a, "resolved", lag.caught_up(a)))
            expected.append(Expected("ChaosLag", c, "firing", lag.behind(c)))
            wait_alert(ex, "ChaosLag", c, "firing", 60)
            time.sleep(max(0.0, start + outage - time.time()))
            r.up()  # back after the outage
            settle([r], expected, 120)
            expected.append(Expected("ChaosLag", c, "resolved", lag.caught_up(c)))
            settle([r], expected, 60)
            time.sleep(5)  # any late duplicate
    finally:
        r.down()
        lag.close()
    return Outcome([tally("receiver_down", r, expected)], [f"outage {outage:.0f}s"])


def receiver_flapping(b: Bench) -> Outcome:
    prefix = "chaos-flap-" + os.urandom(2).hex()
    lag = Lag(b.bootstrap, prefix)
    r = ChaosReceiver("webhook")
    r.flap = True
    r.up()
    d = b.workdir / "receiver_flapping"
    d.mkdir()
    cfg = config(b.bootstrap, d / "alerts.json", {"hook": webhook(r)}, [lag_rule(prefix)])
    expected: list[Expected] = []
    try:
        groups = [lag.group(str(i)) for i in range(4)]
        with exporter(cfg, d) as ex:
            for _ in range(2):  # two episodes per group
                for g in groups:
                    expected.append(Expected("ChaosLag", g, "firing", lag.behind(g)))
                for g in groups:
                    wait_alert(ex, "ChaosLag", g, "firing", 60)
                time.sleep(6)
                for g in groups:
                    expected.append(Expected("ChaosLag", g, "resolved", lag.caught_up(g)))
                for g in groups:
                    wait_alert(ex, "ChaosLag", g, "absent", 60)
                time.sleep(6)
            settle([r], expected, 120)
            time.sleep(5)
    finally:
        r.down()
        lag.close()
    answered = len(r.arrivals)
    return Outcome([tally("receiver_flapping", r, expected)], [f"{answered} requests"])


def receiver_slow(b: Bench) -> Outcome:
    prefix = "chaos-slow-" + os.urandom(2).hex()
    lag = Lag(b.bootstrap, prefix)
    slow, fast = ChaosReceiver("slow webhook (20 s)"), ChaosReceiver("healthy webhook")
    slow.delay = 20.0
    slow.up()
    fast.up()
    d = b.workdir / "receiver_slow"
    d.mkdir()
    notifiers = {"slow": webhook(slow, timeout="3s"), "fast": webhook(fast)}
    cfg = config(b.bootstrap, d / "alerts.json", notifiers, [lag_rule(prefix)])
    expected: list[Expected] = []
    try:
        first, second = lag.group("first"), lag.group("second")
        with exporter(cfg, d) as ex:
            expected.append(Expected("ChaosLag", first, "firing", lag.behind(first)))
            wait_alert(ex, "ChaosLag", first, "firing", 60)
            time.sleep(8)  # the slow receiver holds the first alert's attempts meanwhile
            expected.append(Expected("ChaosLag", second, "firing", lag.behind(second)))
            wait_alert(ex, "ChaosLag", second, "firing", 60)
            time.sleep(20)
            for g in (first, second):
                expected.append(Expected("ChaosLag", g, "resolved", lag.caught_up(g)))
            settle([slow, fast], expected, 120)
            time.sleep(25)  # the slow receiver's last answers
    finally:
        slow.down()
        fast.down()
        lag.close()
    return Outcome([tally("receiver_slow", slow, expected), tally("receiver_slow", fast, expected)])


def sigkill_queued(b: Bench) -> Outcome:
    prefix = "chaos-kill-" + os.urandom(2).hex()
    lag = Lag(b.bootstrap, prefix)
    r = ChaosReceiver("webhook")  # down until after the kill
    d = b.workdir / "sigkill_queued"
    d.mkdir()
    state = d / "alerts.json"
    cfg = config(b.bootstrap, state, {"hook": webhook(r)}, [lag_rule(prefix)])
    expected: list[Expected] = []
    notes = []
    try:
        g = lag.group("a")
        (d / "first").mkdir()
        with exporter(cfg, d / "first") as ex:
            expected.append(Expected("ChaosLag", g, "firing", lag.behind(g)))
            wait_alert(ex, "ChaosLag", g, "firing", 60)
            wait_for(
                lambda: json.loads(state.read_text())["outboxes"]["hook"]["entries"],
                30,
                "the firing notification queued in the state file",
            )
            ex.process.send_signal(signal.SIGKILL)
            ex.process.wait()
            notes.append("killed with a notification queued")
        r.up()
        time.sleep(3)
        (d / "second").mkdir()
        with exporter(cfg, d / "second") as ex:
            settle([r], expected, 60)
            expected.append(Expected("ChaosLag", g, "resolved", lag.caught_up(g)))
            settle([r], expected, 60)
            time.sleep(5)
    finally:
        r.down()
        lag.close()
    return Outcome([tally("sigkill_queued", r, expected)], notes)


def restart_firing(b: Bench) -> Outcome:
    prefix = "chaos-restart-" + os.urandom(2).hex()
    lag = Lag(b.bootstrap, prefix)
    r = ChaosReceiver("webhook")
    r.up()
    d = b.workdir / "restart_firing"
    d.mkdir()
    rules = [
        lag_rule(prefix),
        {
            "name": "ChaosLagSeconds",
            "metric": "max_lag_seconds",
            "threshold": 15,
            "groups": [{"regex": f"{prefix}-.*"}],
        },
        {
            "name": "ChaosStopped",
            "metric": "group_status",
            "op": "==",
            "threshold": "ERR",
            "for": "0s",
            # The status of a partition judged anew is OK until it has been
            # still for stop_after (10 s here) again: keep_firing_for must
            # cover that plus the first poll after a restart or an outage
            # (up to ~30 s when it had to reconnect) and one poll interval.
            "keep_firing_for": "60s",
            "groups": [{"regex": f"{prefix}-.*"}],
        },
    ]
    cfg = config(b.bootstrap, d / "alerts.json", {"hook": webhook(r)}, rules)
    expected: list[Expected] = []
    try:
        g = lag.group("a")
        (d / "first").mkdir()
        with exporter(cfg, d / "first") as ex:
            behind = lag.behind(g)
            expected.append(Expected("ChaosLag", g, "firing", behind))
            for rule in ("ChaosLag", "ChaosLagSeconds", "ChaosStopped"):
                wait_alert(ex, rule, g, "firing", 120)
            expected.append(Expected("ChaosLagSeconds", g, "firing", behind + 15))
            expected.append(Expected("ChaosStopped", g, "firing", behind + 10))
            settle([r], expected, 30)
        (d / "second").mkdir()
        with exporter(cfg, d / "second"):
            time.sleep(60)  # histories rebuilt from nothing meanwhile
            caught = lag.caught_up(g)
            for rule in ("ChaosLag", "ChaosLagSeconds", "ChaosStopped"):
                expected.append(Expected(rule, g, "resolved", caught))
            settle([r], expected, 90)
            time.sleep(5)
    finally:
        r.down()
        lag.close()
    return Outcome([tally("restart_firing", r, expected)], ["SIGTERM, restarted at once"])


def alertmanager_active(url: str, prefix: str) -> set[str]:
    with urllib.request.urlopen(url + "/api/v2/alerts?active=true", timeout=5) as resp:
        alerts = json.loads(resp.read())
    return {
        f"{a['labels']['alertname']}/{a['labels'].get('consumergroup', '-')}"
        for a in alerts
        if a["labels"].get("consumergroup", "").startswith(prefix)
        and a["status"]["state"] == "active"
    }


FIRING = ("ChaosLag", "ChaosLagSeconds", "ChaosStopped")  # kafka_unreachable's group alerts


def kafka_unreachable(b: Bench) -> Outcome:
    prefix = "chaos-kafka-" + os.urandom(2).hex()
    lag = Lag(b.bootstrap, prefix)
    r = ChaosReceiver("webhook")
    r.up()
    d = b.workdir / "kafka_unreachable"
    d.mkdir()
    notifiers: dict[str, Any] = {"hook": webhook(r)}
    if b.alertmanager is not None:
        notifiers["am"] = {"type": "alertmanager", "url": b.alertmanager}
    rules = [
        lag_rule(prefix),
        {
            "name": "ChaosLagSeconds",
            "metric": "max_lag_seconds",
            "threshold": 15,
            "groups": [{"regex": f"{prefix}-.*"}],
        },
        {
            "name": "ChaosStopped",
            "metric": "group_status",
            "op": "==",
            "threshold": "ERR",
            "for": "0s",
            "keep_firing_for": "60s",  # as in restart_firing
            "groups": [{"regex": f"{prefix}-.*"}],
        },
        {
            "name": "ChaosClusterUnreachable",
            "metric": "cluster_up",
            "op": "==",
            "threshold": 0,
            "for": "10s",
            "notifiers": ["hook"],
        },
    ]
    cfg = config(b.proxied, d / "alerts.json", notifiers, rules)
    # Polls of an unreachable cluster back off to about one every 30 s, so
    # even the quick run gives `for` a few of them.
    outage = b.outage(300, 120)
    expected: list[Expected] = []
    am_expected: list[Expected] = []
    notes = [f"outage {outage:.0f}s"]
    gaps = 0
    checks = 0
    try:
        g = lag.group("a")
        with exporter(cfg, d) as ex:
            behind = lag.behind(g)
            for rule in FIRING:
                wait_alert(ex, rule, g, "firing", 120)
            expected.append(Expected("ChaosLag", g, "firing", behind))
            expected.append(Expected("ChaosLagSeconds", g, "firing", behind + 15))
            expected.append(Expected("ChaosStopped", g, "firing", behind + 10))
            am_expected.extend(expected)
            settle([r], expected, 30)
            if b.alertmanager is not None:
                wait_for(
                    lambda: len(alertmanager_active(b.alertmanager or "", prefix)) == len(FIRING),
                    60,
                    "the alerts active in Alertmanager",
                )
            cut = time.time()
            b.proxy.cut()
            expected.append(Expected("ChaosClusterUnreachable", "-", "firing", cut + 10))
            while time.time() < cut + outage:
                time.sleep(10)
                if b.alertmanager is not None:
                    checks += 1
                    if len(alertmanager_active(b.alertmanager, prefix)) != len(FIRING):
                        gaps += 1
            back = time.time()
            b.proxy.restore()
            expected.append(Expected("ChaosClusterUnreachable", "-", "resolved", back))
            time.sleep(30)  # polls again, histories rebuilt
            caught = lag.caught_up(g)
            for rule in FIRING:
                e = Expected(rule, g, "resolved", caught)
                expected.append(e)
                am_expected.append(e)
            settle([r], expected, 90)
            if b.am_receiver is not None:
                settle([b.am_receiver], am_expected, 90)
            time.sleep(5)
    finally:
        b.proxy.restore()
        r.down()
        lag.close()
    tallies = [tally("kafka_unreachable", r, expected)]
    if b.am_receiver is not None:
        am = tally("kafka_unreachable", b.am_receiver, am_expected)
        am.receiver = "Alertmanager -> webhook"
        am.false_resolves += gaps
        tallies.append(am)
        notes.append(
            f"Alertmanager listed all {len(FIRING)} alerts active at {checks - gaps} of "
            f"{checks} checks during the outage (each missing one is counted as a false resolve)"
        )
    return Outcome(tallies, notes)


SCENARIOS: dict[str, Callable[[Bench], Outcome]] = {
    "receiver_down": receiver_down,
    "receiver_flapping": receiver_flapping,
    "receiver_slow": receiver_slow,
    "sigkill_queued": sigkill_queued,
    "restart_firing": restart_firing,
    "kafka_unreachable": kafka_unreachable,
}


# --- running -------------------------------------------------------------------


@contextlib.contextmanager
def alertmanager(workdir: Path, receiver: ChaosReceiver) -> Iterator[str | None]:
    """A real Alertmanager that sends each alert on its own to `receiver`."""
    if ALERTMANAGER is None:
        print("prometheus-alertmanager not installed: the Alertmanager checks are skipped")
        yield None
        return
    port = free_port()
    d = workdir / "alertmanager"
    d.mkdir()
    (d / "alertmanager.yml").write_text(
        "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 1s\n"
        "  group_interval: 5s\n  repeat_interval: 4h\n"
        f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {receiver.url}\n"
    )
    log = (d / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={d / 'alertmanager.yml'}",
            f"--storage.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
                return int(r.status) == 200

        wait_for(ready, 30, "alertmanager ready")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def report(results: dict[str, Outcome | BaseException], seconds: float, quick: bool) -> str:
    lines = [
        f"{'quick run' if quick else 'full run'}, {seconds / 60:.1f} minutes, scenarios concurrent",
        "",
        "| scenario | receiver | expected | delivered | lost | duplicated (same fingerprint "
        "and timestamp) | false resolves | extra pages | latency p50 s | latency max s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for name, result in results.items():
        if isinstance(result, BaseException):
            lines.append(f"| {name} | FAILED: {type(result).__name__}: {result} | | | | | | | | |")
            continue
        for t in result.tallies:
            lines.append(t.row())
            notes += [f"- {name}, {t.receiver}: {n}" for n in t.notes]
        notes += [f"- {name}: {n}" for n in result.notes]
    return "\n".join([*lines, "", *notes]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1-minute outages instead of 5 and 10")
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="these scenarios only")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    names = args.only or list(SCENARIOS)
    workdir = Path(tempfile.mkdtemp(prefix="alert-chaos-"))
    print(f"work directory {workdir}", flush=True)
    started = time.time()
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(
            KafkaBroker(
                extra_properties={
                    "listeners": "PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port},"
                    "PROXIED://{host}:{proxied}",
                    "advertised.listeners": "PLAINTEXT://{host}:{port},PROXIED://{host}:{proxy}",
                    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                    "PROXIED:PLAINTEXT",
                    "offsets.topic.num.partitions": "4",
                },
                extra_ports=["proxied", "proxy"],
            )
        )
        broker.start()
        proxy = Proxy(broker.ports["proxy"], (broker.host, broker.ports["proxied"]))
        proxy.start()
        stack.callback(proxy.close)
        am_receiver = ChaosReceiver("Alertmanager -> webhook")
        am_receiver.up()
        stack.callback(am_receiver.down)
        am_url = stack.enter_context(alertmanager(workdir, am_receiver))
        bench = Bench(
            bootstrap=broker.bootstrap,
            proxied=f"127.0.0.1:{proxy.port}",
            proxy=proxy,
            alertmanager=am_url,
            am_receiver=am_receiver if am_url else None,
            workdir=workdir,
            quick=args.quick,
        )
        results: dict[str, Outcome | BaseException] = {}

        def run(name: str) -> None:
            print(f"{name}: started", flush=True)
            try:
                results[name] = SCENARIOS[name](bench)
            except BaseException as exc:  # reported in the table, the others go on
                results[name] = exc
            print(f"{name}: done after {(time.time() - started) / 60:.1f} min", flush=True)

        threads = [threading.Thread(target=run, args=(n,)) for n in names]
        for t in threads:
            t.start()
            time.sleep(1)  # stagger the exporters' start
        for t in threads:
            t.join()
    ordered = {n: results[n] for n in names}
    text = report(ordered, time.time() - started, args.quick)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    clean = all(
        not isinstance(r, BaseException)
        and all(t.lost == 0 and t.false_resolves == 0 for t in r.tallies)
        for r in ordered.values()
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
