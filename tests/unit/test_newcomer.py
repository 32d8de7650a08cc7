"""What a newcomer meets first: bad input refused with the key named, unreachable
or non-Kafka addresses said in words within seconds, a busy demo port, and the
example configuration. Each runs the real command line in a subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(
    *args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "lag_exporter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=environment,
        check=False,
    )


@pytest.mark.parametrize(
    ("document", "key", "why"),
    [
        (
            "clusters: [{name: a, kafka: {bootstrap.servers: 'host:abc'}}]",
            "bootstrap.servers",
            "host:port",
        ),
        (
            "clusters: [{name: a, kafka: {bootstrap.servers: 'a:9092, b:9092'}}]",
            "bootstrap.servers",
            "spaces",
        ),
        (
            "clusters: [{name: a, kafka: {bootstrap.servers: 'a:70000'}}]",
            "bootstrap.servers",
            "1 to 65535",
        ),
        ("poll_interval: 50ms", "poll_interval", "at least 100ms"),
        (
            "clusters: [{name: a, poll_interval: 10ms, kafka: {bootstrap.servers: 'a:9092'}}]",
            "clusters[0].poll_interval",
            "at least 100ms",
        ),
        (
            "clusters: [{name: a, lag_seconds: {history_size: 3}, "
            "kafka: {bootstrap.servers: 'a:1'}}]",
            "clusters[0].lag_seconds.history_size",
            "at least 10",
        ),
        (
            "clusters: [{name: a, labels: {version: 1.10}, kafka: {bootstrap.servers: 'a:1'}}]",
            "clusters[0].labels.version",
            "expected a string",
        ),
    ],
)
def test_validate_config_names_what_to_fix(
    tmp_path: Path, document: str, key: str, why: str
) -> None:
    path = tmp_path / "config.yml"
    path.write_text(document + "\n")
    result = cli("validate-config", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert key in result.stderr and why in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_valid_bootstrap_list_passes(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "clusters: [{name: a, labels: {env: prod}, "
        "kafka: {bootstrap.servers: 'kafka-1:9092,10.0.0.2:9093,[::1]:9094'}}]\n"
    )
    result = cli("validate-config", str(path))
    assert result.returncode == 0, result.stderr


def test_negative_max_lag_is_refused() -> None:
    result = cli("check", "--max-lag", "-1", "--bootstrap-servers", "127.0.0.1:1")
    assert result.returncode == 2
    assert "--max-lag" in result.stderr and "0 or more" in result.stderr


def test_bad_bootstrap_flag_names_the_flag() -> None:
    result = cli("check", "--bootstrap-servers", "host:abc")
    assert result.returncode == 2
    assert "--bootstrap-servers: 'host:abc' is not host:port" in result.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_check_says_connection_refused_at_once() -> None:
    started = time.monotonic()
    result = cli("check", "--bootstrap-servers", f"127.0.0.1:{closed_port()}")
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "connection refused" in result.stderr
    # Not the 30 s of a client retrying until its bootstrap timeout (the bound is
    # loose: a loaded machine may take seconds just to start Python).
    assert elapsed < 20, elapsed


@pytest.fixture
def not_kafka() -> Iterator[tuple[int, int]]:
    """Two TCP servers that are not Kafka: one answers like HTTP, one says nothing."""
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve(server: socket.socket, answer: bytes) -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if answer:
                conn.recv(1024)
                conn.sendall(answer)
                conn.close()
            else:
                held.append(conn)  # silent: keep the connection open, never answer

    threads = [
        threading.Thread(target=serve, args=(servers[0], b"HTTP/1.1 400 Bad Request\r\n\r\n")),
        threading.Thread(target=serve, args=(servers[1], b"")),
    ]
    for t in threads:
        t.start()
    try:
        yield servers[0].getsockname()[1], servers[1].getsockname()[1]
    finally:
        stop.set()
        for t in threads:
            t.join()
        for s in [*servers, *held]:
            s.close()


def test_check_says_not_a_kafka_broker(not_kafka: tuple[int, int]) -> None:
    http_port, silent_port = not_kafka
    result = cli("check", "--bootstrap-servers", f"127.0.0.1:{http_port}")
    assert result.returncode == 3
    assert "not a Kafka broker" in result.stderr and "HTTP/1.1" in result.stderr

    started = time.monotonic()
    result = cli("check", "--timeout", "2s", "--bootstrap-servers", f"127.0.0.1:{silent_port}")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert "not a Kafka broker" in result.stderr and "within 2s" in result.stderr
    assert elapsed < 20, elapsed


def test_demo_refuses_a_busy_port_before_starting_kafka() -> None:
    started = time.monotonic()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "localkafka.demo"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "LAG_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"},
            check=False,
        )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "LAG_EXPORTER_LISTEN_ADDRESS" in result.stderr
    assert "Traceback" not in result.stderr
    assert "starting a local Kafka" not in result.stdout + result.stderr
    assert time.monotonic() - started < 20  # no broker was started meanwhile


def test_example_config_validates_with_the_variables_its_first_line_names() -> None:
    text = (ROOT / "examples" / "config.yml").read_text()
    used = set(re.findall(r"\{env:\s*([A-Z0-9_]+)\}", text))
    first_lines = "\n".join(text.splitlines()[:2])
    assert used and all(name in first_lines for name in used), (used, first_lines)

    # What a user would set: URLs where the variable holds one.
    env = {
        name: "https://hooks.example.com/x" if name.endswith("_URL") else f"value-of-{name}"
        for name in used
    }
    result = cli("validate-config", "examples/config.yml", env=env)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout

    for missing in sorted(used):
        result = cli("validate-config", "examples/config.yml", env=env, unset=(missing,))
        assert result.returncode == 2
        assert f"environment variable {missing} is not set" in result.stderr
