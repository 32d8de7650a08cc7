"""The loop that wires the stages together: poll -> view -> rendered documents.

One thread per cluster polls on its own schedule; a poll never overlaps the
next (a slow poll delays the next one, it does not pile up). After each poll
the exposition is rendered once and published by swapping one reference, so
/metrics only ever reads finished bytes and never waits for Kafka. The JSON
of /api/v1/groups is rendered from the same views on its first request, then
kept: it costs as much as the exposition and only people ask for it.
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
from dataclasses import dataclass, replace

from .api import render_groups
from .config import ClusterConfig, Settings
from .health import next_health, poll_outcome
from .kafka import Collector
from .metrics import Exposition, render
from .model import ClusterView, PollResult
from .view import build_view

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

    def groups_document(self) -> bytes:
        """The JSON of /api/v1/groups, rendered now if this is its first request."""
        document = self.groups_json
        return document if isinstance(document, bytes) else document.get()


class Store:
    """Latest view per cluster and the documents rendered from them."""

    def __init__(
        self, cluster_names: Sequence[str], *, granularity: Mapping[str, str] | None = None
    ) -> None:
        self._names = list(cluster_names)
        self._granularity = dict(granularity or {})  # cluster name -> granularity
        self._views: dict[str, ClusterView] = {}
        self._ever_up: set[str] = set()
        self._lock = threading.Lock()
        self.published = Published((), render(()), LazyDocument(render_groups(())), ready=False)

    def view(self, cluster: str) -> ClusterView | None:
        return self._views.get(cluster)

    def update(self, view: ClusterView) -> None:
        with self._lock:
            self._views[view.cluster] = view
            if view.health.up:
                self._ever_up.add(view.cluster)
            views = tuple(self._views[n] for n in self._names if n in self._views)
            self.published = Published(
                views=views,
                exposition=render(views, granularity=self._granularity),
                groups_json=LazyDocument(functools.partial(render_groups, views)),
                ready=self._ever_up.issuperset(self._names),
            )


class ClusterPoller:
    """Polls one cluster every poll_interval on its own thread."""

    def __init__(
        self,
        cluster: ClusterConfig,
        store: Store,
        max_staleness: float,
        collector_factory: Callable[[ClusterConfig], Collector] = Collector,
    ) -> None:
        self.cluster = cluster
        self.store = store
        self.max_staleness = max_staleness
        self.collector = collector_factory(cluster)
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

    def poll_once(self) -> ClusterView:
        started = time.monotonic()
        with collection_deferred():
            # One expression, so the poll result is freed before the collection.
            view = self.publish(self.collector.poll())
        self._last_publish_duration = time.monotonic() - started
        return view

    def publish(self, poll: PollResult) -> ClusterView:
        started = time.monotonic()
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
        )
        built = time.monotonic()
        self.store.update(view)
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

    def _log(self, poll: PollResult) -> None:
        name = self.cluster.name
        if poll.reached != self._was_up:
            if poll.reached:
                log.info("cluster %s: up (%d brokers)", name, poll.brokers)
            else:
                log.warning("cluster %s: down: %s", name, poll.errors[0].message)
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
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # never let one bad poll end the loop
                log.exception("cluster %s: unexpected error in poll", self.cluster.name)
            delay = self.cluster.poll_interval - (time.monotonic() - started)
            self._stop.wait(max(0.0, delay))


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
        self.store = Store(
            [c.name for c in settings.clusters],
            granularity={c.name: c.granularity for c in settings.clusters},
        )
        self.pollers = [
            ClusterPoller(c, self.store, settings.max_staleness) for c in settings.clusters
        ]

    def start(self) -> None:
        return_large_blocks_to_the_system()
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.request_stop()
        for poller in self.pollers:
            poller.stop()
