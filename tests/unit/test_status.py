from lag_exporter.status import (
    Status,
    StatusRules,
    group_status,
    partition_status,
    stop_threshold,
)

RULES = StatusRules(allowed_lag=2, window=600, stop_after=120, stop_after_max=900)


def flat(points: list[tuple[float, int, int]]) -> list[float]:
    """Observations as partition_status takes them: flat (time, committed, lag) triples."""
    return [float(x) for point in points for x in point]


def test_idle_topic_with_zero_lag_is_ok_not_stop() -> None:
    # Nothing produced, nothing committed for an hour: that is fine.
    samples = [(t, 100, 0) for t in range(0, 3600, 60)]
    assert partition_status(flat(samples), [], still_since=0, owned=False, rules=RULES) == Status.OK


def test_transaction_marker_lag_within_allowed_is_ok() -> None:
    samples = [(t, 100, 1) for t in range(0, 3600, 60)]
    assert partition_status(flat(samples), [], still_since=0, owned=True, rules=RULES) == Status.OK


def test_slow_but_steady_committer_is_not_stop() -> None:
    # Commits every 5 minutes and always progresses; polls every 30 s.
    changes = [0.0, 300.0, 600.0, 900.0, 1200.0]
    samples = [(1200.0 + i * 30, 5000, 40) for i in range(9)]  # 4 min since last commit
    status = partition_status(flat(samples), changes, still_since=1200.0, owned=True, rules=RULES)
    assert status in (Status.OK, Status.WARN)
    assert stop_threshold(changes, RULES) == 900


def test_stopped_group_with_lag_becomes_stop_within_the_threshold() -> None:
    samples = [(float(t), 500, 80 + t // 10) for t in range(0, 130, 10)]
    assert (
        partition_status(flat(samples[:12]), [], still_since=0, owned=False, rules=RULES)
        == Status.OK
    )
    assert (
        partition_status(flat(samples), [], still_since=0, owned=False, rules=RULES) == Status.STOP
    )


def test_owned_but_unmoving_partition_is_stall() -> None:
    samples = [(float(t), 500, 80) for t in range(0, 130, 10)]
    assert (
        partition_status(flat(samples), [], still_since=0, owned=True, rules=RULES) == Status.STALL
    )


def test_rewind_when_the_committed_offset_goes_back() -> None:
    samples = [(0.0, 500, 10), (10.0, 520, 10), (20.0, 100, 430)]
    status = partition_status(
        flat(samples), [10.0, 20.0], still_since=20, owned=True, rules=RULES, rewound_at=20.0
    )
    assert status == Status.REWIND
    # Once the observation before the rewind has left the window, it is over.
    later = partition_status(
        flat(samples[2:]), [10.0, 20.0], still_since=20, owned=True, rules=RULES, rewound_at=20.0
    )
    assert later == Status.OK


def test_growing_lag_with_frequent_commits_is_warn() -> None:
    # Commits move every poll, but the consumer falls further behind all along.
    samples = [(float(t), 1000 + 50 * t, 10 + 3 * t) for t in range(0, 601, 60)]
    changes = [s[0] for s in samples]
    status = partition_status(flat(samples), changes, still_since=600, owned=True, rules=RULES)
    assert status == Status.WARN


def test_lag_that_recovers_within_the_window_is_ok() -> None:
    lags = [50, 80, 40, 90, 120]
    samples = [(float(i * 150), 1000 + i * 100, lag) for i, lag in enumerate(lags)]
    changes = [s[0] for s in samples]
    assert (
        partition_status(flat(samples), changes, still_since=600, owned=True, rules=RULES)
        == Status.OK
    )


def test_no_samples_no_status() -> None:
    assert partition_status([], [], 0, True, RULES) is None


def test_group_status_is_the_worst_partition() -> None:
    assert group_status([Status.OK, None]) == Status.OK
    assert group_status([Status.OK, Status.WARN]) == Status.WARN
    assert group_status([Status.WARN, Status.STOP]) == Status.ERR
    assert group_status([Status.REWIND]) == Status.ERR
    assert group_status([]) == Status.OK
