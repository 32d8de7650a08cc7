"""The loop that wires the stages together: poll -> view -> rendered documents.

One thread per cluster polls on its own schedule; a poll never overlaps the
next (a slow poll delays the next one, it does not pile up). After each poll
the exposition is rendered once and published by swapping one reference, so
/metrics only ever reads finished bytes and never waits for Kafka; the web
UI's snapshot (ui/) is published with it. The JSON
of /api/v1/groups is rendered from the same views on its first request, then
kept: it costs as much as the exposition and only people ask for it.

A cluster that cannot be reached is retried with exponential backoff, from
one poll interval up to `retry_cap` (8 poll intervals, at most a minute), so
a broker that rejects the exporter's credentials is not hammered. SIGHUP
(see cli.py) hands a new validated Settings to `Daemon.reload`, which
restarts only the pollers of clusters whose configuration changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import history as history_store
from .alerts.publish import AlertsSnapshot, render_alerts
from .alerts.publish import families as alert_families
from .alerts.service import Alerting
from .api import render_groups
from .config import ClusterConfig, Settings
from .health import next_health, poll_outcome
from .kafka import Collector
from .metrics import Exposition, render
from .model import ClusterView, PollResult
from .ui.documents import Overview
from .ui.snapshot import ClusterUi, cluster_ui
from .view import Derivation, build_view

log = logging.getLogger(__name__)


class LazyDocument:
    """Bytes made on first use, at most once, then kept."""

    __slots__ = ("_lock", "_make", "_value")

    def __init__(self, source: bytes | Callable[[], bytes]) -> None:
        self._lock = threading.Lock()
        self._value: bytes | None = source if isinstance(source, bytes) else None
        self._make: Callable[[], bytes] | None = None if isinstance(source, bytes) else source

    def get(self) -> bytes:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    assert self._make is not None
                    self._value, self._make = self._make(), None
                value = self._value
        return value


@dataclass(frozen=True, slots=True)
class Published:
    """Everything the HTTP server serves, from one consistent moment."""

    views: tuple[ClusterView, ...]
    exposition: Exposition
    # /api/v1/groups: the document, or (as the Store publishes it) one rendered
    # from `views` when first asked for.
    groups_json: bytes | LazyDocument
    ready: bool  # every cluster has had a poll that reached it
    alerts_json: bytes = render_alerts(None)
    # The web UI's snapshot of every cluster and the alerts (ui/).
    overview: Overview = field(default_factory=Overview)

    def groups_document(self) -> bytes:
        """The JSON of /api/v1/groups, rendered now if this is its first request."""
        document = self.groups_json
        return document if isinstance(document, bytes) else document.get()


class Store:
    """Latest view per cluster, the alerts evaluated on it, and the documents
    rendered from them."""

    def __init__(
        self,
        cluster_names: Sequence[str],
        alerting: Alerting | None = None,
        *,
        granularity: Mapping[str, str] | None = None,
    ) -> None:
        self._names = list(cluster_names)
        self._granularity = dict(granularity or {})  # cluster name -> granularity
        self._views: dict[str, ClusterView] = {}
        self._ui: dict[str, ClusterUi] = {}
        self._ever_up: set[str] = set()
        self._lock = threading.Lock()
        self._alerting = alerting
        self._alerts = alerting.snapshot() if alerting is not None else None
        self.published = Published(
            (),
            render((), alert_families(self._alerts) if self._alerts else ()),
            LazyDocument(render_groups(())),
            ready=False,
            alerts_json=render_alerts(self._alerts),
        )

    def view(self, cluster: str) -> ClusterView | None:
        return self._views.get(cluster)

    def update(self, view: ClusterView, ui: ClusterUi | None = None) -> None:
        with self._lock:
            self._views[view.cluster] = view
            if ui is not None:
                self._ui[view.cluster] = ui
            else:
                self._ui.pop(view.cluster, None)
            if view.health.up:
                self._ever_up.add(view.cluster)
            # Evaluated under the same lock as the rendering, so the exposition,
            # /api/v1/alerts and the alert state are always of the same moment.
            self._alerts = self._evaluate_alerts(view)
            self._publish()

    def _publish(self) -> None:
        """Render the served documents from the current views; called under the lock."""
        views = tuple(self._views[n] for n in self._names if n in self._views)
        self.published = Published(
            views=views,
            exposition=render(
                views,
                alert_families(self._alerts) if self._alerts else (),
                granularity=self._granularity,
            ),
            groups_json=LazyDocument(functools.partial(render_groups, views)),
            ready=self._ever_up.issuperset(self._names),
            alerts_json=render_alerts(self._alerts),
            overview=Overview.build(
                [self._ui[n] for n in self._names if n in self._ui], self._alerts
            ),
        )

    def _evaluate_alerts(self, view: ClusterView) -> AlertsSnapshot | None:
        if self._alerting is None:
            return None
        try:
            # The time of the poll the view describes: `for` counts poll times.
            return self._alerting.evaluate(view, view.health.last_poll_at or time.time())
        except Exception:  # a bug in alerting must not stop metrics from being served
            log.exception("cluster %s: unexpected error evaluating alert rules", view.cluster)
            return self._alerts

    def retain(
        self, cluster_names: Sequence[str], granularity: Mapping[str, str] | None = None
    ) -> None:
        """Serve these clusters from now on; views of the others are dropped."""
        with self._lock:
            self._names = list(cluster_names)
            if granularity is not None:
                self._granularity = dict(granularity)
            for name in list(self._views):
                if name not in self._names:
                    del self._views[name]
                    self._ui.pop(name, None)
            self._ever_up &= set(self._names)
            if self._alerting is not None:
                # Alerts of clusters no longer configured are resolved.
                self._alerts = self._alerting.retain_clusters(self._names)
            self._publish()


# Unreachable clusters are retried after 1, 2, 4, ... poll intervals, up to
# 8 intervals and at most this long (but never less often than polled).
MAX_RETRY_BACKOFF = 60.0


def retry_cap(poll_interval: float) -> float:
    return max(poll_interval, min(MAX_RETRY_BACKOFF, 8 * poll_interval))


def retry_delay(poll_interval: float, failures: int) -> float:
    """Time between the starts of two polls after `failures` unreached polls in a row."""
    if failures <= 0:
        return poll_interval
    return min(retry_cap(poll_interval), poll_interval * 2.0 ** min(failures - 1, 30))


class ClusterPoller:
    """Polls one cluster every poll_interval on its own thread."""

    def __init__(
        self,
        cluster: ClusterConfig,
        store: Store,
        max_staleness: float,
        collector_factory: Callable[[ClusterConfig], Collector] = Collector,
        state_dir: Path | None = None,
        state_interval: float = 60.0,
    ) -> None:
        self.cluster = cluster
        self.store = store
        self.max_staleness = max_staleness
        self.collector = collector_factory(cluster)
        self.derive = Derivation.for_cluster(cluster)
        self.history = self.derive.history
        self.state_path = (
            history_store.state_path(state_dir, cluster.name) if state_dir is not None else None
        )
        self.state_interval = state_interval
        self._saved_at = time.monotonic()
        if self.state_path is not None:
            history_store.load(self.history, cluster.name, self.state_path)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{cluster.name}", daemon=True
        )
        self._was_up: bool | None = None
        self._last_publish_duration: float | None = None

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.collector.close()
        self.save_history()

    def save_history(self) -> None:
        if self.state_path is None:
            return
        try:
            history_store.save(self.history, self.cluster.name, self.state_path)
        except OSError as exc:
            log.warning("cluster %s: cannot write %s: %s", self.cluster.name, self.state_path, exc)
        self._saved_at = time.monotonic()

    def poll_once(self) -> ClusterView:
        started = time.monotonic()
        with collection_deferred():
            # One expression, so the poll result is freed before the collection.
            view = self.publish(self.collector.poll())
        self._last_publish_duration = time.monotonic() - started
        return view

    def publish(self, poll: PollResult) -> ClusterView:
        started = time.monotonic()
        known = self.history.cluster_id
        if poll.cluster_id and known and known != poll.cluster_id:
            log.warning(
                "cluster %s: saved lag history belongs to Kafka cluster %s, this is %s; "
                "starting afresh",
                self.cluster.name,
                known,
                poll.cluster_id,
            )
            self.history.ends.clear()
            self.history.commits.clear()
        previous = self.store.view(self.cluster.name)
        health = replace(
            next_health(previous.health if previous else None, poll),
            last_publish_duration=self._last_publish_duration,
        )
        view, notices = build_view(
            poll,
            previous,
            labels=dict(self.cluster.labels),
            topic_filter=self.cluster.topics,
            max_staleness=self.max_staleness,
            health=health,
            derive=self.derive,
        )
        for tp in self.history.resets:
            log.info(
                "cluster %s: offsets of %s-%d went backwards (topic re-created?); "
                "its lag history starts afresh",
                self.cluster.name,
                tp[0],
                tp[1],
            )
        if self._stop.is_set():
            return view  # retired by a reload or a shutdown: no longer served
        ui = self._ui_snapshot(view)
        built = time.monotonic()
        self.store.update(view, ui)
        log.debug(
            "cluster %s: view built in %.3fs, rendered in %.3fs",
            self.cluster.name,
            built - started,
            time.monotonic() - built,
        )
        self._log(poll)
        for notice in notices:
            log.info("cluster %s: %s", self.cluster.name, notice.message)
        return view

    def _ui_snapshot(self, view: ClusterView) -> ClusterUi | None:
        """What the web UI needs from the history, read here, on the poller's own
        thread, the only one that touches the history."""
        try:
            return cluster_ui(
                view,
                self.history,
                poll_interval=self.cluster.poll_interval,
                rules=self.derive.status_rules,
            )
        except Exception:  # a bug in the UI must not stop metrics from being served
            log.exception(
                "cluster %s: unexpected error in the web UI's snapshot", self.cluster.name
            )
            return None

    def _log(self, poll: PollResult) -> None:
        name = self.cluster.name
        if poll.reached != self._was_up:
            if poll.reached:
                log.info(
                    "cluster %s: up (%d %s)",
                    name,
                    poll.brokers,
                    "broker" if poll.brokers == 1 else "brokers",
                )
            else:
                log.warning(
                    "cluster %s: down: %s (%s); retrying with backoff up to %gs",
                    name,
                    poll.errors[0].message,
                    poll.errors[0].kind,
                    retry_cap(self.cluster.poll_interval),
                )
            self._was_up = poll.reached
        outcome = poll_outcome(poll)
        if outcome == "partial":
            kinds = Counter(str(e.kind) for e in poll.errors)
            sample = "; ".join(
                f"{e.kind}"
                + (f" group={e.group}" if e.group else "")
                + (f" topic={e.topic}" if e.topic else "")
                + f": {e.message}"
                for e in poll.errors[:3]
            )
            log.warning(
                "cluster %s: partial poll, %d errors (%s): %s",
                name,
                len(poll.errors),
                ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())),
                sample,
            )
        log.debug(
            "cluster %s: poll %s in %.3fs, %d groups, requests %s",
            name,
            outcome,
            poll.duration,
            len(poll.groups),
            poll.requests,
        )

    def _run(self) -> None:
        failures = 0  # unreached polls in a row
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                view = self.poll_once()
                failures = 0 if view.health.up else failures + 1
            except Exception:  # never let one bad poll end the loop
                log.exception("cluster %s: unexpected error in poll", self.cluster.name)
                failures += 1
            if (
                self.state_path is not None
                and time.monotonic() - self._saved_at >= self.state_interval
            ):
                self.save_history()
            interval = retry_delay(self.cluster.poll_interval, failures)
            if failures > 1:
                log.debug(
                    "cluster %s: %d polls in a row did not reach it; next in %gs",
                    self.cluster.name,
                    failures,
                    interval,
                )
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))


class _CollectionDeferral:
    """Counts the polls running (one thread per cluster) so the last one re-enables gc."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.was_enabled = False


