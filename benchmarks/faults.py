"""Faults: the real broker killed and restarted again and again, then frozen.

Per cycle the broker JVM is frozen (SIGSTOP, so that a poll is surely waiting
on it), killed (SIGKILL) and started again on the same data. Measured: how
long until the exporter says the cluster is down, how long after the broker
is back until it reports the group's lag again, and the exporter process's
threads, descriptors, sockets and memory after each cycle. Then the broker
is frozen for `--freeze` and the polls' durations and the scrapes' latency
are measured while it is.

    python -m benchmarks.faults                # 20 cycles, figures in RELIABILITY.md
    python -m benchmarks.faults --cycles 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition

from localkafka import KafkaBroker

from .harness import ExporterProcess, exporter, percentile, series_lines, vitals, wait_for
from .load import commit_offsets


def _value(running: ExporterProcess, prefix: str) -> float | None:
    for line in series_lines(running.metrics_text()):
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


def _setup(bootstrap: str) -> str:
    name = f"faults-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1)])
        for n in range(10):
            producer.send(name, b"m%d" % n, partition=0)
        producer.flush(30)
        commit_offsets(admin, name, {TopicPartition(name, 0): OffsetAndMetadata(4, "", -1)})
    finally:
        producer.close(5)
        admin.close()
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--freeze", type=float, default=15.0, help="seconds frozen at the end")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"cycles": []}
    with KafkaBroker() as broker:
        group = _setup(broker.bootstrap)
        config = {
            "poll_interval": "1s",
            "poll_timeout": "3s",
            "max_staleness": "10s",
            "clusters": [{"name": "f", "kafka": {"bootstrap.servers": broker.bootstrap}}],
        }
        lag_prefix = f'kafka_consumergroup_lag{{cluster="f",consumergroup="{group}"'
        up_prefix = 'lag_exporter_cluster_up{cluster="f"}'
        with exporter(config) as running:
            wait_for(lambda: _value(running, lag_prefix) == 6, 60, "lag")
            first = vitals(running.pid)
            print("cycle detect_s recover_s rss_mib threads fds sockets", flush=True)
            for cycle in range(1, args.cycles + 1):
                assert broker.pid is not None
                os.kill(broker.pid, signal.SIGSTOP)
                time.sleep(1.5)
                killed = time.monotonic()
                broker.kill()
                wait_for(lambda: _value(running, up_prefix) == 0, 60, "down")
                detected = time.monotonic() - killed
                broker.start()
                back = time.monotonic()
                wait_for(lambda: _value(running, lag_prefix) == 6, 120, "lag again")
                recovered = time.monotonic() - back
                v = vitals(running.pid)
                row = {
                    "cycle": cycle,
                    "detect_s": round(detected, 2),
                    "recover_s": round(recovered, 2),
                    "rss_mib": round(v.rss_kib / 1024, 1),
                    "threads": v.threads,
                    "fds": v.fds,
                    "sockets": v.sockets,
                }
                out["cycles"].append(row)
                print(" ".join(str(x) for x in row.values()), flush=True)

            # Frozen broker: polls bounded by poll_timeout, scrapes unaffected.
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)
            durations: set[float] = set()
            scrape_ms: list[float] = []
            try:
                end = time.monotonic() + args.freeze
                while time.monotonic() < end:
                    started = time.monotonic()
                    with urllib.request.urlopen(running.url + "/metrics", timeout=10) as r:
                        r.read()
                    scrape_ms.append((time.monotonic() - started) * 1000)
                    d = _value(running, 'lag_exporter_poll_duration_seconds{cluster="f"}')
                    if d is not None:
                        durations.add(round(d, 3))
                    time.sleep(0.05)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            out["freeze"] = {
                "seconds": args.freeze,
                "poll_timeout_s": 3.0,
                "poll_durations_s": sorted(durations),
                "scrapes": len(scrape_ms),
                "scrape_p50_ms": round(percentile(scrape_ms, 50), 1),
                "scrape_p99_ms": round(percentile(scrape_ms, 99), 1),
                "scrape_max_ms": round(max(scrape_ms), 1),
            }
            wait_for(lambda: _value(running, lag_prefix) == 6, 120, "lag after the freeze")
            last = vitals(running.pid)
            errors = [line for line in running.log().splitlines() if " ERROR lag_exporter" in line]
    out["vitals_first_last"] = {"first": first.__dict__, "last": last.__dict__}
    out["exporter_errors_in_log"] = len(errors)
    print(json.dumps({k: v for k, v in out.items() if k != "cycles"}, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
