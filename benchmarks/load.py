"""Load: many concurrent scrapers against the exporter while it polls a large cluster.

Builds a cluster of `--groups` x `--topics` x `--partitions` group-partition
pairs on a real broker (committed offsets written with the admin API, a few
messages per partition so that lag is not zero), starts the exporter, waits
until it reports all pairs, then runs `--scrapers` concurrent scrapers for
`--duration`, each asking for /metrics (gzip, as Prometheus does) over a
kept-alive connection as fast as it is answered. Every answer must be a
complete 200; latencies are reported as percentiles.

    python -m benchmarks.load                       # 10,000 pairs, 50 scrapers, 60 s
    python -m benchmarks.load --duration 15s --json out.json

The scrapers run in a few processes (threads within each), so that the
client's own GIL does not pass for the exporter's latency; on a small
machine they still share its cores with the exporter and the broker, which
the figures include.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import multiprocessing
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata, TopicPartition

from lag_exporter.config import parse_duration

from .harness import ExporterProcess, exporter, percentile, series_lines, vitals, wait_for


@dataclass
class LoadResult:
    scrapers: int
    duration: float
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    bytes_per_scrape: int = 0

    def summary(self) -> dict[str, Any]:
        ms = [x * 1000 for x in self.latencies]
        return {
            "scrapers": self.scrapers,
            "duration_s": round(self.duration, 1),
            "requests": self.requests,
            "errors": self.errors,
            "error_samples": self.error_samples[:5],
            "requests_per_s": round(self.requests / self.duration, 1) if self.duration else 0,
            "p50_ms": round(percentile(ms, 50), 1),
            "p90_ms": round(percentile(ms, 90), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1) if ms else None,
            "gzip_bytes_per_scrape": self.bytes_per_scrape,
        }


def build_cluster(
    bootstrap: str, groups: int, topics: int, partitions: int, prefix: str | None = None
) -> tuple[list[str], list[str]]:
    """Topics with `partitions` partitions each and groups committed on every partition."""
    prefix = prefix or f"load-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=120_000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    topic_names = [f"{prefix}-t{i}" for i in range(topics)]
    group_names = [f"{prefix}-g{i}" for i in range(groups)]
    try:
        admin.create_topics([NewTopic(t, partitions, 1) for t in topic_names])
        for topic in topic_names:  # 4 messages per partition (send waits for metadata)
            for p in range(partitions):
                for n in range(4):
                    producer.send(topic, b"m%d" % n, partition=p)
        producer.flush(120)
        for i, group in enumerate(group_names):
            offsets = {
                TopicPartition(t, p): OffsetAndMetadata(i % 4, "", -1)
                for t in topic_names
                for p in range(partitions)
            }
            commit_offsets(admin, group, offsets)
    finally:
        producer.close(10)
        admin.close()
    return topic_names, group_names


def commit_offsets(admin: KafkaAdminClient, group: str, offsets: dict[Any, Any]) -> None:
    retriable = (CoordinatorNotAvailableError, CoordinatorLoadInProgressError)
    for _ in range(60):
        try:
            result = admin.alter_group_offsets(group, offsets)
        except retriable:
            time.sleep(0.5)
            continue
        if not any(err in retriable for err in result.values()):
            return
        time.sleep(0.5)
    raise RuntimeError(f"could not commit offsets for {group}")


def _scrape_worker(port: int, threads: int, duration: float, interval: float) -> dict[str, Any]:
    """One process: `threads` scrapers, each on its own kept-alive connection."""
    latencies: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def scraper() -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                text = gzip.decompress(body) if response.getheader("Content-Encoding") else body
                if not text.rstrip().endswith(b"# EOF") and b"lag_exporter_build_info" not in text:
                    raise RuntimeError("incomplete exposition")
                elapsed = time.monotonic() - started
                with lock:
                    latencies.append(elapsed)
                    if len(sizes) < 5:
                        sizes.append(len(body))
                if interval:
                    time.sleep(max(0.0, interval - elapsed))
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    workers = [threading.Thread(target=scraper) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"latencies": latencies, "errors": errors, "sizes": sizes}


def run_load(
    port: int, scrapers: int, duration: float, interval: float = 0.0, processes: int = 5
) -> LoadResult:
    """`scrapers` concurrent scrapers for `duration` seconds against 127.0.0.1:`port`.

    interval 0: each scrapes again as soon as answered (the worst case); otherwise
    each scrapes once per `interval`, as Prometheus does per scrape_interval.
    """
    processes = max(1, min(processes, scrapers))
    per = [scrapers // processes + (1 if i < scrapers % processes else 0) for i in range(processes)]
    result = LoadResult(scrapers=scrapers, duration=duration)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [pool.submit(_scrape_worker, port, n, duration, interval) for n in per]
        for future in futures:
            part = future.result(timeout=duration + 120)
            result.latencies += part["latencies"]
            result.error_samples += part["errors"]
            if part["sizes"]:
                result.bytes_per_scrape = max(result.bytes_per_scrape, max(part["sizes"]))
    result.requests = len(result.latencies) + len(result.error_samples)
    result.errors = len(result.error_samples)
    return result


def pairs_tracked(running: ExporterProcess) -> float:
    for line in series_lines(running.metrics_text()):
        if line.startswith("lag_exporter_group_partitions_tracked{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def exporter_config(bootstrap: str, poll_interval: str = "10s") -> dict[str, Any]:
    return {
        "poll_interval": poll_interval,
        "poll_timeout": "60s",
        "clusters": [{"name": "load", "kafka": {"bootstrap.servers": bootstrap}}],
    }


@contextlib.contextmanager
def _bootstrap(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from localkafka import KafkaBroker

    with KafkaBroker(heap="1g") as broker:
        yield broker.bootstrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=50, help="per topic")
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--duration", default="60s")
    parser.add_argument(
        "--interval",
        default="0s",
        help="time between one scraper's scrapes; 0 (default): back to back, the worst case",
    )
    parser.add_argument("--poll-interval", default="10s")
    parser.add_argument("--bootstrap", help="an existing broker; default: start one")
    parser.add_argument("--json", help="write the summary to this file")
    args = parser.parse_args(argv)
    duration = parse_duration(args.duration, "--duration")
    pairs = args.groups * args.topics * args.partitions
    with _bootstrap(args.bootstrap) as bootstrap:
        started = time.monotonic()
        build_cluster(bootstrap, args.groups, args.topics, args.partitions)
        print(
            f"cluster of {pairs} group-partition pairs built in {time.monotonic() - started:.0f}s"
        )
        with exporter(exporter_config(bootstrap, args.poll_interval)) as running:
            wait_for(lambda: pairs_tracked(running) >= pairs, 300, f"{pairs} pairs tracked")
            exposition = running.metrics_text()
            before = vitals(running.pid)
            interval = (
                0.0 if args.interval in ("0", "0s") else parse_duration(args.interval, "--interval")
            )
            result = run_load(running.port, args.scrapers, duration, interval)
            after = vitals(running.pid)
            polls = [
                line
                for line in series_lines(running.metrics_text())
                if line.startswith(
                    ("lag_exporter_poll_duration_seconds", "lag_exporter_polls_total")
                )
            ]
            alive = running.process.poll() is None
    summary = result.summary() | {
        "interval_s": interval,
        "group_partition_pairs": pairs,
        "series": len(series_lines(exposition)),
        "exposition_bytes": len(exposition.encode()),
        "exporter_rss_mib_before_after": [
            round(before.rss_kib / 1024, 1),
            round(after.rss_kib / 1024, 1),
        ],
        "exporter_threads_before_after": [before.threads, after.threads],
        "exporter_alive": alive,
        "poll_metrics": polls,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary | {"latencies_ms": [x * 1000 for x in result.latencies]}, out)
    return 0 if result.errors == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
