"""Soak: the exporter under steady churn of topics and groups, watched for leaks.

Every `--churn` seconds a new topic is created, a few messages are written to
it and a new group commits offsets on it; once `--live` of them exist, the
oldest topic and group are deleted. The exporter polls every second, so
several thousand polls see groups and topics come and go. Every `--sample`
seconds the exporter process's resident memory, threads, file descriptors
and sockets (from /proc) and the number of series it exposes are recorded.

At the end churn stops and, once `max_staleness` has passed, no series may
name a deleted topic or group: that is what "no series leak" means here.

    python -m benchmarks.soak --duration 30m          # the figures in RELIABILITY.md
    python -m benchmarks.soak --duration 90s --json out.json

Without `--bootstrap` a local broker is started (localkafka).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from lag_exporter.config import parse_duration

from .harness import ExporterProcess, exporter, series_lines, vitals, wait_for

MAX_STALENESS = 5.0
_TOPIC_LABEL = re.compile(r'topic="([^"]*)"')
_GROUP_LABEL = re.compile(r'consumergroup="([^"]*)"')


@dataclass(frozen=True)
class Sample:
    elapsed: float
    rss_kib: int
    threads: int
    fds: int
    sockets: int
    series: int
    live_topics: int


@dataclass
class SoakResult:
    duration: float
    created: int = 0
    deleted: int = 0
    scrape_errors: int = 0
    churn_errors: int = 0
    samples: list[Sample] = field(default_factory=list)
    leaked_series: list[str] = field(default_factory=list)
    polls: float = 0.0

    def window(self, start: float, end: float) -> list[Sample]:
        """Samples with elapsed time in [start, end) as fractions of the run."""
        return [
            s
            for s in self.samples
            if start * self.duration <= s.elapsed < end * self.duration + 1e-9
        ]

    def summary(self) -> dict[str, Any]:
        """Early (after warm-up: 10-30 % of the run) against late (last 20 %) medians."""
        early = self.window(0.1, 0.3) or self.samples[:1]
        late = self.window(0.8, 1.0) or self.samples[-1:]

        def med(samples: list[Sample], attr: str) -> float:
            return float(statistics.median(getattr(s, attr) for s in samples))

        out: dict[str, Any] = {
            "duration_s": round(self.duration),
            "topics_and_groups_created": self.created,
            "topics_and_groups_deleted": self.deleted,
            "polls": self.polls,
            "scrape_errors": self.scrape_errors,
            "churn_errors": self.churn_errors,
            "leaked_series": len(self.leaked_series),
        }
        for attr in ("rss_kib", "threads", "fds", "sockets", "series"):
            out[attr] = {
                "early": med(early, attr),
                "late": med(late, attr),
                "max": max(getattr(s, attr) for s in self.samples),
                "min": min(getattr(s, attr) for s in self.samples),
            }
        return out


class Churn:
    """Creates and deletes topics and groups, keeping `live` of each."""

    def __init__(self, bootstrap: str, prefix: str, live: int) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.prefix = prefix
        self.live = live
        self.alive: deque[int] = deque()
        self.gone: set[str] = set()
        self.count = 0

    def names(self, i: int) -> tuple[str, str]:
        return f"{self.prefix}-t{i}", f"{self.prefix}-g{i}"

    def step(self) -> tuple[int, int]:
        """One create (and delete once enough exist); returns (created, deleted)."""
        i = self.count
        self.count += 1
        topic, group = self.names(i)
        self.admin.create_topics([NewTopic(topic, 2, 1)])
        for n in range(10):
            self.producer.send(topic, b"m%d" % n, partition=n % 2)
        self.producer.flush(10)
        offsets = {TopicPartition(topic, p): OffsetAndMetadata(3 + p, "", -1) for p in range(2)}
        self.alive.append(i)  # from here on it is deleted in turn, whatever happens next
        for attempt in range(20):  # a fresh broker creates its offsets topic on first use
            try:
                self.admin.alter_group_offsets(group, offsets)
                break
            except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                if attempt == 19:
                    raise
                time.sleep(0.5)
        deleted = 0
        while len(self.alive) > self.live:
            old = self.alive.popleft()
            old_topic, old_group = self.names(old)
            self.admin.delete_groups([old_group])
            self.admin.delete_topics([old_topic])
            self.gone.update((old_topic, old_group))
            deleted += 1
        return 1, deleted

    def live_names(self) -> set[str]:
        return {name for i in self.alive for name in self.names(i)}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.producer.close(5)
        with contextlib.suppress(Exception):
            self.admin.close()


def leaked(text: str, gone: set[str]) -> list[str]:
    """Series that still name a deleted topic or group."""
    out = []
    for line in series_lines(text):
        names = set(_TOPIC_LABEL.findall(line)) | set(_GROUP_LABEL.findall(line))
        if names & gone:
            out.append(line)
    return out


def polls_total(text: str) -> float:
    total = 0.0
    for line in series_lines(text):
        if line.startswith("lag_exporter_polls_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_soak(
    bootstrap: str,
    running: ExporterProcess,
    duration: float,
    churn_every: float = 2.0,
    sample_every: float = 5.0,
    live: int = 10,
    progress: bool = False,
) -> SoakResult:
    """Churn for `duration` seconds while sampling the exporter; then look for leaked series."""
    result = SoakResult(duration=duration)
    churn = Churn(bootstrap, f"soak-{uuid.uuid4().hex[:6]}", live)
    start = time.monotonic()
    next_churn = next_sample = start
    try:
        while (now := time.monotonic()) - start < duration:
            if now >= next_churn:
                next_churn += churn_every
                try:
                    created, deleted = churn.step()
                    result.created += created
                    result.deleted += deleted
                except KafkaError as exc:
                    result.churn_errors += 1
                    print(f"churn error: {exc!r}", file=sys.stderr)
            if now >= next_sample:
                next_sample += sample_every
                try:
                    text = running.metrics_text()
                except (OSError, RuntimeError):
                    result.scrape_errors += 1
                    continue
                v = vitals(running.pid)
                sample = Sample(
                    elapsed=now - start,
                    rss_kib=v.rss_kib,
                    threads=v.threads,
                    fds=v.fds,
                    sockets=v.sockets,
                    series=len(series_lines(text)),
                    live_topics=len(churn.alive),
                )
                result.samples.append(sample)
                if progress:
                    print(
                        f"{sample.elapsed:7.0f}s rss={sample.rss_kib / 1024:6.1f}MiB "
                        f"threads={sample.threads} fds={sample.fds} sockets={sample.sockets} "
                        f"series={sample.series} created={result.created}",
                        flush=True,
                    )
            time.sleep(max(0.0, min(next_churn, next_sample) - time.monotonic()))
        # Churn stops; after max_staleness and a few polls nothing deleted may remain.
        time.sleep(MAX_STALENESS + 3)
        text = running.metrics_text()
        result.leaked_series = leaked(text, churn.gone)
        result.polls = polls_total(text)
    finally:
        churn.close()
    return result


def exporter_config(bootstrap: str) -> dict[str, Any]:
    return {
        "poll_interval": "1s",
        "poll_timeout": "10s",
        "max_staleness": f"{MAX_STALENESS:g}s",
        "clusters": [{"name": "soak", "kafka": {"bootstrap.servers": bootstrap}}],
    }


@contextlib.contextmanager
def _bootstrap(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from localkafka import KafkaBroker

    with KafkaBroker() as broker:
        yield broker.bootstrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="30m", help="e.g. 90s, 30m (default 30m)")
    parser.add_argument("--churn", default="2s", help="time between creations (default 2s)")
    parser.add_argument("--sample", default="10s", help="time between samples (default 10s)")
    parser.add_argument("--live", type=int, default=10, help="topics and groups kept alive")
    parser.add_argument("--bootstrap", help="an existing broker; default: start one")
    parser.add_argument("--json", help="write the samples and the summary to this file")
    args = parser.parse_args(argv)
    duration = parse_duration(args.duration, "--duration")
    with _bootstrap(args.bootstrap) as bootstrap, exporter(exporter_config(bootstrap)) as running:
        wait_for(lambda: polls_total(running.metrics_text()) >= 2, 60, "first polls")
        result = run_soak(
            bootstrap,
            running,
            duration,
            churn_every=parse_duration(args.churn, "--churn"),
            sample_every=parse_duration(args.sample, "--sample"),
            live=args.live,
            progress=True,
        )
        errors_in_log = running.log().count("unexpected error")
    summary = result.summary() | {"unexpected_errors_in_log": errors_in_log}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"summary": summary, "samples": [asdict(s) for s in result.samples]}, out)
    return 0 if not result.leaked_series and not errors_in_log else 1


if __name__ == "__main__":
    sys.exit(main())
