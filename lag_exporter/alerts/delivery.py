"""Delivery of notifications: one outbox and one worker thread per notifier.

The poller only ever puts a notification in an outbox (never waits), so a
slow or dead receiver cannot delay polling, and since every notifier has its
own worker, it cannot delay another notifier either. The worker POSTs the
oldest due entry; what may pass (5xx, 429, timeouts, connection errors) is
retried with backoff until the notifier's horizon (see outbox.py), any other
answer is final. Every result is counted and every notification given up is
logged with the alert's labels: nothing is dropped silently. URLs, headers
and passwords are never logged (a Slack webhook URL is a credential).
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .. import __version__
from .engine import AlertKey, Notification
from .outbox import (
    DELIVERED,
    DROPPED_AFTER_HORIZON,
    FAILED,
    RESULTS,
    RETRIED,
    Entry,
    Outbox,
    Policy,
)
from .rules import NotifierConfig

log = logging.getLogger(__name__)

__all__ = ["DELIVERED", "DROPPED_AFTER_HORIZON", "FAILED", "RESULTS", "RETRIED", "Deliverer"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: float
    ssl_context: ssl.SSLContext | None


# Sends one request; returns the HTTP status, raises OSError (and subclasses:
# timeouts, connection errors, TLS errors) or http.client.HTTPException.
Transport = Callable[[HttpRequest], int]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 302 by turning the POST into a GET without body,
    # and report success: a redirect is the receiver's configuration problem.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def urllib_transport(request: HttpRequest) -> int:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if request.ssl_context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=request.ssl_context))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method="POST"
    )
    try:
        with opener.open(req, timeout=request.timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


def ssl_context(cfg: NotifierConfig) -> ssl.SSLContext | None:
    if not cfg.url.reveal().lower().startswith("https:"):
        return None
    context = ssl.create_default_context(cafile=cfg.ca_file)
    if cfg.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def request_headers(cfg: NotifierConfig) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"lag-exporter/{__version__}",
    }
    if cfg.basic_auth is not None:
        user, password = cfg.basic_auth
        token = base64.b64encode(f"{user}:{password.reveal()}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    headers.update({k: v.reveal() for k, v in cfg.headers.items()})
    return headers


def describe(n: Notification) -> str:
    """An alert as a log line shows it: rule, status and labels (no secrets in labels)."""
    labels = ",".join(f"{k}={v}" for k, v in n.alert.identity)
    return f"{n.alert.rule}{{{labels}}} {n.status}{' (repeat)' if n.repeat else ''}"


@dataclass(frozen=True, slots=True)
class NotifierStats:
    results: Mapping[str, int] = field(default_factory=dict)  # result -> count
    queued: int = 0
    oldest_queued_age: float = 0.0  # seconds; 0 when nothing waits
    failing: bool = False  # the last attempt failed and something is queued
    # alert -> when its last firing was delivered (while it fires)
    told: Mapping[AlertKey, float] = field(default_factory=dict)
    # alert -> (status waiting, queued since, attempts so far)
    pending: Mapping[AlertKey, tuple[str, float, int]] = field(default_factory=dict)


def policy(cfg: NotifierConfig) -> Policy:
    return Policy(
        backoff=cfg.backoff,
        max_backoff=cfg.max_backoff,
        horizon=cfg.retry_for,
        max_attempts=cfg.max_attempts,
        capacity=cfg.queue_size,
    )


class Deliverer:
    """The outbox and worker thread of one notifier."""

    def __init__(
        self,
        cfg: NotifierConfig,
        build: Callable[[Notification], bytes],
        url: str,
        transport: Transport = urllib_transport,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._build = build
        self._url = url
        self._transport = transport
        self._clock = clock
        # Called (without the lock) when an entry left the outbox, so the
        # state file can stop carrying it.
        self._on_change = on_change or (lambda: None)
        self._headers = request_headers(cfg)
        self._ssl = ssl_context(cfg)
        self._outbox = Outbox(policy(cfg))
        self._wake = threading.Condition()  # guards the outbox and the counters
        self._stop = threading.Event()
        self._results: Counter[str] = Counter()
        self._failing = False
        self._told: dict[AlertKey, float] = {}
        self._thread = threading.Thread(target=self._run, name=f"notifier-{cfg.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.cfg.name

    def start(self) -> None:
        self._thread.start()

    def submit(self, n: Notification) -> None:
        """Queue a notification without waiting."""
        with self._wake:
            pushed_out = self._outbox.add(n, self._clock())
            self._wake.notify()
        for e in pushed_out:
            self._give_up(e, FAILED, f"outbox full ({self.cfg.queue_size} waiting)")

    def restore(self, entries: list[Entry], told: Mapping[AlertKey, float]) -> None:
        """Entries and delivery times saved before a restart."""
        with self._wake:
            self._told.update(told)
            for e in entries:
                self._outbox.restore(e)
            expired = self._outbox.expired(self._clock())
            self._wake.notify()
        for e in expired:
            self._give_up(e, DROPPED_AFTER_HORIZON, "past the retry horizon after a restart")

    def entries(self) -> tuple[list[Entry], dict[AlertKey, float]]:
        """What the state file saves: copies of the queued entries, and delivery times."""
        with self._wake:
            copies = [dataclasses.replace(e) for e in self._outbox]
            return copies, dict(self._told)

    def failing(self) -> bool:
        """The last attempt failed and something is queued."""
        with self._wake:
            return self._failing and len(self._outbox) > 0

    def stats(self) -> NotifierStats:
        with self._wake:
            now = self._clock()
            oldest = self._outbox.oldest_queued_at()
            pending: dict[AlertKey, tuple[str, float, int]] = {}
            for e in self._outbox:
                pending.setdefault(e.key, (e.notification.status, e.queued_at, e.attempts))
            return NotifierStats(
                results=dict(self._results),
                queued=len(self._outbox),
                oldest_queued_age=max(0.0, now - oldest) if oldest is not None else 0.0,
                failing=self._failing and len(self._outbox) > 0,
                told=dict(self._told),
                pending=pending,
            )

    def request_stop(self) -> None:
        with self._wake:
            self._stop.set()
            self._wake.notify()

    def stop(self, timeout: float) -> None:
        """End the worker: an attempt under way may finish within `timeout`;
        what is still queued stays in the outbox (and so in the state file)."""
        self.request_stop()
        self._thread.join(timeout)
        with self._wake:
            left = len(self._outbox)
        if left:
            log.warning("notifier %s: %d notification(s) still queued at stop", self.name, left)

    def _give_up(self, e: Entry, result: str, why: str) -> None:
        with self._wake:
            self._results[result] += 1
        log.error("notifier %s: %s not delivered: %s", self.name, describe(e.notification), why)

    def _run(self) -> None:
        while True:
            with self._wake:
                entry = None
                while not self._stop.is_set():
                    now = self._clock()
                    entry = self._outbox.next_due(now)
                    if entry is not None:
                        break
                    wake = self._outbox.next_wake()
                    self._wake.wait(None if wake is None else max(0.01, min(wake - now, 60.0)))
                if entry is None:
                    return
            try:
                self._deliver(entry)
            except Exception:  # a bug in a payload must not end the worker
                with self._wake:
                    self._outbox.failed(entry, self._clock(), "internal error", retry=False)
                    self._results[FAILED] += 1
                log.exception(
                    "notifier %s: %s not delivered", self.name, describe(entry.notification)
                )
                self._on_change()

    def _attempt(self, body: bytes) -> tuple[bool, bool, str, bool]:
        """(delivered, worth retrying, what happened, the receiver may have it anyway)."""
        request = HttpRequest(self._url, body, self._headers, self.cfg.timeout, self._ssl)
        try:
            status = self._transport(request)
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            # Waiting for the answer timed out (urllib wraps errors before the
            # request was sent in URLError): the receiver may have taken the
            # request and act on it without ever answering in time.
            return False, True, f"{type(exc).__name__}: {reason}", isinstance(exc, TimeoutError)
        if 200 <= status < 300:
            return True, False, f"HTTP {status}", False
        # 429: the receiver asks to come back later, which is what a retry does.
        return False, status >= 500 or status == 429, f"HTTP {status}", False

    def _deliver(self, e: Entry) -> None:
        n = e.notification
        delivered, retry, what, maybe = self._attempt(self._build(n))
        with self._wake:
            now = self._clock()
            if delivered:
                self._outbox.delivered(e)
                result = DELIVERED
                if n.status == "firing":
                    self._told[n.alert.key] = now
                else:
                    self._told.pop(n.alert.key, None)
            else:
                result = self._outbox.failed(e, now, what, retry, maybe)
            self._results[result] += 1
            self._failing = not delivered
            attempts, next_in = e.attempts, e.next_at - now
        if result == DELIVERED:
            log.info(
                "notifier %s: %s delivered (%s, attempt %d)",
                self.name,
                describe(n),
                what,
                attempts + 1,
            )
        elif result == RETRIED:
            log.warning(
                "notifier %s: %s attempt %d failed (%s), retrying in %gs",
                self.name,
                describe(n),
                attempts,
                what,
                round(next_in, 3),
            )
            return  # still queued: nothing for the state file
        elif result == FAILED:
            log.error(
                "notifier %s: %s not delivered: rejected by the receiver: %s, not retried",
                self.name,
                describe(n),
                what,
            )
        else:
            log.error(
                "notifier %s: %s not delivered: given up after %d attempt(s) over %gs, last: %s",
                self.name,
                describe(n),
                attempts,
                round(now - e.queued_at, 3),
                what,
            )
        self._on_change()
