"""HTTP endpoints. They serve bytes rendered after the last poll and never call Kafka."""

from __future__ import annotations

import html
import json
import logging
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import __version__
from .daemon import Published
from .metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

_JSON = "application/json"
_SWITCH_INTERVAL = 0.001  # seconds
_LINKS = (
    ("/metrics", "Prometheus metrics"),
    ("/api/v1/groups", "Consumer groups, partitions and lag (JSON)"),
    ("/healthz", "Liveness"),
    ("/readyz", "Readiness: every cluster polled successfully at least once"),
)


def _landing_page() -> bytes:
    items = "".join(
        f'<li><a href="{href}">{html.escape(href)}</a> {html.escape(text)}</li>'
        for href, text in _LINKS
    )
    return (
        "<!doctype html><html><head><title>Kafka lag exporter</title></head><body>"
        f"<h1>Kafka lag exporter {html.escape(__version__)}</h1><ul>{items}</ul>"
        "</body></html>"
    ).encode()


_LANDING = _landing_page()


def _accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def make_handler(published: Callable[[], Published]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"lag-exporter/{__version__}"
        protocol_version = "HTTP/1.1"
        # Slow or stuck clients must not hold a thread forever.
        timeout = 30
        # Headers and body go out in two writes; with Nagle's algorithm the
        # body waits for the client's delayed ACK of the headers: 40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def _send(
            self, status: int, body: bytes, content_type: str, encoding: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if encoding:
                self.send_header("Content-Encoding", encoding)
                self.send_header("Vary", "Accept-Encoding")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            current = published()
            if path == "/metrics":
                if _accepts_gzip(self.headers.get("Accept-Encoding")):
                    self._send(200, current.exposition.gzipped, CONTENT_TYPE, "gzip")
                else:
                    self._send(200, current.exposition.text, CONTENT_TYPE)
            elif path == "/":
                self._send(200, _LANDING, "text/html; charset=utf-8")
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
            else:
                body = json.dumps({"error": "not found", "path": path[:200]}).encode()
                self._send(404, body, _JSON)

    return Handler


class HttpServer:
    def __init__(self, host: str, port: int, published: Callable[[], Published]) -> None:
        self._server = ThreadingHTTPServer((host, port), make_handler(published))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        # A handler thread needs the GIL a few times per request. While a poll
        # is decoding or rendering, each of those waits lasts up to the switch
        # interval: 5 ms by default, so 10-20 ms added to every scrape.
        sys.setswitchinterval(_SWITCH_INTERVAL)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
