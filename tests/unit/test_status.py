import bisect
from collections.abc import Callable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from lag_exporter.history import CommitTrack
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
    assert partition_status(flat(samples), [], stuck_since=0, owned=False, rules=RULES) == Status.OK


def test_transaction_marker_lag_within_allowed_is_ok() -> None:
    samples = [(t, 100, 1) for t in range(0, 3600, 60)]
    assert partition_status(flat(samples), [], stuck_since=0, owned=True, rules=RULES) == Status.OK


def test_slow_but_steady_committer_is_not_stop() -> None:
    # Commits every 5 minutes and always progresses; polls every 30 s.
    changes = [0.0, 300.0, 600.0, 900.0, 1200.0]
    samples = [(1200.0 + i * 30, 5000, 40) for i in range(9)]  # 4 min since last commit
    status = partition_status(flat(samples), changes, stuck_since=1200.0, owned=True, rules=RULES)
    assert status in (Status.OK, Status.WARN)
    assert stop_threshold(changes, RULES) == 900


def test_stopped_group_with_lag_becomes_stop_within_the_threshold() -> None:
    samples = [(float(t), 500, 80 + t // 10) for t in range(0, 130, 10)]
    assert (
        partition_status(flat(samples[:12]), [], stuck_since=0, owned=False, rules=RULES)
        == Status.OK
    )
    assert (
        partition_status(flat(samples), [], stuck_since=0, owned=False, rules=RULES) == Status.STOP
    )


def test_owned_but_unmoving_partition_is_stall() -> None:
    samples = [(float(t), 500, 80) for t in range(0, 130, 10)]
    assert (
        partition_status(flat(samples), [], stuck_since=0, owned=True, rules=RULES) == Status.STALL
    )


def test_rewind_when_the_committed_offset_goes_back() -> None:
    samples = [(0.0, 500, 10), (10.0, 520, 10), (20.0, 100, 430)]
    status = partition_status(
        flat(samples), [10.0, 20.0], stuck_since=20, owned=True, rules=RULES, rewound_at=20.0
    )
    assert status == Status.REWIND
    # Once the observation before the rewind has left the window, it is over.
    later = partition_status(
        flat(samples[2:]), [10.0, 20.0], stuck_since=20, owned=True, rules=RULES, rewound_at=20.0
    )
    assert later == Status.OK


def test_growing_lag_with_frequent_commits_is_warn() -> None:
    # Commits move every poll (60 s apart), but the consumer commits 10/s of the
    # 50/s produced: lag grows 40/s, beyond two teeth of 60 s of production
    # from one third of the window to the next.
    samples = [(float(t), 1000 + 10 * t, 10 + 40 * t) for t in range(0, 601, 60)]
    changes = [s[0] for s in samples]
    status = partition_status(flat(samples), changes, stuck_since=None, owned=True, rules=RULES)
    assert status == Status.WARN


def test_growth_no_larger_than_a_commit_tooth_is_not_warn() -> None:
    # Lag rises 3/s at 53/s produced, with commits seen every 60 s: a sawtooth
    # sampled slowly along its teeth (aliasing) looks the same, so it is not WARN.
    samples = [(float(t), 1000 + 50 * t, 10 + 3 * t) for t in range(0, 601, 60)]
    changes = [s[0] for s in samples]
    status = partition_status(flat(samples), changes, stuck_since=None, owned=True, rules=RULES)
    assert status == Status.OK


def test_sawtooth_whose_first_sample_is_the_lowest_is_not_warn() -> None:
    # The old rule's false alarm: the window's first sample at the bottom of a
    # tooth, every later one higher. 20 msg/s, commits every 5 s, polls 15 s.
    lags = [1, 60, 35, 82, 20, 70, 45, 5, 66, 30, 79, 15, 50]
    samples = [(15.0 * i, 1000 + 300 * i - lag, lag) for i, lag in enumerate(lags)]
    changes = [s[0] for s in samples]
    rules = StatusRules(allowed_lag=2, window=180, stop_after=120, stop_after_max=900)
    assert partition_status(flat(samples), changes, None, True, rules) == Status.OK


def test_lag_that_recovers_within_the_window_is_ok() -> None:
    lags = [50, 80, 40, 90, 120]
    samples = [(float(i * 150), 1000 + i * 100, lag) for i, lag in enumerate(lags)]
    changes = [s[0] for s in samples]
    assert (
        partition_status(flat(samples), changes, stuck_since=600, owned=True, rules=RULES)
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


# --- the rules over time, driven through CommitTrack with a fake clock -------


def _run(
    production: float,
    commit_at: Callable[[float, float], float | None],
    poll_times: Sequence[float],
    rules: StatusRules,
    owned: bool = True,
) -> list[tuple[float, Status | None, int]]:
    """Poll a simulated partition; (time, status, lag) at each poll.

    The log end grows at `production` per second from 10,000; `commit_at(t,
    committed)` returns the offset the consumer has committed by time t.
    """
    track: CommitTrack | None = None
    out = []
    for t in poll_times:
        end = 10_000 + int(production * t)
        committed = int(commit_at(t, end) or 0)
        lag = max(0, end - committed)
        if track is None:
            track = CommitTrack(t, committed)
        track.add(t, committed, lag, rules.window, 12, end, rules.allowed_lag)
        status = partition_status(
            track.samples, track.changes or (), track.stuck_since, owned, rules, track.rewound_at
        )
        out.append((t, status, lag))
    return out


def _polls(interval: float, jitter: Sequence[float], until: float) -> list[float]:
    times, t, i = [], 0.0, 0
    while t <= until:
        times.append(t)
        t += interval * (1 + jitter[i % len(jitter)]) if jitter else interval
        i += 1
    return times


RULES_10M = StatusRules(allowed_lag=2, window=600, stop_after=300, stop_after_max=1800)


def _keeping_up(production: float, every: float, delay: float, jitter: Sequence[float]):  # type: ignore[no-untyped-def]
    """A consumer that commits, every `every` s (jittered), what was produced `delay` s before."""
    commits: list[float] = []
    t, i = 0.0, 0
    while t < 4000:
        commits.append(t)
        t += every * (1 + jitter[i % len(jitter)]) if jitter else every
        i += 1

    def committed(now: float, end: int) -> float:
        k = bisect.bisect_right(commits, now) - 1
        last = commits[max(k, 0)]
        return 10_000 + int(production * max(0.0, last - delay))

    return committed


def test_aliased_sawtooth_is_never_warn() -> None:
    # Auto-commit every 5.05 s, polls every 15 s: each poll lands 0.15 s later
    # on the tooth, so the samples climb the tooth slowly across the window.
    commit = _keeping_up(20.0, 5.05, 0.0, ())
    seen = _run(20.0, commit, _polls(15.0, (), 2400), RULES_10M)
    lags = [lag for _, _, lag in seen]
    assert max(lags) >= 80 and min(lags) <= 5  # the sawtooth is there
    assert {s for _, s, _ in seen} == {Status.OK}


@settings(max_examples=300, deadline=None)
@given(
    production=st.floats(0.2, 500.0),
    every=st.floats(0.5, 120.0),
    delay=st.floats(0.0, 5.0),
    poll=st.floats(1.0, 60.0),
    commit_jitter=st.lists(st.floats(-0.2, 0.2), max_size=7),
    poll_jitter=st.lists(st.floats(-0.1, 0.1), max_size=5),
)
def test_a_sawtooth_around_a_constant_mean_is_never_warn(
    production: float,
    every: float,
    delay: float,
    poll: float,
    commit_jitter: list[float],
    poll_jitter: list[float],
) -> None:
    commit = _keeping_up(production, every, delay, commit_jitter)
    seen = _run(production, commit, _polls(poll, poll_jitter, 3 * RULES_10M.window), RULES_10M)
    bad = [(t, s, lag) for t, s, lag in seen if s not in (Status.OK, None)]
    assert not bad, bad[:3]


@settings(max_examples=300, deadline=None)
@given(
    production=st.floats(1.0, 500.0),
    share=st.floats(0.05, 0.5),
    every=st.floats(0.5, 25.0),
    poll=st.floats(1.0, 15.0),
    backlog=st.integers(0, 5000),
)
def test_a_monotone_lag_increase_is_warn_within_the_window(
    production: float, share: float, every: float, poll: float, backlog: int
) -> None:
    # A consumer taking in at most half of what is produced, its commits seen
    # at least every window/15 (the bound the README states).
    consumption = production * share
    start = 10_000 - backlog

    def committed(now: float, end: int) -> float:
        last = every * (now // every)
        return start + consumption * last

    seen = _run(production, committed, _polls(poll, (), 2 * RULES_10M.window), RULES_10M)
    assert seen[-1][2] - seen[0][2] > RULES_10M.allowed_lag
    warned = [t for t, s, _ in seen if s == Status.WARN]
    assert warned and warned[0] <= RULES_10M.window, [(t, s) for t, s, _ in seen][::10]
    assert not [t for t, s, _ in seen if s not in (Status.OK, Status.WARN)]


def test_the_stop_clock_starts_when_lag_appears_not_at_the_last_commit() -> None:
    # Idle for an hour at lag 0 (nothing to commit), then a burst of 200 that
    # the consumer works through within a minute: never STOP or STALL.
    def committed(now: float, end: int) -> float:
        if now < 3600:
            return 10_000
        return min(10_200, 10_000 + int((now - 3600) * 4))

    track = CommitTrack(0.0, 10_000)
    statuses = []
    for t in range(0, 3700, 5):
        end = 10_000 if t < 3600 else 10_200
        c = int(committed(t, end))
        track.add(float(t), c, end - c, 600, 12, end, 2)
        statuses.append(
            partition_status(track.samples, track.changes or (), track.stuck_since, True, RULES)
        )
    assert set(statuses) == {Status.OK}


def test_a_consumer_that_stops_with_lag_is_stall_at_the_threshold() -> None:
    track = CommitTrack(0.0, 10_000)
    first_stall = None
    for t in range(0, 600, 5):
        end = 10_000 + 2 * t  # produced; the consumer committed its last at t=0
        track.add(float(t), 10_000, end - 10_000, 600, 12, end, 2)
        s = partition_status(track.samples, track.changes or (), track.stuck_since, True, RULES)
        if s == Status.STALL and first_stall is None:
            first_stall = t
    # Lag above 2 from t=5 on, after the poll at t=0 saw it caught up: the
    # clock starts at that poll; stop_after is 120 s.
    assert first_stall == 120


def test_a_move_back_from_past_the_log_end_is_not_a_rewind() -> None:
    # The topic was re-created: log end 30, the group's old offset 500 is past
    # it; the consumer then resets to the new topic's start.
    track = CommitTrack(0.0, 500)
    track.add(0.0, 500, 0, 600, 12, 30, 2)
    track.add(15.0, 0, 45, 600, 12, 45, 2)
    track.add(30.0, 60, 0, 600, 12, 60, 2)
    assert track.rewound_at is None
    assert partition_status(track.samples, track.changes or (), None, True, RULES) == Status.OK
    # A real rewind, from a position that still exists, is one.
    track.add(45.0, 10, 60, 600, 12, 70, 2)
    assert track.rewound_at == 45.0


@settings(max_examples=200, deadline=None)
@given(
    idle=st.floats(0.0, 7200.0),
    burst=st.integers(3, 10_000),
    work=st.floats(1.0, 230.0),
    poll=st.floats(1.0, 30.0),
)
def test_a_burst_after_any_idle_time_is_never_stop_while_worked_off_in_time(
    idle: float, burst: int, work: float, poll: float
) -> None:
    # Nothing to consume (lag 0) for `idle` seconds, then `burst` messages that
    # the consumer works off in `work` seconds, committing only at the end: the
    # stop clock starts at the burst (at the last poll before it), so with work
    # + two polls below stop_after there is never STOP or STALL, however long
    # the idle time was.
    rules = RULES_10M
    track = CommitTrack(0.0, 10_000)
    statuses = []
    t = 0.0
    while t <= idle + work + 3 * poll:
        end = 10_000 if t < idle else 10_000 + burst
        committed = 10_000 if t < idle + work else 10_000 + burst
        track.add(t, committed, end - committed, rules.window, 12, end, rules.allowed_lag)
        statuses.append(
            partition_status(track.samples, track.changes or (), track.stuck_since, True, rules)
        )
        t += poll
    assert set(statuses) <= {Status.OK}, statuses


def test_after_a_gap_in_observations_the_clock_starts_at_the_first_sight() -> None:
    # Caught up at t=0, then nothing observed for 10 minutes (Kafka unreachable),
    # then lag without a commit: when the lag appeared is unknown, so the clock
    # starts now, not at t=0 (a burst may have come a second before).
    track = CommitTrack(0.0, 10_000)
    track.add(0.0, 10_000, 0, 600, 12, 10_000, 2)
    track.add(600.0, 10_000, 50, 600, 12, 10_050, 2)
    assert track.stuck_since == 600.0
    assert partition_status(track.samples, [], track.stuck_since, True, RULES) == Status.OK
