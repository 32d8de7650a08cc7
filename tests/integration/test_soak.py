"""Soak, short form of `python -m benchmarks.soak` (30 minutes in benchmarks/RELIABILITY.md):
60 s of topics and groups created and deleted every 1.2 s while the exporter polls every second."""

from __future__ import annotations

import statistics

from benchmarks.harness import exporter, wait_for
from benchmarks.soak import Sample, exporter_config, polls_total, run_soak
from localkafka import KafkaBroker

DURATION = 60.0
CHURN = 1.2
LIVE = 10


def _median(samples: list[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


def test_churn_leaves_memory_threads_and_series_flat(broker: KafkaBroker) -> None:
    with exporter(exporter_config(broker.bootstrap)) as running:
        wait_for(lambda: polls_total(running.metrics_text()) >= 2, 60, "first polls")
        result = run_soak(
            broker.bootstrap, running, DURATION, churn_every=CHURN, sample_every=3.0, live=LIVE
        )
        assert running.process.poll() is None
        unexpected = [line for line in running.log().splitlines() if " ERROR lag_exporter" in line]

    assert not unexpected, unexpected[:5]
    assert result.leaked_series == [], result.leaked_series[:5]
    assert result.scrape_errors == 0
    assert result.deleted >= 20, result.summary()
    # Compare the first samples once LIVE topics exist (after LIVE * CHURN s)
    # with the last quarter of the run.
    ramped = LIVE * CHURN + 5
    early = [s for s in result.samples if ramped <= s.elapsed < ramped + 15]
    late = [s for s in result.samples if s.elapsed >= DURATION * 0.75]
    assert early and late, result.samples
    summary = result.summary()
    # Threads and descriptors: a scrape in flight or a socket awaiting the
    # garbage collector may be counted (+1, +4); a leak per churn step (50 of
    # them) would not hide in that.
    assert _median(late, "threads") <= _median(early, "threads") + 1, summary
    assert _median(late, "fds") <= _median(early, "fds") + 4, summary
    # Memory: the 30-minute run stays within 1 MiB after warm-up; 8 MiB here
    # leaves room for the allocator on a busy machine while a leak of the
    # per-topic state (histories, views: tens of KiB per topic, 50 topics)
    # repeated every poll would exceed it.
    assert _median(late, "rss_kib") - _median(early, "rss_kib") < 8 * 1024, summary
    # Series: as many live topics and groups, as many series (give or take
    # the partitions in the middle of their deletion).
    assert _median(late, "series") <= max(s.series for s in early) * 1.2 + 10, summary
