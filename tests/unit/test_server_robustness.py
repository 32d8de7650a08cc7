"""The HTTP server under bad input: fuzzed requests, oversize heads, slow and stuck clients,
too many connections, and a failure while answering. It must keep serving others."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lag_exporter.api import render_groups
from lag_exporter.daemon import Published
from lag_exporter.metrics import render
from lag_exporter.server import MAX_HEADER_BYTES, MAX_REQUEST_LINE, HttpServer

from .factories import group, poll, view_of

T0 = 1_700_000_000.0


def _published() -> Published:
    view = view_of(
        poll(
            T0,
            topics={"t": 1},
            ends={("t", 0): (0, 9)},
            groups=[group("g")],
            committed={"g": {("t", 0): 4}},
        )
    )
    return Published((view,), render([view]), render_groups([view]), ready=True)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, list[Callable[[], Published]]]]:
    """A server whose `published` callable the tests may swap."""
    good = _published()
    source: list[Callable[[], Published]] = [lambda: good]
    server = HttpServer(
        "127.0.0.1",
        0,
        lambda: source[0](),
        request_timeout=1.0,
        write_timeout=2.0,
        max_connections=16,
    )
    server.start()
    try:
        yield server.port, source
    finally:
        server.stop()


def _get(port: int, path: str = "/metrics") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        response.read()
        return int(response.status)


def _raw(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes, half-close, read whatever comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server may close first on garbage; that is an answer too
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def _closed_by_server(sock: socket.socket, within: float = 3.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True  # reset


def _status(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1."):
        return None
    return int(answer.split(b" ", 2)[1])


request_lines = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda method, path, version: f"{method} {path} {version}".encode("utf-8", "replace"),
        st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "BREW", "", "get"]),
        st.one_of(
            st.sampled_from(["/", "/metrics", "/api/v1/groups", "/healthz", "*", "//", "/%00"]),
            st.text(max_size=100),
        ),
        st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "HTTP/1.1 extra"]),
    ),
)
headers = st.lists(
    st.one_of(
        st.binary(max_size=80),
        st.builds(
            lambda k, v: k.encode("utf-8", "replace") + b": " + v.encode("utf-8", "replace"),
            st.sampled_from(
                ["Host", "Accept-Encoding", "Authorization", "Content-Length", "Connection", "X"]
            ),
            st.text(max_size=60),
        ),
    ),
    max_size=8,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(request_lines, headers, st.sampled_from([b"\r\n", b"\n"]), st.booleans())
def test_fuzzed_requests_never_stop_the_server(
    served: tuple[int, list[Callable[[], Published]]],
    line: bytes,
    header_lines: list[bytes],
    eol: bytes,
    finish: bool,
) -> None:
    port, _ = served
    data = line + eol + eol.join(header_lines) + (eol + eol if finish else b"")
    answer = _raw(port, data)
    status = _status(answer)
    assert status is None or 100 <= status < 600, answer[:200]
    assert status != 500, answer[:300]  # bad input is the client's error, not the server's
    assert _get(port) == 200


def test_oversize_request_line_and_headers_are_refused(
    served: tuple[int, list[Callable[[], Published]]],
) -> None:
    port, _ = served
    long_path = b"/" + b"a" * (MAX_REQUEST_LINE + 10)
    assert _status(_raw(port, b"GET " + long_path + b" HTTP/1.1\r\n\r\n")) == 414
    big = b"X-Big: " + b"b" * 4000 + b"\r\n"
    many = big * (MAX_HEADER_BYTES // len(big) + 2)
    assert _status(_raw(port, b"GET /metrics HTTP/1.1\r\n" + many + b"\r\n")) == 431
    too_many = b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    assert _status(_raw(port, b"GET /metrics HTTP/1.1\r\n" + too_many + b"\r\n")) == 431
    huge = b"GET /metrics HTTP/1.1\r\nX: " + b"c" * 2_000_000 + b"\r\n\r\n"
    assert _status(_raw(port, huge)) in (None, 431)
    assert _get(port) == 200


def test_slow_clients_do_not_block_others_and_are_cut_off(
    served: tuple[int, list[Callable[[], Published]]],
) -> None:
    port, _ = served
    slow = []
    for _ in range(10):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
        slow.append(sock)
    try:
        started = time.monotonic()
        for _ in range(20):
            assert _get(port) == 200
        assert time.monotonic() - started < 5
        # One byte now and then resets no timer: the whole head has a deadline (1 s here).
        trickler = slow[0]
        closed_at = None
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                trickler.sendall(b"X")
                trickler.settimeout(0.3)
                if trickler.recv(1024) == b"":
                    closed_at = time.monotonic()
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic()
                break
        assert closed_at is not None and closed_at - started < 5
        for sock in slow[1:]:
            assert _closed_by_server(sock), "a half request was left open past its deadline"
    finally:
        for sock in slow:
            sock.close()
    assert _get(port) == 200


def test_connections_beyond_the_cap_are_refused_and_service_resumes() -> None:
    server = HttpServer("127.0.0.1", 0, _published, request_timeout=5.0, max_connections=4)
    server.start()
    held = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # holds its slot
            held.append(sock)
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        extra.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        assert _closed_by_server(extra, within=1.0)  # at once, not queued
        extra.close()
    finally:
        for sock in held:
            sock.close()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                assert _get(server.port) == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        server.stop()


def test_an_error_answering_one_request_stays_in_that_request(
    served: tuple[int, list[Callable[[], Published]]],
) -> None:
    port, source = served
    good = source[0]

    def broken() -> Published:
        source[0] = good
        raise RuntimeError("boom")

    source[0] = broken
    with pytest.raises(urllib.error.HTTPError) as failed:
        _get(port)
    assert failed.value.code == 500
    assert _get(port) == 200
    assert _get(port, "/healthz") == 200
