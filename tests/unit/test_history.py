import json
import logging
from pathlib import Path

import pytest

from lag_exporter import history as store
from lag_exporter.history import CommitTrack, EndHistory, History
from lag_exporter.status import Status, StatusRules, partition_status
from lag_exporter.view import Derivation

from .factories import group, member, poll, view_of

T0 = 1_700_000_000.0


def test_flat_runs_keep_their_first_and_last_point() -> None:
    h = EndHistory(size=10)
    for i in range(100):
        h.add(T0 + i, 42)
    assert list(h.ends) == [42, 42] and list(h.times) == [T0, T0 + 99]


def test_history_is_bounded() -> None:
    h = EndHistory(size=5)
    for i in range(100):
        h.add(T0 + i, i)
    assert list(h.ends) == [95, 96, 97, 98, 99]


def test_offsets_going_backwards_restart_the_history() -> None:
    h = EndHistory(size=10)
    for i in range(5):
        h.add(T0 + i, 1000 + i)
    assert not h.add(T0 + 5, 3)
    assert list(h.ends) == [3]


def observe(track: CommitTrack, t: float, committed: int, lag: int) -> None:
    track.add(t, committed, lag, window=600.0, max_samples=12)


def test_an_idle_pair_keeps_two_points_however_long_it_is_idle() -> None:
    track = CommitTrack(T0, 100)
    for i in range(720):  # an hour, polled every 5 s
        observe(track, T0 + 5 * i, 100, 0)
    assert len(track.samples) == 6
    # The run is cut at the window's edge, not dropped: it still spans the window.
    assert list(track.samples) == [T0 + 3595 - 600, 100, 0, T0 + 3595, 100, 0]


def test_rate_after_a_flat_run_is_over_the_rate_window_not_the_whole_run() -> None:
    track = CommitTrack(T0, 100)
    for i in range(240):  # 20 minutes at offset 100
        observe(track, T0 + 5 * i, 100, 0)
    observe(track, T0 + 1200, 400, 0)  # then 300 messages committed
    assert track.rate(300.0) == pytest.approx(300 / 300)
    assert track.rate(600.0) == pytest.approx(300 / 600)


def test_growing_lag_after_a_flat_run_is_warn() -> None:
    # Nothing produced or consumed for 20 minutes at lag 50, then the consumer
    # commits but falls behind for 5 minutes: lag grew over the whole window.
    rules = StatusRules(allowed_lag=2, window=600, stop_after=120, stop_after_max=900)
    track = CommitTrack(T0, 100)
    for i in range(240):
        observe(track, T0 + 5 * i, 100, 50)
    for i in range(1, 61):
        observe(track, T0 + 1200 + 5 * i, 100 + 10 * i, 50 + i)
    status = partition_status(
        track.samples, track.changes or (), track.still_since, True, rules, track.rewound_at
    )
    assert status == Status.WARN


def derived_view(polls: list[dict], derive: Derivation):  # type: ignore[no-untyped-def]
    view = None
    for p in polls:
        view = view_of(poll(**p), view, derive=derive)
    return view


def test_lag_seconds_status_and_rates_from_successive_polls() -> None:
    # Rates over the last 30 s: the group has committed nothing in that time.
    derive = Derivation(History(size=50, window=60), rate_window=30)
    view = None
    # The producer writes 10 messages/s; the group stopped at offset 100 (t=T0+10).
    for i in range(0, 61, 5):
        t = T0 + i
        p = poll(
            t,
            topics={"t": 1},
            ends={("t", 0): (0, 10 * i)},
            groups=[group("g", state="Empty")],
            committed={"g": {("t", 0): min(100, 10 * i)}},
        )
        view = view_of(p, view, derive=derive)
    assert view is not None
    row = view.groups["g"].partitions[0]
    assert row.lag == 500
    # Offset 100 was the log-end at T0+10: 50 s ago.
    assert row.lag_seconds == pytest.approx(50.0)
    assert not row.lag_seconds_lower_bound
    topic = view.topics["t"]
    assert topic.production_rate == pytest.approx(10.0)
    rates = view.groups["g"].topic_rates["t"]
    assert rates.consumption_rate == pytest.approx(0.0)
    assert rates.catchup_seconds is None  # not catching up
    assert view.groups["g"].max_lag_seconds == pytest.approx(50.0)


