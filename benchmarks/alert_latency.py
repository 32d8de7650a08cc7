"""Time from a lag threshold being crossed to the webhook receiving the alert.

    python -m benchmarks.alert_latency [--rounds 10] [--poll-interval 1s]

Starts a local Kafka broker (or uses --bootstrap-servers), the real exporter
process with one rule (`lag > THRESHOLD`, `for: 0s`) and a webhook receiver
on 127.0.0.1. Each round leaves a group exactly THRESHOLD messages behind,
then produces one more message synchronously: the threshold is crossed when
the broker acknowledges it. The latency is the receiver's arrival time minus
that moment. The group then catches up (a commit), the alert resolves, and
the next round starts after a random pause, so crossings fall at random
points of the poll cycle. Expect about half a poll interval on average, at
most one poll interval plus the poll's own duration.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata, TopicPartition

from localkafka import KafkaBroker

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 100


class Receiver:
    """Records (arrival time, payload) of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                at = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.arrived:
                    receiver.received.append((at, body))
                    receiver.arrived.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def wait_for(self, state: str, after: int, timeout: float = 60.0) -> float:
        """Arrival time of the first notification in `state` after the first `after`."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for at, body in self.received[after:]:
                    if body["state"] == state:
                        return at
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {state} notification within {timeout}s")
                self.arrived.wait(remaining)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def run(bootstrap: str, rounds: int, poll_interval: str) -> list[float]:
    suffix = os.urandom(3).hex()
    topic, group = f"latency-{suffix}", f"latency-group-{suffix}"
    tp = TopicPartition(topic, 0)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
    receiver = Receiver()
    with ExitStack() as stack:
        stack.callback(admin.close)
        stack.callback(producer.close)
        stack.callback(receiver.server.shutdown)
        admin.create_topics([NewTopic(topic, 1, 1)])
        offset = 0

        def commit(at: int) -> None:
            def attempt() -> bool:
                # A fresh broker creates its offsets topic on first use: retry meanwhile.
                try:
                    result = admin.alter_group_offsets(group, {tp: OffsetAndMetadata(at, "", -1)})
                except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                    return False
                return all(e.__name__ == "NoError" for e in result.values())

            wait_until(attempt, 30, "commit")

        def produce(count: int) -> None:
            nonlocal offset
            for _ in range(count):
                producer.send(topic, b"x", partition=0)
            producer.flush()
            offset += count

        commit(0)
        config = {
            "poll_interval": poll_interval,
            "listen_address": "127.0.0.1:0",
            "clusters": [{"name": "bench", "kafka": {"bootstrap.servers": bootstrap}}],
            "alerting": {
                "notifiers": {"hook": {"type": "webhook", "url": receiver.url}},
                "rules": [
                    {"name": "Latency", "metric": "lag", "threshold": THRESHOLD, "groups": [group]}
                ],
            },
        }
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="alert-latency-")))
        (tmp / "config.yml").write_text(yaml.safe_dump(config))
        log = stack.enter_context((tmp / "exporter.log").open("wb"))
        exporter = subprocess.Popen(
            [sys.executable, "-m", "lag_exporter", "run", "--config", str(tmp / "config.yml")],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(exporter.wait)
        stack.callback(exporter.terminate)

        latencies = []
        for i in range(rounds):
            seen = len(receiver.received)
            produce(THRESHOLD)  # exactly at the threshold: not above it yet
            time.sleep(random.uniform(1.0, 2.5))  # let a poll or two see lag == THRESHOLD
            future = producer.send(topic, b"x", partition=0)
            future.get(timeout=30)  # acknowledged: the log end, and so the lag, moved
            crossed = time.time()
            offset += 1
            arrived = receiver.wait_for("firing", seen)
            latencies.append(arrived - crossed)
            print(f"round {i + 1:2d}: {1000 * (arrived - crossed):7.1f} ms", flush=True)
            seen = len(receiver.received)
            commit(offset)
            receiver.wait_for("resolved", seen)
        return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll-interval", default="1s")
    parser.add_argument("--bootstrap-servers", help="use this Kafka instead of starting one")
    args = parser.parse_args()
    print(f"poll interval {args.poll_interval}, rule lag > {THRESHOLD}, for 0s")
    if args.bootstrap_servers:
        latencies = run(args.bootstrap_servers, args.rounds, args.poll_interval)
    else:
        with KafkaBroker() as broker:
            broker.start()
            latencies = run(broker.bootstrap, args.rounds, args.poll_interval)
    ms = sorted(1000 * x for x in latencies)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    print(
        f"threshold crossed -> webhook received, {len(ms)} rounds: "
        f"min {ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, "
        f"mean {statistics.mean(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
