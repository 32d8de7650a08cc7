"""Busy meters: commit progress counted only while a consumer has a backlog."""

import pytest

from lag_exporter.history import BusyMeter, History

T0 = 1_700_000_000.0


def busy_rate(meter: BusyMeter, now: float) -> float:
    seconds, messages = meter.totals(now, 3600)
    return messages / seconds


def test_a_consumer_that_keeps_up_is_never_busy_however_late_it_commits() -> None:
    # 20 msg/s produced, consumed at once, committed every 5 s, polled every second:
    # between commits the lag reaches 100, far above the allowed 2.
    meter = BusyMeter()
    for i in range(120):
        t = T0 + i
        committed = 20 * (i - i % 5)
        meter.observe(t, committed, 20 * i, allowed_lag=2, window=3600)
    assert meter.totals(T0 + 120, 3600) == (0.0, 0.0)


def test_a_saturated_consumer_is_measured_at_its_own_rate() -> None:
    # 30 msg/s produced, 10 msg/s consumed, committed every 3 s, polled every 2 s.
    meter = BusyMeter()
    for i in range(0, 120, 2):
        t = T0 + i
        meter.observe(t, 10 * (i - i % 3), 30 * i + 500, allowed_lag=2, window=3600)
    assert busy_rate(meter, T0 + 118) == pytest.approx(10.0, rel=0.05)


def test_a_stopped_consumer_does_not_drag_its_capacity_to_zero() -> None:
    meter = BusyMeter()
    for i in range(60):
        meter.observe(T0 + i, 1000 + 10 * i, 5000 + 30 * i, allowed_lag=2, window=3600)
    before = busy_rate(meter, T0 + 59)
    for i in range(60, 600):  # stopped for nine minutes
        meter.observe(T0 + i, 1590, 5000 + 30 * i, allowed_lag=2, window=3600)
    assert busy_rate(meter, T0 + 599) == pytest.approx(before, rel=0.05)


def test_the_first_committed_offset_and_rewinds_start_no_span() -> None:
    meter = BusyMeter()
    meter.observe(T0, 0, 10_000, allowed_lag=2, window=3600)  # an old commit, first seen
    meter.observe(T0 + 600, 100, 10_000, allowed_lag=2, window=3600)  # first change
    assert meter.totals(T0 + 600, 3600) == (0.0, 0.0)
    meter.observe(T0 + 601, 110, 10_000, allowed_lag=2, window=3600)
    meter.observe(T0 + 602, 50, 10_000, allowed_lag=2, window=3600)  # rewind
    meter.observe(T0 + 603, 60, 10_000, allowed_lag=2, window=3600)
    seconds, messages = meter.totals(T0 + 603, 3600)
    assert (seconds, messages) == (2.0, 20.0)


def test_busy_spans_older_than_the_window_are_forgotten() -> None:
    meter = BusyMeter()
    for i in range(0, 4000, 10):
        meter.observe(T0 + i, 10 * i, 10 * i + 10_000, allowed_lag=2, window=600, buckets=12)
    seconds, _ = meter.totals(T0 + 3990, 600)
    assert 550 <= seconds <= 650
    assert meter.buckets is not None and len(meter.buckets) <= 3 * 13  # (time, busy, count)


def test_member_meters_are_kept_only_for_what_the_last_poll_saw() -> None:
    h = History()
    a = h.member(("g", "t", "m1", (0, 1)))
    assert h.member(("g", "t", "m1", (0, 1))) is a
    h.member(("g", "t", "m2", (2,)))
    h.retain_members([("g", "t", "m2", (2,))])
    assert list(h.members) == [("g", "t", "m2", (2,))]
