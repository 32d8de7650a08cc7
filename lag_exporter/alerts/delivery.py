"""Delivery of notifications: one bounded queue and one worker thread per notifier.

The poller only ever puts a notification in a queue (never waits), so a slow
or dead receiver cannot delay polling. The worker POSTs, and retries with
exponential backoff on what may pass (5xx, 429, timeouts, connection
errors); any other answer is final. A notification that cannot be delivered
(queue full, attempts exhausted, rejected, exporter stopping) is counted by
outcome and logged with the alert's labels: never dropped silently. URLs,
headers and passwords are never logged (a Slack webhook URL is a credential).
"""

from __future__ import annotations

import base64
import http.client
import logging
import queue
import ssl
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .. import __version__
from .engine import Notification
from .rules import NotifierConfig

log = logging.getLogger(__name__)

# Outcomes, as the `outcome` label of lag_exporter_alert_notifications_total.
DELIVERED = "delivered"
FAILED = "failed"  # attempts exhausted, or the receiver rejected it (4xx)
DROPPED = "dropped"  # never attempted: queue full, or the exporter stopping
OUTCOMES = (DELIVERED, FAILED, DROPPED)


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
    outcomes: Mapping[str, int] = field(default_factory=dict)
    retries: int = 0
    queued: int = 0


class Deliverer:
    """The queue and worker thread of one notifier."""

    def __init__(
        self,
        cfg: NotifierConfig,
        build: Callable[[Notification], bytes],
        url: str,
        transport: Transport = urllib_transport,
    ) -> None:
        self.cfg = cfg
        self._build = build
        self._url = url
        self._transport = transport
        self._headers = request_headers(cfg)
        self._ssl = ssl_context(cfg)
        self._queue: queue.Queue[Notification] = queue.Queue(cfg.queue_size)
        self._stop = threading.Event()  # no more submissions: drain, then end
        self._abort = threading.Event()  # give up now, even mid-backoff
        self._lock = threading.Lock()
        self._outcomes: Counter[str] = Counter()
        self._retries = 0
        self._thread = threading.Thread(target=self._run, name=f"notifier-{cfg.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.cfg.name

    def start(self) -> None:
        self._thread.start()

    def submit(self, n: Notification) -> bool:
        """Queue a notification without waiting; False (counted, logged) when full."""
        try:
            self._queue.put_nowait(n)
        except queue.Full:
            self._give_up(n, DROPPED, f"queue full ({self.cfg.queue_size} waiting)")
            return False
        return True

    def stats(self) -> NotifierStats:
        with self._lock:
            return NotifierStats(dict(self._outcomes), self._retries, self._queue.qsize())

    def request_stop(self) -> None:
        """No more notifications will come: deliver what is queued, then end."""
        self._stop.set()

    def stop(self, timeout: float) -> None:
        """Deliver what is queued for at most `timeout` seconds, then give up on the rest."""
        self._stop.set()
        self._thread.join(timeout)
        self._abort.set()
        self._thread.join(1.0)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._outcomes[outcome] += 1

    def _give_up(self, n: Notification, outcome: str, why: str) -> None:
        self._count(outcome)
        log.error("notifier %s: %s not delivered: %s", self.name, describe(n), why)

    def _run(self) -> None:
        while True:
            try:
                n = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if self._abort.is_set():
                self._give_up(n, DROPPED, "exporter stopping")
                continue
            try:
                self._deliver(n)
            except Exception:  # a bug in a payload must not end the worker
                self._count(FAILED)
                log.exception("notifier %s: %s not delivered", self.name, describe(n))

    def _attempt(self, body: bytes) -> tuple[bool, bool, str]:
        """(delivered, worth retrying, what happened)."""
        request = HttpRequest(self._url, body, self._headers, self.cfg.timeout, self._ssl)
        try:
            status = self._transport(request)
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            return False, True, f"{type(exc).__name__}: {reason}"
        if 200 <= status < 300:
            return True, False, f"HTTP {status}"
        # 429: the receiver asks to come back later, which is what a retry does.
        return False, status >= 500 or status == 429, f"HTTP {status}"

    def _deliver(self, n: Notification) -> None:
        body = self._build(n)
        delay = self.cfg.backoff
        for attempt in range(1, self.cfg.max_attempts + 1):
            delivered, retry, what = self._attempt(body)
            if delivered:
                self._count(DELIVERED)
                log.info(
                    "notifier %s: %s delivered (%s, attempt %d)",
                    self.name,
                    describe(n),
                    what,
                    attempt,
                )
                return
            if not retry:
                self._give_up(n, FAILED, f"rejected by the receiver: {what}, not retried")
                return
            if attempt == self.cfg.max_attempts:
                break
            with self._lock:
                self._retries += 1
            log.warning(
                "notifier %s: %s attempt %d/%d failed (%s), retrying in %gs",
                self.name,
                describe(n),
                attempt,
                self.cfg.max_attempts,
                what,
                delay,
            )
            if self._abort.wait(delay):
                self._give_up(n, FAILED, f"exporter stopping after {attempt} attempt(s): {what}")
                return
            delay *= 2
        self._give_up(n, FAILED, f"{self.cfg.max_attempts} attempts failed, last: {what}")
