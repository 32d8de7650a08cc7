"""Scale benchmark: a real exporter process against synthetic clusters on a real broker.

    python -m benchmarks.scale                      # sizes 1k, 10k, 30k, 100k
    python -m benchmarks.scale --sizes 10k,200k --poll-interval 2s

For each size a fresh single-node Kafka (localkafka) gets T topics x P
partitions with a few messages each, and G groups with committed offsets on a
window of topics, written through the admin API (OffsetCommit without live
members, so no rebalances disturb the numbers). Then `python -m lag_exporter
run` polls it while this script scrapes /metrics, in three phases: normal
polling, the broker stalled (SIGSTOP: requests hang), and the broker killed.

Printed per size: poll wall time end to end (Kafka requests, lag computation,
rendering; lag_exporter_publish_duration_seconds) and its Kafka part
(lag_exporter_poll_duration_seconds), Kafka requests per poll by API, the
exporter's CPU per poll, /metrics latency p50/p99 per phase, exposition size
and the exporter's peak RSS (VmHWM). Nothing is cached between runs or sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    NotCoordinatorError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from localkafka import KafkaBroker

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "bench"


@dataclass(frozen=True, slots=True)
class Size:
    """A synthetic cluster: `groups` groups, each committed on `topics_per_group` topics."""

    name: str
    topics: int
    partitions_per_topic: int
    groups: int
    topics_per_group: int

    @property
    def partitions(self) -> int:
        return self.topics * self.partitions_per_topic

    @property
    def pairs(self) -> int:
        return self.groups * self.topics_per_group * self.partitions_per_topic


SIZES = {
    s.name: s
    for s in (
        Size("1k", topics=5, partitions_per_topic=20, groups=10, topics_per_group=5),
        Size("10k", topics=25, partitions_per_topic=20, groups=50, topics_per_group=10),
        Size("30k", topics=50, partitions_per_topic=20, groups=150, topics_per_group=10),
        Size("100k", topics=100, partitions_per_topic=20, groups=500, topics_per_group=10),
        Size("200k", topics=100, partitions_per_topic=20, groups=1000, topics_per_group=10),
    )
}


# --------------------------------------------------------------- the cluster


def _retry(call: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (
            CoordinatorNotAvailableError,
            CoordinatorLoadInProgressError,
            NotCoordinatorError,
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out: {what}") from None
            time.sleep(0.5)


def build_cluster(bootstrap: str, size: Size, seed: int) -> float:
    """Topics, messages and committed offsets for `size`; returns seconds taken."""
    started = time.monotonic()
    rng = random.Random(seed)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=120_000)
    try:
        topics = [f"bench-{i:04d}" for i in range(size.topics)]
        # Batches keep each CreateTopics well inside the controller's timeout.
        for start in range(0, len(topics), 20):
            batch = topics[start : start + 20]
            admin.create_topics(
                [NewTopic(t, size.partitions_per_topic, 1) for t in batch], timeout_ms=120_000
            )
        ends = _produce(bootstrap, topics, size.partitions_per_topic, rng)
        for g in range(size.groups):
            first = (g * size.topics_per_group) % size.topics
            window = [topics[(first + k) % size.topics] for k in range(size.topics_per_group)]
            offsets = {
                TopicPartition(t, p): OffsetAndMetadata(rng.randint(0, ends[(t, p)]), "", -1)
                for t in window
                for p in range(size.partitions_per_topic)
            }
            group = f"bench-group-{g:05d}"
            result = _retry(
                lambda group=group, offsets=offsets: admin.alter_group_offsets(group, offsets),
                f"commit for {group}",
            )
            bad = {tp: e for tp, e in result.items() if e.__name__ != "NoError"}
            if bad:
                raise RuntimeError(f"commit for {group} failed: {list(bad.items())[:3]}")
    finally:
        admin.close()
    return time.monotonic() - started


def _produce(
    bootstrap: str, topics: list[str], partitions: int, rng: random.Random
) -> dict[tuple[str, int], int]:
    """A few messages on every partition from one producer; returns the log-end offsets."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_block_ms=120_000, delivery_timeout_ms=300_000
    )
    ends: dict[tuple[str, int], int] = {}
    futures: list[Any] = []
    try:
        for topic in topics:
            for p in range(partitions):
                count = rng.randint(1, 8)
                ends[(topic, p)] = count
                futures.extend(
                    producer.send(topic, value=b"m%d" % i, partition=p) for i in range(count)
                )
        producer.flush(300)
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close()
    return ends


