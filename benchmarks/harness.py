"""Shared pieces of the reliability scripts: a real exporter process and its vital signs.

The exporter runs as `python -m lag_exporter` from this checkout, exactly as a
user would run it; what is measured is read from /proc (Linux), so nothing in
the exporter is instrumented for the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Vitals:
    """What the kernel says about a process."""

    rss_kib: int
    threads: int
    fds: int
    sockets: int


def vitals(pid: int) -> Vitals:
    """Resident memory, threads, open file descriptors and sockets of `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    fds = sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        fds += 1
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith("socket:"):
                sockets += 1
    return Vitals(
        rss_kib=int(fields["VmRSS"].split()[0]),
        threads=int(fields["Threads"]),
        fds=fds,
        sockets=sockets,
    )


@dataclass
class ExporterProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics_text(self) -> str:
        status, body = self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return body.decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def exporter(
    config: dict[str, Any], workdir: Path | None = None, log_level: str = "info"
) -> Iterator[ExporterProcess]:
    """Run `python -m lag_exporter run --config ...` from this checkout until the block ends."""
    directory = workdir or Path(tempfile.mkdtemp(prefix="lag-exporter-bench-"))
    port = free_port()
    doc = {"listen_address": f"127.0.0.1:{port}", **config}
    config_path = directory / "config.yml"
    config_path.write_text(yaml.safe_dump(doc))
    log_path = directory / "exporter.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lag_exporter",
                "run",
                "--config",
                str(config_path),
                "--log-level",
                log_level,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    running = ExporterProcess(process, int(str(doc["listen_address"]).rsplit(":", 1)[1]), log_path)
    try:
        wait_for(lambda: running.get("/readyz", timeout=2)[0] == 200, 120, "exporter ready")
        yield running
    finally:
        running.stop()


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError, RuntimeError, KeyError):
            if check():
                return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def series_lines(text: str) -> list[str]:
    """Sample lines of an exposition (no comments)."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
