"""A real HTTP receiver on 127.0.0.1 for notification tests: records every POST,
answers with scripted statuses (then 200)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived
    status: int  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(
        self, statuses: list[int] | None = None, delay: float = 0.0, port: int = 0
    ) -> None:
        self.statuses = list(statuses or [])  # answered in order, then 200
        self.delay = delay  # seconds before answering (to provoke timeouts)
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        Received(self.path, dict(self.headers), body, time.time(), status)
                    )
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True  # the port of a receiver gone before
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"

    def use_tls(self, certfile: str, keyfile: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def received(self, status: int | None = 200) -> list[Received]:
        """Requests answered with `status` (None: all)."""
        with self._lock:
            return [r for r in self.requests if status is None or r.status == status]

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.received()]


@contextmanager
def receiving(
    statuses: list[int] | None = None,
    delay: float = 0.0,
    tls: tuple[str, str] | None = None,
    port: int = 0,
) -> Iterator[Receiver]:
    """A receiver serving on a thread; `tls`: (certificate file, key file) for HTTPS;
    `port`: a given one (e.g. where a receiver that was down comes back)."""
    receiver = Receiver(statuses, delay, port)
    if tls is not None:
        receiver.use_tls(*tls)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
