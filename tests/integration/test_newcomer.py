"""`make demo` as a newcomer runs it: the jar download is announced only when it
happens, with its size; the demo says where Kafka listens and what to try; lag
appears at the exporter's address."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from localkafka import CACHE_ENV, kafka_version

from .conftest import ROOT, free_port, wait_until


def test_fetch_announces_a_download_only_when_it_happens(tmp_path: Path) -> None:
    # A fresh cache: Maven copies the jars from its local repository, which the
    # session's broker already filled, so this is a real fetch without the network.
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    command = [sys.executable, "-m", "localkafka", "fetch"]
    first = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT, check=True
    )
    assert f"first use of Kafka {kafka_version()}: fetching" in first.stdout, first.stdout
    size = re.search(r"(\d+) jars, (\d+) MB, fetched in", first.stdout)
    assert size is not None, first.stdout
    assert int(size.group(1)) > 10 and int(size.group(2)) > 10

    second = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=True
    )
    assert "fetching" not in second.stdout and "MB" not in second.stdout, second.stdout


def test_demo_shows_lag_and_says_what_to_try() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "localkafka.demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "LAG_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(
            lambda: any("lag is growing" in line for line in lines), timeout=180, what="demo up"
        )
        log = "".join(lines)
        kafka = re.search(r"Kafka \S+ listens at (127\.0\.0\.1:\d+)", log)
        assert kafka is not None, log
        assert f"check --bootstrap-servers {kafka.group(1)}" in log
        assert f"plan --bootstrap-servers {kafka.group(1)}" in log
        assert "fetching" not in log  # the session already has the jars

        def demo_lag() -> float:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            values = re.findall(
                r'^kafka_consumergroup_lag_sum\{[^}]*consumergroup="demo-slow"[^}]*\} (\S+)$',
                text,
                re.M,
            )
            return sum(float(v) for v in values)

        wait_until(lambda: demo_lag() > 0, timeout=60, what="demo-slow lagging")
        first = demo_lag()
        wait_until(lambda: demo_lag() > first, timeout=60, what="demo-slow lag growing")
        # What a person opening the demo's address sees: the group, on the overview.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            page = r.read().decode()
        assert "demo-slow" in page and "<svg" in page
        assert "cluster local: up (1 broker)" in "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(10)
    assert code == 0, "".join(lines)[-3000:]
    assert "Traceback" not in "".join(lines)
