"""Alerting for the daemon: the pure engine, its state (and state file), delivery.

The pollers of all clusters call `evaluate` after each poll; a lock makes
evaluations of different clusters take turns, since they share one state.
Evaluation itself only computes and queues, so it takes microseconds per
alert and never waits for a receiver.

The state file holds the alerts and every notifier's outbox. It is written
after every evaluation that changed something (a notification queued
included) and whenever a notification left an outbox (delivered or given
up), so a notification is never lost by a crash: at worst one that was
delivered just before the crash is sent again after it, with the same
fingerprint and timestamp.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence

from ..config import ConfigError
from ..model import ClusterView
from . import state_file
from .delivery import Deliverer, Transport, describe, urllib_transport
from .engine import (
    Alert,
    AlertKey,
    Evaluation,
    evaluate,
    evaluate_exporter,
    retire,
    sorted_alerts,
)
from .measures import Labels, Value
from .notifiers import Context, endpoint, payload_builder
from .publish import AlertsSnapshot
from .rules import AlertingSettings
from .template import format_value

log = logging.getLogger(__name__)


class Alerting:
    def __init__(
        self,
        settings: AlertingSettings,
        *,
        cluster_names: Sequence[str],
        listen_host_port: tuple[str, int],
        transport: Transport = urllib_transport,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clusters = tuple(cluster_names)
        self._clock = clock
        host = socket.gethostname()
        port = listen_host_port[1]
        self.context = Context(
            instance=settings.instance or f"{host}:{port}",
            external_url=settings.external_url or f"http://{host}:{port}",
        )
        self._deliverers = {
            name: Deliverer(
                cfg,
                payload_builder(cfg, self.context),
                endpoint(cfg),
                transport,
                clock=clock,
                on_change=self._save_now,
            )
            for name, cfg in settings.notifiers.items()
        }
        self._repeat = settings.repeat_intervals
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # one writer of the state file at a time
        self._state: dict[AlertKey, Alert] = {}
        if settings.state_file:
            try:
                saved = state_file.load(settings.state_file)
            except state_file.StateFileError as exc:
                raise ConfigError(f"alerting.state_file: {exc}") from None
            self._state = saved.alerts
            queued = 0
            for name, (entries, told) in saved.outboxes.items():
                deliverer = self._deliverers.get(name)
                if deliverer is None:
                    for e in entries:
                        log.error(
                            "alert %s: notifier %s is no longer configured; not sent",
                            describe(e.notification),
                            name,
                        )
                    continue
                deliverer.restore(entries, told)
                queued += len(entries)
            try:
                # Written back at once, so an unwritable location stops the start
                # (exit code 2) instead of failing quietly on the first alert.
                self._write(clock())
            except state_file.StateFileError as exc:
                raise ConfigError(f"alerting.state_file: {exc}") from None
            if self._state or queued:
                log.info(
                    "alert state restored from %s: %d alert(s), %d queued notification(s)",
                    settings.state_file,
                    len(self._state),
                    queued,
                )

    def start(self) -> None:
        for deliverer in self._deliverers.values():
            deliverer.start()
        with self._lock:
            now = self._clock()
            self._apply(retire(self._state, self.settings.rules, self._clusters, now), now)

    def stop(self, timeout: float = 5.0) -> None:
        """Let attempts under way finish for up to `timeout` seconds in all, then
        save what is still queued (resumed at the next start)."""
        deadline = time.monotonic() + timeout
        for deliverer in self._deliverers.values():
            deliverer.request_stop()
        for deliverer in self._deliverers.values():
            deliverer.stop(max(0.0, deadline - time.monotonic()))
        self._save_now()

    def evaluate(self, view: ClusterView, now: float) -> AlertsSnapshot:
        """Evaluate every rule on a cluster's new view; queue what must be sent."""
        with self._lock:
            result = evaluate(self.settings.rules, view, now, self._state, self._repeat)
            self._apply(result, now)
            # The exporter's own measures, at the pace of the polls.
            failing: dict[Labels, Value] = {
                (("notifier", name),): 1 if d.failing() else 0
                for name, d in self._deliverers.items()
            }
            own = evaluate_exporter(
                self.settings.rules,
                {"notifications_failing": failing},
                now,
                self._state,
                self._repeat,
            )
            self._apply(own, now)
            return self._snapshot()

    def snapshot(self) -> AlertsSnapshot:
        with self._lock:
            return self._snapshot()

    def retain_clusters(self, cluster_names: Sequence[str]) -> AlertsSnapshot:
        """After a configuration reload: alerts of clusters no longer polled are resolved."""
        with self._lock:
            self._clusters = tuple(cluster_names)
            now = self._clock()
            self._apply(retire(self._state, self.settings.rules, self._clusters, now), now)
            return self._snapshot()

    def _snapshot(self) -> AlertsSnapshot:
        return AlertsSnapshot(
            alerts=tuple(sorted_alerts(self._state)),
            rules=tuple(r.name for r in self.settings.rules),
            notifiers={name: d.stats() for name, d in self._deliverers.items()},
        )

    def _apply(self, result: Evaluation, now: float) -> None:
        self._state = result.state
        for t in result.transitions:
            a = t.alert
            log.info(
                "alert %s %s: %s; %s=%s (threshold %s %s); %s",
                a.rule,
                t.change,
                " ".join(f"{k}={v}" for k, v in a.identity),
                a.metric,
                format_value(a.value),
                a.op,
                format_value(a.threshold),
                t.reason,
            )
        for n in result.notifications:
            deliverer = self._deliverers.get(n.notifier)
            if deliverer is None:
                log.error(
                    "alert %s: notifier %s is no longer configured; not sent",
                    describe(n),
                    n.notifier,
                )
                continue
            deliverer.submit(n)
        if result.changed:
            self._save_now()

    def _write(self, now: float) -> None:
        assert self.settings.state_file is not None
        outboxes = {name: d.entries() for name, d in self._deliverers.items()}
        with self._save_lock:
            # self._state is replaced, never changed in place: reading it here,
            # outside the evaluation lock, sees one whole state.
            state_file.save(self.settings.state_file, self._state, now, outboxes)

    def _save_now(self) -> None:
        if not self.settings.state_file:
            return
        try:
            self._write(self._clock())
        except state_file.StateFileError as exc:
            log.error("%s; alert state will not survive a restart", exc)