# --------------------------------------------------------------- the exporter


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_exporter(
    bootstrap: str, poll_interval: str, workdir: Path, extra: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    config = {
        "poll_interval": poll_interval,
        "poll_timeout": "30s",
        "listen_address": f"127.0.0.1:{port}",
        "log_level": "info",
        "clusters": [{"name": CLUSTER, "kafka": {"bootstrap.servers": bootstrap}, **extra}],
    }
    config_path = workdir / "exporter.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = workdir / "exporter.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "lag_exporter", "run", "--config", str(config_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,  # this checkout's code, not an installed copy
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    return process, port, log_path


_SAMPLE = re.compile(rb"^(lag_exporter_[a-z_]+)(?:\{([^}]*)\})? (\S+)$", re.MULTILINE)
_API = re.compile(rb'api="([^"]+)"')
_RESULT = re.compile(rb'result="([^"]+)"')
# The exporter's own series come first in the exposition (a few KB per
# cluster); only this much is decompressed, to keep the scraper's own CPU,
# which shares the machine with the exporter, small.
_HEAD_BYTES = 32 * 1024


@dataclass
class Health:
    polls: int = 0
    poll_seconds: float | None = None
    publish_seconds: float | None = None
    pairs: int = 0
    up: bool = False
    requests: dict[str, int] = field(default_factory=dict)


def parse_health(head: bytes) -> Health:
    h = Health()
    for name, labels, raw in _SAMPLE.findall(head):
        value = float(raw)
        if name == b"lag_exporter_polls_total":
            h.polls += int(value)
        elif name == b"lag_exporter_poll_duration_seconds":
            h.poll_seconds = value
        elif name == b"lag_exporter_publish_duration_seconds":
            h.publish_seconds = value
        elif name == b"lag_exporter_group_partitions_tracked":
            h.pairs = int(value)
        elif name == b"lag_exporter_cluster_up":
            h.up = value == 1
        elif name == b"lag_exporter_poll_kafka_requests":
            match = _API.search(labels)
            if match:
                h.requests[match.group(1).decode()] = int(value)
    return h


class Scraper:
    """Scrapes /metrics as Prometheus does: kept-alive connection, gzip accepted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str = "/metrics", gzip: bool = True) -> tuple[float, int, bytes]:
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        return time.perf_counter() - started, response.status, body

    def health(self, body: bytes, gzipped: bool = True) -> Health:
        head = zlib.decompressobj(wbits=31).decompress(body, _HEAD_BYTES) if gzipped else body
        return parse_health(head[: head.rfind(b"\n") + 1])

    def close(self) -> None:
        self.conn.close()


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    polls: dict[int, Health] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def scrape_phase(
    scraper: Scraper,
    name: str,
    *,
    min_scrapes: int,
    min_polls: int = 0,
    min_seconds: float = 0.0,
    gap: float = 0.02,
    timeout: float = 600.0,
) -> Phase:
    """Scrape every `gap` s until enough scrapes, polls and time have passed."""
    phase = Phase(name)
    started = time.monotonic()
    first_polls: int | None = None
    while True:
        elapsed = time.monotonic() - started
        seen = len(phase.polls) - 1 if phase.polls else 0
        if (
            len(phase.latencies) >= min_scrapes and seen >= min_polls and elapsed >= min_seconds
        ) or elapsed > timeout:
            return phase
        try:
            seconds, status, body = scraper.get()
        except (OSError, http.client.HTTPException):
            time.sleep(gap)
            continue
        if status == 200:
            phase.latencies.append(seconds)
            health = scraper.health(body)
            if first_polls is None:
                first_polls = health.polls
            phase.polls.setdefault(health.polls, health)
        time.sleep(gap)


def end_to_end(phase: Phase) -> list[float]:
    """Poll k's end-to-end time is published with poll k+1: take each poll's value once."""
    counts = sorted(phase.polls)
    return [
        s
        for c in counts[1:]
        if (s := phase.polls[c].publish_seconds) is not None and c - 1 in phase.polls
    ]


def _proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            result = check()
            if result:
                return result
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Result:
    size: str
    pairs: int
    groups: int
    partitions: int
    build_seconds: float
    publish_median: float
    publish_max: float
    publish_samples: int
    kafka_median: float
    kafka_max: float
    cpu_per_poll: float
    requests: dict[str, int]
    scrapes: dict[str, dict[str, float]]
    exposition_bytes: int
    exposition_gzip_bytes: int
    series: int
    peak_rss_bytes: int
    load_before: str
    profile: dict[str, float] = field(default_factory=dict)


def run_size(
    size: Size,
    *,
    poll_interval: str,
    scrapes: int,
    polls: int,
    stall_seconds: float,
    extra: dict[str, Any],
    seed: int,
    profile_dir: Path | None = None,
) -> Result:
    print(
        f"== {size.name}: {size.pairs} pairs, {size.groups} groups, {size.partitions} partitions",
        flush=True,
    )
    heap = "2g" if size.partitions > 500 else "1g"
    with tempfile.TemporaryDirectory(prefix="lag-bench-") as tmp, KafkaBroker(heap=heap) as broker:
        broker.start()
        build = build_cluster(broker.bootstrap, size, seed)
        print(f"   cluster built in {build:.1f}s", flush=True)
        load = Path("/proc/loadavg").read_text().split()[:3]
        process, port, log_path = start_exporter(broker.bootstrap, poll_interval, Path(tmp), extra)
        scraper = Scraper(port)
        try:
            _wait(
                lambda: scraper.health(scraper.get()[2]).pairs >= size.pairs,
                300,
                "the exporter to report every pair",
            )
            profiler = None
            profile: dict[str, float] = {}
            if profile_dir is not None:
                profile_path = profile_dir / f"exporter-{size.name}.txt"
                profiler = start_profiler(process.pid, profile_path, 20)
            cpu_start = _cpu_seconds(process.pid)
            normal = scrape_phase(scraper, "polling", min_scrapes=scrapes, min_polls=polls)
            cpu = _cpu_seconds(process.pid) - cpu_start
            if profiler is not None:
                profiler.wait()
                profile = summarize_profile(profile_path)
            _, _, text = scraper.get(gzip=False)
            _, _, gz = scraper.get(gzip=True)
            health = scraper.health(gz)

            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                stalled = scrape_phase(
                    scraper, "broker stalled", min_scrapes=50, min_seconds=stall_seconds
                )
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            _wait(lambda: scraper.health(scraper.get()[2]).up, 120, "recovery")

            broker.kill()
            down = scrape_phase(scraper, "broker down", min_scrapes=50, min_seconds=stall_seconds)
            peak = _proc_status(process.pid, "VmHWM")
        finally:
            scraper.close()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line]
        if errors:
            print("   exporter errors:\n     " + "\n     ".join(errors[:5]), flush=True)

    samples = end_to_end(normal)
    kafka = [h.poll_seconds for h in normal.polls.values() if h.poll_seconds is not None]
    seen_polls = max(1, max(normal.polls) - min(normal.polls))
    return Result(
        size=size.name,
        pairs=size.pairs,
        groups=size.groups,
        partitions=size.partitions,
        build_seconds=build,
        publish_median=statistics.median(samples) if samples else float("nan"),
        publish_max=max(samples) if samples else float("nan"),
        publish_samples=len(samples),
        kafka_median=statistics.median(kafka),
        kafka_max=max(kafka),
        cpu_per_poll=cpu / seen_polls,
        requests=health.requests,
        scrapes={
            p.name: {
                "count": len(p.latencies),
                "p50_ms": p.percentile(0.5) * 1000,
                "p99_ms": p.percentile(0.99) * 1000,
                "max_ms": max(p.latencies) * 1000 if p.latencies else 0.0,
            }
            for p in (normal, stalled, down)
        },
        exposition_bytes=len(text),
        exposition_gzip_bytes=len(gz),
        series=sum(1 for line in text.splitlines() if line and not line.startswith(b"#")),
        peak_rss_bytes=peak,
        load_before=" ".join(load),
        profile=profile,
    )


# ------------------------------------------------------------------ profile

# Where the exporter's time goes, by the function a sample is inside of
# (first match from the top of the stack down).
_PHASES = (
    ("gc / other", ""),
    ("OffsetFetch response decode (kafka-python)", "offset_fetch_response"),
    ("other kafka-python decode/encode", "<codegen"),
    ("collector (our parsing)", "lag_exporter/kafka/collector.py"),
    ("kafka-python I/O loop", "kafka/net/"),
    ("view (lag computation)", "lag_exporter/view.py"),
    ("exposition render", "lag_exporter/metrics.py"),
    ("/api/v1/groups render", "lag_exporter/api.py"),
    ("HTTP serving", "lag_exporter/server.py"),
)


def start_profiler(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy (if installed) on the exporter, GIL-holding samples only."""
    try:
        return subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--gil",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        print("   py-spy not found; no profile", flush=True)
        return None


def summarize_profile(path: Path) -> dict[str, float]:
    """Share of GIL-holding samples per phase, and the top functions by own samples."""
    phases: dict[str, int] = dict.fromkeys((name for name, _ in _PHASES), 0)
    leaves: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for name, marker in _PHASES[1:]:
            if any(marker in frame for frame in frames):
                phases[name] += count
                break
        else:
            phases[_PHASES[0][0]] += count
        leaf = frames[-1]
        leaves[leaf] = leaves.get(leaf, 0) + count
    if not total:
        return {}
    print(f"   profile ({total} GIL-holding samples), share by phase:", flush=True)
    for name, count in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"     {100 * count / total:5.1f}%  {name}")
    print("   top functions by own samples:")
    for leaf, count in sorted(leaves.items(), key=lambda kv: -kv[1])[:12]:
        print(f"     {100 * count / total:5.1f}%  {leaf}")
    return {name: count / total for name, count in phases.items()}


# ------------------------------------------------------------------- report


def table(results: list[Result]) -> str:
    def ms(x: float) -> str:
        return f"{x * 1000:.0f}"

    head = (
        "| pairs | groups | partitions | poll end-to-end median / max (ms) | Kafka part "
        "median (ms) | CPU per poll (ms) | CPU per pair (us) | Kafka requests per poll | "
        "/metrics p50 / p99 "
        "(ms), polling | p99 (ms), broker stalled | p99 (ms), broker down | exposition "
        "(MB, gzip MB) | series | peak RSS (MB) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in results:
        requests = ", ".join(f"{api} {n}" for api, n in sorted(r.requests.items()))
        total = sum(r.requests.values())
        s = r.scrapes
        rows.append(
            f"| {r.pairs:,} | {r.groups} | {r.partitions:,} | "
            f"{ms(r.publish_median)} / {ms(r.publish_max)} | {ms(r.kafka_median)} | "
            f"{ms(r.cpu_per_poll)} | {r.cpu_per_poll / r.pairs * 1e6:.1f} | {total} ({requests}) | "
            f"{s['polling']['p50_ms']:.1f} / {s['polling']['p99_ms']:.1f} | "
            f"{s['broker stalled']['p99_ms']:.1f} | {s['broker down']['p99_ms']:.1f} | "
            f"{r.exposition_bytes / 1e6:.1f} ({r.exposition_gzip_bytes / 1e6:.2f}) | "
            f"{r.series:,} | {r.peak_rss_bytes / 2**20:.0f} |"
        )
    return head + "\n".join(rows) + "\n"


def _parse_sizes(text: str) -> list[Size]:
    out = []
    for name in text.split(","):
        if name not in SIZES:
            raise SystemExit(f"--sizes: unknown size {name!r}; expected some of {', '.join(SIZES)}")
        out.append(SIZES[name])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument(
        "--sizes", default="1k,10k,30k,100k", help="comma-separated: " + ",".join(SIZES)
    )
    parser.add_argument("--poll-interval", default="1s")
    parser.add_argument("--scrapes", type=int, default=300, help="scrapes while polling (>= 200)")
    parser.add_argument("--polls", type=int, default=6, help="polls to observe while polling")
    parser.add_argument("--stall", type=float, default=10.0, help="seconds of broker stall/outage")
    parser.add_argument("--granularity", help="the clusters' granularity setting, if any")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the exporter with py-spy for 20 s while polling; raw stacks go to DIR",
    )
    args = parser.parse_args(argv)
    extra = {"granularity": args.granularity} if args.granularity else {}
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = []
    for size in _parse_sizes(args.sizes):
        result = run_size(
            size,
            poll_interval=args.poll_interval,
            scrapes=args.scrapes,
            polls=args.polls,
            stall_seconds=args.stall,
            extra=extra,
            seed=args.seed,
            profile_dir=args.profile,
        )
        results.append(result)
        print(json.dumps(asdict(result)), flush=True)
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