_deferral = _CollectionDeferral()


@contextlib.contextmanager
def collection_deferred() -> Iterator[None]:
    """No automatic garbage collection while a poll runs; one young collection after it.

    A poll of 100,000 group partitions keeps about a million objects alive
    for a moment (decoded responses, offsets, the new view), so the cyclic
    collector ran its full collection three times per poll, 35-45 ms each
    with the GIL held: the worst stalls of /metrics, and 150 ms of CPU.
    Nearly all of those objects are freed by reference counting; what the
    poll leaves (mostly the new view) is collected once, after it: about
    20 ms at 100,000 group partitions. Only the young generations: a full
    collection would walk everything long-lived on every poll; the
    collector's own rule (the old generation grew by a quarter) still
    decides when to do that.
    """
    with _deferral.lock:
        if _deferral.running == 0:
            _deferral.was_enabled = gc.isenabled()
            gc.disable()
        _deferral.running += 1
    try:
        yield
    finally:
        with _deferral.lock:
            _deferral.running -= 1
            if _deferral.running == 0 and _deferral.was_enabled:
                gc.enable()
        gc.collect(1)


def return_large_blocks_to_the_system() -> None:
    """Keep glibc from holding on to the memory of each poll's big documents.

    glibc serves blocks above its mmap threshold (128 KiB) with mmap and unmaps
    them when freed, but after the first such free it raises the threshold up
    to 32 MiB; from then on the tens of MB that every poll renders come from
    the heap, which fragments and keeps the process at its high-water mark
    (265 MB instead of 126 MB at 100,000 group partitions). Setting the
    threshold explicitly turns that adjustment off. No-op elsewhere than glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3
    mallopt(m_mmap_threshold, 128 * 1024)


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.alerting = (
            Alerting(
                settings.alerting,
                cluster_names=[c.name for c in settings.clusters],
                listen_host_port=settings.listen_host_port,
            )
            if settings.alerting is not None
            else None
        )
        self.store = Store(
            [c.name for c in settings.clusters],
            self.alerting,
            granularity={c.name: c.granularity for c in settings.clusters},
        )
        self.pollers = [self._poller(c, settings) for c in settings.clusters]

    def _poller(self, cluster: ClusterConfig, settings: Settings) -> ClusterPoller:
        return ClusterPoller(
            cluster,
            self.store,
            settings.max_staleness,
            state_dir=settings.state_dir,
            state_interval=settings.state_interval,
        )

    def start(self) -> None:
        return_large_blocks_to_the_system()
        if self.alerting is not None:
            self.alerting.start()
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.request_stop()
        for poller in self.pollers:
            poller.stop()
        if self.alerting is not None:
            self.alerting.stop()

    def reload(self, settings: Settings) -> list[str]:
        """Apply new, already validated settings; returns what changed, for the log.

        Pollers of unchanged clusters keep running with their history; those of
        removed clusters stop and their series go; changed clusters get a new
        poller (their history is carried over when `state_dir` is set). The
        listen address and the log set-up are the caller's business. Alerting
        keeps its running rules and notifiers (a change there takes a
        restart); alerts of removed clusters are resolved.
        """
        before = self.settings
        notes = []
        if settings.alerting != before.alerting:
            notes.append(
                "the alerting section changed, which takes a restart; its running rules stay"
            )
            settings = replace(settings, alerting=before.alerting)
        shared_changed = (before.max_staleness, before.state_dir, before.state_interval) != (
            settings.max_staleness,
            settings.state_dir,
            settings.state_interval,
        )
        running = {p.cluster.name: p for p in self.pollers}
        wanted = {c.name: c for c in settings.clusters}
        keep = {
            name: poller
            for name, poller in running.items()
            if not shared_changed and wanted.get(name) == poller.cluster
        }
        retired = [p for name, p in running.items() if name not in keep]
        for poller in retired:
            poller.request_stop()
        for poller in retired:
            poller.stop()
        self.settings = settings
        self.store.retain(list(wanted), {c.name: c.granularity for c in settings.clusters})
        self.pollers = [keep.get(c.name) or self._poller(c, settings) for c in settings.clusters]
        for poller in self.pollers:
            if poller.cluster.name not in keep:
                poller.start()
        changes = [f"removed cluster {n}" for n in running if n not in wanted]
        changes += [f"added cluster {n}" for n in wanted if n not in running]
        changes += [f"restarted cluster {n}" for n in wanted if n in running and n not in keep]
        return changes + notes
