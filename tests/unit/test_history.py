import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from lag_exporter import history as store
from lag_exporter.history import CommitTrack, EndHistory, History
from lag_exporter.metrics import render
from lag_exporter.model import ClusterView, Member, PartitionLag
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
    # commits 10/s of 11/s produced for 7.5 minutes: the lag rises through
    # every third of the window, by more than the teeth of 5 s commits.
    rules = StatusRules(allowed_lag=2, window=600, stop_after=120, stop_after_max=900)
    track = CommitTrack(T0, 100)
    for i in range(240):
        observe(track, T0 + 5 * i, 100, 50)
    for i in range(1, 91):
        observe(track, T0 + 1200 + 5 * i, 100 + 10 * i, 50 + i)
    status = partition_status(
        track.samples, track.changes or (), track.stuck_since, True, rules, track.rewound_at
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


def _polls_of(
    derive: Derivation,
    times: list[float],
    end: Callable[[float], int],
    committed: Callable[[float], int],
    *,
    start: Callable[[float], int] = lambda t: 0,
    members: tuple[Member, ...] = (),
    view: ClusterView | None = None,
) -> list[ClusterView]:
    out = []
    for t in times:
        view = view_of(
            poll(
                t,
                topics={"t": 1},
                ends={("t", 0): (start(t), end(t))},
                groups=[group("g", *members)],
                committed={"g": {("t", 0): committed(t)}},
            ),
            view,
            derive=derive,
        )
        out.append(view)
    return out


def _row(view: ClusterView) -> PartitionLag:
    return view.groups["g"].partitions[0]


def test_lag_within_the_allowed_lag_is_zero_seconds_however_old_the_marker() -> None:
    # A transactional producer wrote one commit marker, then nothing for an
    # hour: the group sits at lag 1 on a partition with nothing to read.
    derive = Derivation(History(size=50))
    views = _polls_of(derive, [T0 + 15 * i for i in range(240)], lambda t: 101, lambda t: 100)
    assert {_row(v).lag for v in views} == {1}
    assert {_row(v).lag_seconds for v in views} == {0.0}
    assert {_row(v).status for v in views} == {Status.OK}


def test_lag_seconds_from_a_deleted_offset_is_the_age_of_the_log_start() -> None:
    # 10 messages/s; the group stopped at offset 100 (produced at T0+10), and
    # retention then deleted everything below 500 (produced at T0+50).
    derive = Derivation(History(size=100))
    times = [T0 + 5 * i for i in range(13)]
    views = _polls_of(
        derive,
        times,
        lambda t: int(10 * (t - T0)),
        lambda t: 100,
        start=lambda t: 500 if t >= T0 + 55 else 0,
    )
    row = _row(views[-1])
    assert row.lost_to_retention == 400 and row.lag == 100
    # From the oldest message that still exists, not from the deleted one.
    assert row.lag_seconds == pytest.approx(60 - 50)
    assert not row.lag_seconds_lower_bound


def test_a_re_created_topic_resets_every_groups_track_and_is_no_rewind() -> None:
    derive = Derivation(History(size=50), StatusRules(stop_after=20, stop_after_max=60))
    c = member("c", ("t", 0))
    times = [T0 + 5 * i for i in range(20)]

    def end(t: float) -> int:
        return 1000 + int(t - T0) if t < T0 + 50 else int(t - T0 - 50)  # re-created at T0+50

    def committed(t: float) -> int:
        if t < T0 + 50:
            return 1000 + int(t - T0)
        return 1049 if t < T0 + 65 else int(t - T0 - 50)  # old offset until the reset

    views = _polls_of(derive, times, end, committed, members=(c,))
    statuses = [_row(v).status for v in views]
    assert statuses == [Status.OK] * len(times)
    assert [v.groups["g"].status for v in views] == [Status.OK] * len(times)
    # The old offset past the new log end is shown while it lasts, not hidden.
    past = [_row(v).offset_past_log_end for v in views]
    assert past[10:13] == [1049 - 0, 1049 - 5, 1049 - 10] and past[-1] == 0


def test_a_committed_offset_past_the_log_end_is_exposed() -> None:
    derive = Derivation(History(size=50))
    views = _polls_of(derive, [T0, T0 + 5], lambda t: 10, lambda t: 50)
    row = _row(views[-1])
    assert (row.lag, row.offset_past_log_end, row.status) == (0, 40, Status.OK)
    text = render([views[-1]]).text.decode()
    lines = [line for line in text.splitlines() if line.startswith("kafka_consumergroup_offset_")]
    assert len(lines) == 1 and 'consumergroup="g"' in lines[0] and 'partition="0"' in lines[0]
    assert float(lines[0].rsplit(" ", 1)[1]) == 40


def test_histories_survive_an_outage_longer_than_max_staleness() -> None:
    # A stopped group (STOP, lag seconds growing), then Kafka is unreachable
    # for 10 minutes (max_staleness 60 s): the series go, the history stays.
    derive = Derivation(History(size=100), StatusRules(stop_after=60, stop_after_max=120))
    times = [T0 + 10 * i for i in range(20)]
    views = _polls_of(derive, times, lambda t: int(t - T0) * 10, lambda t: 100)
    before = _row(views[-1])
    assert before.status == Status.STOP
    view = views[-1]
    for i in range(1, 61):
        view = view_of(poll(T0 + 190 + 10 * i, reached=False), view, derive=derive)
    assert "g" not in view.groups  # dropped after max_staleness
    assert ("g", ("t", 0)) in derive.history.commits and ("t", 0) in derive.history.ends
    back = _polls_of(derive, [T0 + 800], lambda t: int(t - T0) * 10, lambda t: 100, view=view)[-1]
    row = _row(back)
    assert row.status == Status.STOP
    # Offset 100 was produced at T0+10: 790 s ago, to one poll interval.
    assert row.lag_seconds == pytest.approx(790, abs=10)


def test_a_restart_with_state_dir_changes_no_status_and_no_lag_seconds(tmp_path: Path) -> None:
    rules = StatusRules(stop_after=60, stop_after_max=120)
    times = [T0 + 10 * i for i in range(20)]
    derive = Derivation(History(size=100), rules)
    views = _polls_of(derive, times, lambda t: int(t - T0) * 10, lambda t: 100)
    path = store.state_path(tmp_path, "c1")
    store.save(derive.history, "c1", path)
    restarted = Derivation(History(size=100), rules)
    assert store.load(restarted.history, "c1", path)
    after = _polls_of(restarted, [T0 + 200], lambda t: int(t - T0) * 10, lambda t: 100)[-1]
    same = _polls_of(derive, [T0 + 200], lambda t: int(t - T0) * 10, lambda t: 100, view=views[-1])[
        -1
    ]
    assert _row(after).status == _row(same).status == Status.STOP
    assert _row(after).lag_seconds == pytest.approx(_row(same).lag_seconds)
    assert _row(after).consumption_rate == _row(same).consumption_rate


def test_an_old_format_history_file_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "history-c1.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "cluster": "c1",
                "cluster_id": None,
                "size": 10,
                "partitions": [["t", 0, [T0, T0 + 5], [1, 2]]],
            }
        )
    )
    h = History(size=10)
    assert store.load(h, "c1", path)
    assert list(h.ends[("t", 0)].ends) == [1, 2] and h.commits == {}