def test_stopped_group_becomes_stop_and_caught_up_one_is_ok() -> None:
    from lag_exporter.status import StatusRules

    derive = Derivation(History(size=50), StatusRules(stop_after=20, stop_after_max=60))
    view = None
    c = member("c", ("t", 1))
    for i in range(0, 41, 5):
        t = T0 + i
        p = poll(
            t,
            topics={"t": 2},
            ends={("t", 0): (0, 100 + i), ("t", 1): (0, 100 + i)},
            groups=[group("g", c)],
            committed={"g": {("t", 0): 100, ("t", 1): 100 + i}},
        )
        view = view_of(p, view, derive=derive)
    assert view is not None
    rows = {r.partition: r for r in view.groups["g"].partitions}
    assert rows[0].status == Status.STOP  # nobody owns it and it has not moved for 40 s
    assert rows[1].status == Status.OK and rows[1].lag_seconds == 0.0
    assert view.groups["g"].status == Status.ERR


def test_catch_up_time_when_consuming_faster_than_producing() -> None:
    derive = Derivation(History(size=50), rate_window=300)
    view = None
    for i in range(0, 31, 5):
        t = T0 + i
        # Production 2/s, consumption 6/s, lag shrinking from 200.
        p = poll(
            t,
            topics={"t": 1},
            ends={("t", 0): (0, 1000 + 2 * i)},
            groups=[group("g")],
            committed={"g": {("t", 0): 800 + 6 * i}},
        )
        view = view_of(p, view, derive=derive)
    assert view is not None
    rates = view.groups["g"].topic_rates["t"]
    assert rates.consumption_rate == pytest.approx(6.0)
    lag = view.groups["g"].partitions[0].lag
    assert rates.catchup_seconds == pytest.approx(lag / 4.0)


def test_histories_of_vanished_partitions_and_groups_are_dropped() -> None:
    derive = Derivation(History(size=50))
    first = view_of(
        poll(
            T0,
            topics={"a": 1, "b": 1},
            ends={("a", 0): (0, 5), ("b", 0): (0, 5)},
            groups=[group("g")],
            committed={"g": {("a", 0): 1}},
        ),
        derive=derive,
    )
    assert set(derive.history.ends) == {("a", 0), ("b", 0)}
    assert set(derive.history.commits) == {("g", ("a", 0))}
    view_of(poll(T0 + 5, topics={"a": 1}, ends={("a", 0): (0, 6)}), first, derive=derive)
    assert set(derive.history.ends) == {("a", 0)}
    assert derive.history.commits == {}


def test_a_group_carried_through_a_failed_poll_keeps_its_history() -> None:
    derive = Derivation(History(size=50))
    view = None
    for i in range(3):
        view = view_of(
            poll(
                T0 + 5 * i,
                topics={"a": 1},
                ends={("a", 0): (0, 100 + 10 * i)},
                groups=[group("g"), group("h")],
                committed={"g": {("a", 0): 50 + 5 * i}, "h": {("a", 0): 7}},
            ),
            view,
            derive=derive,
        )
    before = derive.history.commits[("g", ("a", 0))]
    samples = list(before.samples)
    # g's offsets cannot be read: its rows are carried stale, its track stays.
    view = view_of(
        poll(
            T0 + 15,
            topics={"a": 1},
            ends={("a", 0): (0, 130)},
            groups=[group("g"), group("h")],
            committed={"h": {("a", 0): 7}},
            failed_groups={"g"},
        ),
        view,
        derive=derive,
    )
    assert view.groups["g"].stale
    assert derive.history.commits[("g", ("a", 0))] is before
    assert list(before.samples) == samples  # not touched by the failed poll
    assert set(derive.history.commits) == {("g", ("a", 0)), ("h", ("a", 0))}


def test_history_file_round_trip(tmp_path: Path) -> None:
    h = History(size=10)
    h.cluster_id = "abc"
    for i in range(5):
        h.add_end(("t", 0), T0 + i, i * 3)
    path = store.state_path(tmp_path, "prod/eu")
    store.save(h, "prod/eu", path)
    restored = History(size=10)
    assert store.load(restored, "prod/eu", path)
    assert list(restored.ends[("t", 0)].ends) == [0, 3, 6, 9, 12]
    assert restored.cluster_id == "abc"


def test_corrupt_or_foreign_history_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history-a.json"
    path.write_text("{not json")
    caplog.set_level(logging.WARNING)
    assert not store.load(History(), "a", path)
    assert "ignoring history file" in caplog.text
    h = History()
    h.add_end(("t", 0), T0, 1)
    store.save(h, "other", path)
    assert json.loads(path.read_text())["cluster"] == "other"
    fresh = History()
    assert not store.load(fresh, "a", path)
    assert fresh.ends == {}
    assert not store.load(History(), "a", tmp_path / "missing.json")
