import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lag_exporter.timelag import TimeLag, produced_at, time_lag

T = [100.0, 115.0, 130.0, 145.0]


def test_caught_up_on_an_idle_topic_is_zero_not_nan() -> None:
    flat = [50, 50, 50, 50]
    assert time_lag(50, 145.0, T, flat) == TimeLag(0.0, False)


def test_caught_up_on_a_bursty_topic_is_zero() -> None:
    bursty = [0, 0, 1000, 1000]
    assert time_lag(1000, 145.0, T, bursty) == TimeLag(0.0, False)


def test_interpolates_between_the_bracketing_polls() -> None:
    ends = [0, 100, 200, 300]
    # Offset 150 arrived halfway between t=115 (end 100) and t=130 (end 200).
    assert time_lag(150, 145.0, T, ends) == TimeLag(145.0 - 122.5, False)


def test_waiting_on_an_idle_topic_counts_from_the_last_time_it_was_still_there() -> None:
    # Log-end stayed 10 from t=100 to t=130, then message 10 arrived before t=145.
    ends = [10, 10, 10, 11]
    lag = time_lag(10, 145.0, T, ends)
    assert lag is not None and lag.seconds == 15.0 and not lag.lower_bound


def test_older_than_the_history_is_an_honest_lower_bound() -> None:
    ends = [500, 600, 700, 800]
    assert time_lag(10, 145.0, T, ends) == TimeLag(45.0, True)


def test_fewer_than_two_points_has_no_value_unless_caught_up() -> None:
    assert time_lag(5, 100.0, [100.0], [10]) is None
    assert time_lag(10, 100.0, [100.0], [10]) == TimeLag(0.0, False)
    assert time_lag(None, 100.0, T, [0, 1, 2, 3]) is None
    assert time_lag(1, 100.0, [], []) is None


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[float], list[int], int, float]:
    n = draw(st.integers(min_value=2, max_value=60))
    gaps = draw(st.lists(st.floats(0.001, 3600, allow_nan=False), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    start = draw(st.floats(0, 2e9, allow_nan=False))
    times, ends = [], []
    t, e = start, draw(st.integers(0, 10**12))
    for gap, step in zip(gaps, steps, strict=True):
        t += gap
        e += step
        times.append(t)
        ends.append(e)
    committed = draw(st.integers(0, ends[-1] + 10))
    now = times[-1] + draw(st.floats(0, 60, allow_nan=False))
    return times, ends, committed, now


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_time_lag_is_finite_non_negative_and_bracketed(
    history: tuple[list[float], list[int], int, float],
) -> None:
    times, ends, committed, now = history
    lag = time_lag(committed, now, times, ends)
    assert lag is not None
    assert math.isfinite(lag.seconds) and lag.seconds >= 0
    if committed >= ends[-1]:
        assert lag.seconds == 0
        return
    at, bound = produced_at(committed, times, ends)
    if bound:
        assert at == times[0] and committed < ends[0]
    else:
        # Within the two polls that bracket the moment the offset was produced.
        i = next(k for k, e in enumerate(ends) if e > committed)
        assert times[i - 1] <= at <= times[i]
        assert ends[i - 1] <= committed < ends[i]
    assert lag.seconds <= now - times[0] + 1e-6


# Generation is slow on a loaded machine (each history is a sorted list), and
# `assume` discards some draws: neither is a failure of the property.
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(histories(), st.integers(1, 10**6))
def test_older_commits_never_look_younger(
    history: tuple[list[float], list[int], int, float], back: int
) -> None:
    times, ends, committed, now = history
    assume(committed - back >= 0)
    newer = time_lag(committed, now, times, ends)
    older = time_lag(committed - back, now, times, ends)
    assert newer is not None and older is not None
    assert older.seconds >= newer.seconds - 1e-6
