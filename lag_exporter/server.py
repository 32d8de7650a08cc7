"""HTTP endpoints. They serve bytes rendered after the last poll and never call Kafka.

Bad input never takes the server down: the request line and headers are
limited in size (414, 431), a request must arrive within `request_timeout`
and its answer leave within `write_timeout` (a watchdog closes connections
that take longer, however slowly they trickle), connections beyond
`max_connections` are refused at once, and an error while answering one
request ends that request with a 500, not the server. With a web config
(web.py), TLS handshakes happen on the connection's own thread (a client
that never finishes its handshake holds only that thread), and every path
but /healthz asks for basic auth.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import __version__
from .daemon import Published
from .metrics import CONTENT_TYPE
from .ui.routes import answer as ui_answer
from .web import BasicAuth, WebConfig

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 8192  # bytes, the request line alone
MAX_HEADER_BYTES = 32768  # bytes, all header lines together
REQUEST_TIMEOUT = 30.0  # seconds to receive a request (idle keep-alive time included)
WRITE_TIMEOUT = 60.0  # seconds to send an answer
MAX_CONNECTIONS = 256  # connections served at once; more are refused
# Liveness must be checkable without credentials (e.g. by a container runtime).
OPEN_PATHS = frozenset({"/healthz"})

_JSON = "application/json"
_SWITCH_INTERVAL = 0.001  # seconds


def _accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class _HeadReader:
    """The connection's reader, refusing request heads larger than the limits."""

    def __init__(self, raw: Any, budget: int) -> None:
        self._raw = raw
        self.budget = budget

    def readline(self, limit: int = -1) -> bytes:
        cap = self.budget + 1 if limit < 0 else min(limit, self.budget + 1)
        line: bytes = self._raw.readline(cap)
        self.budget -= len(line)
        if self.budget < 0:
            # parse_request() answers this with 431 and closes the connection.
            raise http.client.LineTooLong("request header")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _Watchdog:
    """Closes connections whose current deadline has passed.

    Socket time-outs bound each read, not a whole request: a client sending a
    byte now and then would hold its thread for ever. One thread checks every
    deadline instead, and shuts the socket down, which ends the blocked read
    or write at once.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self._deadlines: dict[int, tuple[float, socket.socket]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def arm(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._deadlines[id(sock)] = (time.monotonic() + seconds, sock)

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(id(sock), None)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            with self._lock:
                expired = [k for k, (deadline, _) in self._deadlines.items() if deadline <= now]
                socks = [self._deadlines.pop(k)[1] for k in expired]
            for sock in socks:
                with contextlib.suppress(OSError):  # already gone
                    sock.shutdown(socket.SHUT_RDWR)


def make_handler(published: Callable[[], Published]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"lag-exporter/{__version__}"
        protocol_version = "HTTP/1.1"
        # Each read and write; the watchdog bounds whole requests.
        timeout = 30
        server: _Server
        # Headers and body go out in two writes; with Nagle's algorithm the
        # body waits for the client's delayed ACK of the headers: 40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def handle_one_request(self) -> None:
            """The standard library's, with tighter limits and whole-request deadlines."""
            server = self.server
            server.watchdog.arm(self.connection, server.request_timeout)
            raw = self.rfile
            self.rfile = _HeadReader(raw, MAX_REQUEST_LINE + MAX_HEADER_BYTES)  # type: ignore[assignment]
            self._sent_headers = False
            try:
                self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
                if len(self.raw_requestline) > MAX_REQUEST_LINE:
                    self.requestline = self.request_version = self.command = ""
                    self.send_error(414)
                    return
                if not self.raw_requestline:
                    self.close_connection = True
                    return
                self.rfile.budget = MAX_HEADER_BYTES  # type: ignore[attr-defined]
                if not self.parse_request():
                    return  # an error was answered
                server.watchdog.arm(self.connection, server.write_timeout)
                method = getattr(self, "do_" + self.command, None)
                if method is None:
                    self.send_error(501, f"Unsupported method ({self.command!r})")
                    return
                method()
                self.wfile.flush()
            except (TimeoutError, ConnectionError, http.client.LineTooLong) as exc:
                self.log_error("request abandoned: %r", exc)
                self.close_connection = True
            except OSError as exc:  # e.g. shut down by the watchdog
                self.log_error("connection error: %r", exc)
                self.close_connection = True
            finally:
                self.rfile = raw
                server.watchdog.disarm(self.connection)

        def send_response(self, code: int, message: str | None = None) -> None:
            self._sent_headers = True
            super().send_response(code, message)

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            encoding: str | None = None,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if encoding:
                self.send_header("Content-Encoding", encoding)
                self.send_header("Vary", "Accept-Encoding")
            for name, text in (headers or {}).items():
                self.send_header(name, text)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_pieces(self, size: int, pieces: Iterable[bytes], content_type: str) -> None:
            """A 200 whose body is written as it is produced (decompressed)."""
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size))
            self.send_header("Vary", "Accept-Encoding")
            self.end_headers()
            if self.command != "HEAD":
                for piece in pieces:
                    self.wfile.write(piece)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            try:
                self._answer()
            except OSError:
                raise  # the client went away; nothing to answer
            except Exception:
                # A bug answering one request must end only that request.
                log.exception("error answering %s %s", self.command, self.path[:200])
                self.close_connection = True
                if not self._sent_headers:
                    self._send(500, b"internal error, see the exporter's log\n", "text/plain")

        def _answer(self) -> None:
            path, _, query = self.path.partition("?")
            auth = self.server.basic_auth
            if (
                auth.enabled
                and path not in OPEN_PATHS
                and not auth.check(self.headers.get("Authorization"))
            ):
                self._send(
                    401,
                    b"unauthorized\n",
                    "text/plain; charset=utf-8",
                    headers={"WWW-Authenticate": 'Basic realm="lag-exporter"'},
                )
                return
            current = published()
            if path == "/metrics":
                if _accepts_gzip(self.headers.get("Accept-Encoding")):
                    self._send(200, current.exposition.gzipped, CONTENT_TYPE, "gzip")
                else:
                    self._send_pieces(
                        current.exposition.size, current.exposition.pieces(), CONTENT_TYPE
                    )
            elif path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                if current.ready:
                    self._send(200, b"ready\n", "text/plain; charset=utf-8")
                else:
                    self._send(
                        503,
                        b"not ready: waiting for a first successful poll of every cluster\n",
                        "text/plain; charset=utf-8",
                    )
            elif path == "/api/v1/groups":
                self._send(200, current.groups_document(), _JSON)
            elif path == "/api/v1/alerts":
                self._send(200, current.alerts_json, _JSON)
            else:
                page = ui_answer(path, query, current.overview)
                if page is not None:
                    self._send(
                        page.status,
                        page.body,
                        page.content_type,
                        headers={"Cache-Control": page.cache},
                    )
                    return
                body = json.dumps({"error": "not found", "path": path[:200]}).encode()
                self._send(404, body, _JSON)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        request_timeout: float,
        write_timeout: float,
        max_connections: int,
    ) -> None:
        super().__init__(address, handler)
        self.request_timeout = request_timeout
        self.write_timeout = write_timeout
        self.watchdog = _Watchdog()
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0
        self._refusal_logged_at = -math.inf
        self.web = WebConfig()
        self.basic_auth = BasicAuth({})

    def set_web_config(self, web: WebConfig) -> None:
        # Read once per request or connection, so a reload applies to the next ones.
        self.basic_auth = BasicAuth(web.users)
        self.web = web

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            now = time.monotonic()
            if now - self._refusal_logged_at >= 10.0:  # a flood must not flood the log too
                self._refusal_logged_at = now
                log.warning(
                    "more than %d connections at once: refusing some (%d so far), e.g. from %s",
                    self.max_connections,
                    self.refused,
                    client_address[0],
                )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.web.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs here, on the connection's thread, bounded by the watchdog.
        self.watchdog.arm(request, self.request_timeout)
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        finally:
            self.watchdog.disarm(request)
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        published: Callable[[], Published],
        web: WebConfig | None = None,
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._server = _Server(
            (host, port),
            make_handler(published),
            request_timeout=request_timeout,
            write_timeout=write_timeout,
            max_connections=max_connections,
        )
        if web is not None:
            self._server.set_web_config(web)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def tls(self) -> bool:
        return self._server.web.ssl_context is not None

    def set_web_config(self, web: WebConfig) -> None:
        """Use this TLS and basic-auth configuration for new connections and requests."""
        self._server.set_web_config(web)

    def start(self) -> None:
        self._server.watchdog.start()
        # A handler thread needs the GIL a few times per request. While a poll
        # is decoding or rendering, each of those waits lasts up to the switch
        # interval: 5 ms by default, so 10-20 ms added to every scrape.
        sys.setswitchinterval(_SWITCH_INTERVAL)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.watchdog.stop()
