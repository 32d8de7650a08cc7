"""The web UI at scale, in process: what a poll pays for it and what a page view costs.

    python -m benchmarks.ui --pairs 100000

Builds views from the synthetic polls of benchmarks.publish (groups x 10
topics x 20 partitions, traffic on one partition in ten, 15 s apart), then
after the last round times what ClusterPoller.publish adds for the UI
(cluster_ui: summaries, reasons, trends) and what the HTTP server does per
request: the overview (first page, and a search), its JSON, a group page;
rendered alone, then through the real HTTP server.
Prints sizes in KB and times in ms, wall and CPU (the median of `--repeat`
requests).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
from collections.abc import Callable

from benchmarks.publish import synthetic_poll
from lag_exporter.config import ClusterConfig, NameFilter
from lag_exporter.daemon import Published
from lag_exporter.health import next_health
from lag_exporter.metrics import render
from lag_exporter.model import ClusterView
from lag_exporter.server import HttpServer
from lag_exporter.ui.documents import Overview
from lag_exporter.ui.routes import answer
from lag_exporter.ui.snapshot import cluster_ui
from lag_exporter.view import Derivation, build_view


def _timed(make: Callable[[], bytes], repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU milliseconds of `make`, and the size of what it made.

    CPU time too: on a machine shared with other work, wall time says more
    about the neighbours than about the code.
    """
    wall, cpu = [], []
    size = 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        size = len(make())
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui", description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=12, help="polls, 15 s apart")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    derive = Derivation.for_cluster(ClusterConfig(name="bench", kafka={}))
    previous: ClusterView | None = None
    for i in range(args.rounds):
        poll = synthetic_poll(args.pairs, 1_700_000_000.0 + 15 * i, moved=i)
        view, _ = build_view(
            poll,
            previous,
            labels={},
            topic_filter=NameFilter(),
            max_staleness=60.0,
            health=next_health(previous.health if previous else None, poll),
            derive=derive,
        )
        previous = view
    assert previous is not None
    t0, c0 = time.perf_counter(), time.thread_time()
    ui = cluster_ui(previous, derive.history, poll_interval=15.0, rules=derive.status_rules)
    snapshot, snapshot_cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
    t0 = time.perf_counter()
    overview = Overview.build([ui], None)
    build = (time.perf_counter() - t0) * 1000
    with_trend = sum(1 for g in ui.groups if g.trend is not None)
    print(
        f"pairs={args.pairs} groups={len(ui.groups)} with_trend={with_trend} "
        f"poll cost: cluster_ui={snapshot:.0f}ms (cpu {snapshot_cpu:.0f}ms) "
        f"overview={build:.0f}ms"
    )
    worst = overview.groups[0]
    requests = {
        "/ (first page)": ("/", ""),
        "/?group=0042 (search)": ("/", "group=0042"),
        "/?topic=bench-0007&page=2": ("/", "topic=bench-0007&page=2"),
        "/api/v1/overview": ("/api/v1/overview", ""),
        "/group (worst group)": ("/group", f"cluster=bench&group={worst.group}"),
        "/api/v1/group (worst group)": ("/api/v1/group", f"cluster=bench&group={worst.group}"),
    }
    for label, (path, query) in requests.items():

        def make(path: str = path, query: str = query) -> bytes:
            found = answer(path, query, overview)
            assert found is not None and found.status == 200, (path, query)
            return found.body

        ms, cpu, size = _timed(make, args.repeat)
        print(f"  {label:32s} {size / 1024:8.1f} KB {ms:8.1f} ms (cpu {cpu:.1f} ms)")

    # The same through the real HTTP server, over one kept-alive connection.
    published = Published((), render(()), b"{}", ready=True, overview=overview)
    server = HttpServer("127.0.0.1", 0, lambda: published)
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for label, (path, query) in requests.items():

            def fetch(target: str = path + ("?" + query if query else "")) -> bytes:
                connection.request("GET", target)
                response = connection.getresponse()
                body = response.read()
                assert response.status == 200, (target, response.status)
                return body

            ms, _, size = _timed(fetch, args.repeat)
            print(f"  HTTP {label:27s} {size / 1024:8.1f} KB {ms:8.1f} ms")
        connection.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
