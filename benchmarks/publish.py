"""The publish path alone, in process: a synthetic poll -> view -> exposition and JSON.

    python -m benchmarks.publish --pairs 100000
    python -m benchmarks.publish --pairs 100000 --profile   # under pyinstrument, if installed

No Kafka: the poll result has the same shape as benchmarks.scale's clusters
(groups x 10 topics x 20 partitions), so view building and rendering can be
timed and profiled apart from the network and kafka-python's decoding. The
view is derived as the daemon derives it (history, lag seconds, status,
rates, partitioning insight, with a default cluster's settings), and
between rounds, 15 s apart, a tenth of the partitions get new messages and
a tenth of the group partitions new commits (`--every`), so the history is
not flat. 48 rounds cover the 10-minute status window, after which the
histories stop growing: the memory figures of a long-running exporter.
"""

from __future__ import annotations

import argparse
import random
import time
import zlib
from pathlib import Path
from typing import Any

from lag_exporter.api import render_groups
from lag_exporter.config import ClusterConfig, NameFilter
from lag_exporter.daemon import collection_deferred, return_large_blocks_to_the_system
from lag_exporter.health import next_health
from lag_exporter.metrics import render
from lag_exporter.model import ClusterView, GroupDescription, PartitionOffsets, PollResult
from lag_exporter.view import Derivation, build_view

PARTITIONS_PER_TOPIC = 20
TOPICS_PER_GROUP = 10


def synthetic_poll(
    pairs: int, started_at: float, seed: int = 7, moved: int = 0, every: int = 10
) -> PollResult:
    """The same cluster for a seed; `moved` rounds of traffic later when moved > 0,
    on one partition and group partition in `every`."""
    rng = random.Random(seed)
    groups = max(1, pairs // (PARTITIONS_PER_TOPIC * TOPICS_PER_GROUP))
    topics = max(TOPICS_PER_GROUP, min(100, groups // 5 * 2 or TOPICS_PER_GROUP))
    names = [f"bench-{i:04d}" for i in range(topics)]
    ends = {
        (t, p): PartitionOffsets(0, rng.randint(1, 8) + _traffic(t, p, moved, every), started_at)
        for t in names
        for p in range(PARTITIONS_PER_TOPIC)
    }
    committed: dict[str, dict[tuple[str, int], int]] = {}
    descriptions: dict[str, GroupDescription] = {}
    for g in range(groups):
        group_id = f"bench-group-{g:05d}"
        first = (g * TOPICS_PER_GROUP) % topics
        window = [names[(first + k) % topics] for k in range(TOPICS_PER_GROUP)]
        committed[group_id] = {
            (t, p): min(
                ends[(t, p)].log_end or 0,
                rng.randint(0, 8) + _traffic(group_id + t, p, moved, every),
            )
            for t in window
            for p in range(PARTITIONS_PER_TOPIC)
        }
        descriptions[group_id] = GroupDescription(group_id, "Empty", "consumer", "", 1, ())
    return PollResult(
        cluster="bench",
        started_at=started_at,
        duration=0.3,
        reached=True,
        brokers=1,
        topics=dict.fromkeys(names, PARTITIONS_PER_TOPIC),
        partition_offsets=ends,
        groups=descriptions,
        committed=committed,
        failed_groups=frozenset(),
        failed_topics=frozenset(),
        topics_complete=True,
        groups_complete=True,
        errors=(),
        requests={"Metadata": 1, "ListGroups": 1, "OffsetFetch": 1, "ListOffsets": 2},
    )


def _traffic(key: str, partition: int, rounds: int, every: int) -> int:
    """Messages added over `rounds`: one key in `every` moves, 5 per round."""
    return 5 * rounds if zlib.crc32(f"{key}-{partition}".encode()) % every == 0 else 0


def publish(
    poll: PollResult, previous: ClusterView | None, derive: Derivation, json: bool = True
) -> dict[str, Any]:
    """What ClusterPoller.publish does, step by step, timed; with `json`, also
    what the first /api/v1/groups request after it does."""
    timings: dict[str, Any] = {}
    t0 = time.perf_counter()
    health = next_health(previous.health if previous else None, poll)
    view, _ = build_view(
        poll,
        previous,
        labels={},
        topic_filter=NameFilter(),
        max_staleness=60.0,
        health=health,
        derive=derive,
    )
    t1 = time.perf_counter()
    exposition = render((view,))
    t2 = time.perf_counter()
    groups_json = render_groups((view,)) if json else b""
    t3 = time.perf_counter()
    timings.update(
        view=t1 - t0,
        render=t2 - t1,
        json=t3 - t2,
        total=t2 - t0,  # what a poll pays; the JSON is made when first requested
        exposition_bytes=exposition.size,
        json_bytes=len(groups_json),
        the_view=view,
    )
    return timings


def _status_mb(key: str) -> int:
    """A /proc/self/status memory figure (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return -1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish", description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6, help="polls, 15 s apart")
    parser.add_argument(
        "--every",
        type=int,
        default=10,
        help="one partition (and group partition) in EVERY gets traffic: 1 moves them all",
    )
    parser.add_argument(
        "--no-json", action="store_true", help="leave out the /api/v1/groups document"
    )
    parser.add_argument("--profile", action="store_true", help="profile with pyinstrument")
    args = parser.parse_args(argv)

    return_large_blocks_to_the_system()  # as the daemon starts
    previous: ClusterView | None = None
    derive = Derivation.for_cluster(ClusterConfig(name="bench", kafka={}))
    profiler: Any = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
    for i in range(args.rounds):
        poll = synthetic_poll(args.pairs, 1_700_000_000.0 + 15 * i, moved=i, every=args.every)
        if profiler is not None and i == args.rounds - 1:
            profiler.start()
        with collection_deferred():  # as the daemon polls
            result = publish(poll, previous, derive, json=not args.no_json)
        if profiler is not None and i == args.rounds - 1:
            profiler.stop()
        previous = result.pop("the_view")
        print(
            f"pairs={args.pairs} view={result['view']:.3f}s render={result['render']:.3f}s "
            f"total={result['total']:.3f}s json (on request)={result['json']:.3f}s "
            f"exposition={result['exposition_bytes'] / 1e6:.1f}MB "
            f"json={result['json_bytes'] / 1e6:.1f}MB "
            f"rss={_status_mb('VmRSS')}MB peak={_status_mb('VmHWM')}MB"
        )
    if profiler is not None:
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