def test_a_bad_commit_track_entry_leaves_nothing_half_restored(tmp_path: Path) -> None:
    h = History(size=10)
    h.add_end(("t", 0), T0, 1)
    h.track("g", ("t", 0), T0, 1, 0)
    doc = h.to_document("c1")
    doc["commits"].append(["g", "t", 1, [1.0, 2.0], None, 5, None, None, False])
    path = tmp_path / "history-c1.json"
    path.write_text(json.dumps(doc))
    fresh = History(size=10)
    assert not store.load(fresh, "c1", path)
    assert fresh.ends == {} and fresh.commits == {}


def _catchup(views: list[ClusterView]) -> list[float | None]:
    return [v.groups["g"].topic_rates["t"].catchup_seconds for v in views]


def test_no_catch_up_time_when_consumption_equals_production() -> None:
    # 20/s produced and consumed, lag constant at 300 with a sawtooth of commits:
    # the rates differ only by noise, so there is no catch-up time.
    derive = Derivation(History(size=200), rate_window=300)
    times = [T0 + 15 * i for i in range(60)]
    views = _polls_of(
        derive,
        times,
        lambda t: 10_000 + int(20 * (t - T0)),
        lambda t: 10_000 - 300 + int(20 * ((t - T0) // 7 * 7)),
    )
    assert _catchup(views[21:]) == [None] * len(views[21:])


def test_no_catch_up_time_while_lag_grows() -> None:
    derive = Derivation(History(size=200), rate_window=60)
    times = [T0 + 15 * i for i in range(30)]
    views = _polls_of(
        derive,
        times,
        lambda t: 10_000 + int(20 * (t - T0)),
        lambda t: 10_000 - 248 + int(18 * (t - T0)),
    )
    assert _catchup(views[1:]) == [None] * len(views[1:])


def test_catch_up_time_is_capped() -> None:
    # 1.2 msg/s consumed against 1 produced, lag a million: 58 days, not said.
    derive = Derivation(History(size=200), rate_window=300)
    times = [T0 + 15 * i for i in range(40)]
    views = _polls_of(
        derive,
        times,
        lambda t: 2_000_000 + int(1 * (t - T0)),
        lambda t: 1_000_000 + int(1.2 * (t - T0)),
    )
    assert views[-1].groups["g"].topic_rates["t"].consumption_rate == pytest.approx(1.2, rel=0.05)
    assert _catchup(views) == [None] * len(views)


def test_no_catch_up_time_for_a_consumer_that_keeps_up_with_rare_commits() -> None:
    # 20/s produced; the consumer reads everything but commits once a minute:
    # its lag drops by 1200 at each commit, which is its rhythm, not catching up.
    derive = Derivation(History(size=200), rate_window=300)
    times = [T0 + 5 * i for i in range(200)]
    views = _polls_of(
        derive,
        times,
        lambda t: 10_000 + int(20 * (t - T0)),
        lambda t: 10_000 + int(20 * ((t - T0) // 60 * 60)),
    )
    assert {c for c in _catchup(views) if c not in (None, 0.0)} == set()


def test_catch_up_time_of_a_consumer_working_off_a_backlog_with_rare_commits() -> None:
    # 5,000 behind, 20/s produced, 60/s consumed, committed once a minute.
    derive = Derivation(History(size=200), rate_window=300)
    times = [T0 + 5 * i for i in range(50)]
    views = _polls_of(
        derive,
        times,
        lambda t: 10_000 + int(20 * (t - T0)),
        lambda t: 5_000 + int(60 * ((t - T0) // 60 * 60)),
    )
    last = views[-1]
    lag = _row(last).lag
    catchup = last.groups["g"].topic_rates["t"].catchup_seconds
    assert lag is not None and catchup is not None
    assert catchup == pytest.approx(lag / 40, rel=0.3)
