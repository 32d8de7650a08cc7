"""The alert state machine on a fake clock: every time is a plain number."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lag_exporter.alerts import state_file
from lag_exporter.alerts.engine import Change, Phase, retire
from lag_exporter.alerts.measures import MEASURES, per_group
from lag_exporter.config import ConfigError
from lag_exporter.model import ErrorKind, PollError

from .alert_factories import Run, alerting, down, lag_poll, rule
from .factories import group, member, poll

T0 = 1_700_000_000.0


def changes(run: Run) -> list[str]:
    assert run.last is not None
    return [str(t.change) for t in run.last.transitions]


def test_for_boundaries_pending_until_exactly_for_then_firing_once() -> None:
    run = Run([rule(**{"for": "60s"})])
    run.step(lag_poll(T0, 150))
    assert changes(run) == ["pending"] and run.phases() == ["pending"]
    run.step(lag_poll(T0 + 59.999, 160))
    assert changes(run) == [] and run.phases() == ["pending"] and run.notifications == []
    run.step(lag_poll(T0 + 60, 170))
    assert changes(run) == ["firing"] and run.phases() == ["firing"]
    run.step(lag_poll(T0 + 75, 180))
    assert changes(run) == []
    assert run.sent() == [(T0 + 60, "hook", "firing", False)]
    (alert,) = run.state.values()
    assert alert.active_since == T0 and alert.fired_at == T0 + 60 and alert.value == 180


def test_for_zero_fires_at_first_evaluation_without_pending() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 101))
    assert changes(run) == ["firing"] and run.sent() == [(T0, "hook", "firing", False)]


def test_threshold_itself_does_not_fire_with_greater_than() -> None:
    run = Run([rule(), rule(name="at-least", op=">=")])
    run.step(lag_poll(T0, 100))
    assert {a.rule for a in run.state.values()} == {"at-least"}


def test_flapping_below_for_never_fires_and_each_episode_notifies_once() -> None:
    run = Run([rule(**{"for": "30s"})])
    for i, lag in enumerate([150, 50, 150, 50, 150, 50]):
        run.step(lag_poll(T0 + 15 * i, lag))
    assert run.notifications == []  # never true for 30 s in a row
    assert run.state == {}

    t = T0 + 100
    for lag in [150, 150, 150, 50, 150, 150, 150, 150, 50]:
        run.step(lag_poll(t, lag))
        t += 15
    # Two firing episodes: one firing and one resolved notification each.
    assert [s[2] for s in run.sent()] == ["firing", "resolved", "firing", "resolved"]
    assert not any(s[3] for s in run.sent())


def test_resolve_carries_end_time_and_last_value() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 15, 20))
    (resolved,) = [n for n in run.notifications if n.status == "resolved"]
    assert resolved.ends_at == T0 + 15 and resolved.alert.value == 20
    assert resolved.alert.fired_at == T0
    assert changes(run) == ["resolved"] and run.state == {}


def test_pending_that_turns_false_goes_inactive_silently() -> None:
    run = Run([rule(**{"for": "1m"})])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 15, 0))
    assert changes(run) == ["inactive"] and run.notifications == [] and run.state == {}


def test_repeat_interval_per_notifier_and_resolved_exactly_once() -> None:
    run = Run([rule(notifiers=["hook", "am"])])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 59, 500))
    run.step(lag_poll(T0 + 60, 500))  # am: every 60 s
    run.step(lag_poll(T0 + 3599, 500))
    run.step(lag_poll(T0 + 3600, 500))  # hook: every hour; am repeats too
    run.step(lag_poll(T0 + 3615, 0))
    run.step(lag_poll(T0 + 3630, 0))
    assert run.sent() == [
        (T0, "hook", "firing", False),
        (T0, "am", "firing", False),
        (T0 + 60, "am", "firing", True),
        (T0 + 3599, "am", "firing", True),
        (T0 + 3600, "hook", "firing", True),
        (T0 + 3615, "hook", "resolved", False),
        (T0 + 3615, "am", "resolved", False),
    ]


def test_partition_alerts_are_per_series() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500, 5, 300))
    assert sorted(a.label("partition") or "" for a in run.state.values()) == ["0", "2"]
    run.step(lag_poll(T0 + 15, 5, 5, 300))
    assert [n.alert.label("partition") for n in run.notifications if n.status == "resolved"] == [
        "0"
    ]


def test_alert_labels_annotations_and_cluster_constant_labels() -> None:
    r = rule(
        metric="lag_sum",
        severity="critical",
        labels={"team": "payments"},
        annotations={
            "summary": "{{ $labels.consumergroup }} is {{ $value }} behind on {{ $labels.topic }}",
            "description": "threshold {{ $threshold }}, env {{ $labels.env }}",
        },
    )
    run = Run([r], cluster_labels={"env": "prod"})
    run.step(lag_poll(T0, 80, 70))
    (alert,) = run.state.values()
    assert dict(alert.identity) == {"cluster": "c1", "consumergroup": "g", "topic": "t"}
    assert dict(alert.labels) == {
        "alertname": "behind",
        "severity": "critical",
        "team": "payments",
        "cluster": "c1",
        "consumergroup": "g",
        "topic": "t",
        "env": "prod",
    }
    assert dict(alert.annotations) == {
        "summary": "g is 150 behind on t",
        "description": "threshold 100, env prod",
    }


def test_max_lag_and_default_summary() -> None:
    run = Run([rule(metric="max_lag", threshold=250)])
    run.step(lag_poll(T0, 100, 300, 200))
    (alert,) = run.state.values()
    assert alert.value == 300 and dict(alert.identity) == {"cluster": "c1", "consumergroup": "g"}
    assert dict(alert.annotations)["summary"] == (
        "max_lag is 300 (threshold 250): cluster=c1 consumergroup=g"
    )


def test_selectors_exact_regex_include_exclude() -> None:
    r = rule(groups={"include": [{"regex": "orders-.*"}, "billing"], "exclude": ["orders-test"]})
    tp = ("t", 0)
    p = poll(
        T0,
        topics={"t": 1},
        ends={tp: (0, 1000)},
        groups=[group(g) for g in ("orders-eu", "orders-test", "billing", "billing2")],
        committed={g: {tp: 0} for g in ("orders-eu", "orders-test", "billing", "billing2")},
    )
    run = Run([r])
    run.step(p)
    assert sorted(a.label("consumergroup") or "" for a in run.state.values()) == [
        "billing",
        "orders-eu",
    ]


def test_deleted_topic_resolves() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    gone = poll(T0 + 15, topics={}, groups=[group("g")], committed={"g": {("t", 0): 1000}})
    run.step(gone)
    assert changes(run) == ["resolved"]
    assert run.last is not None and run.last.transitions[0].reason == "series gone"
    assert run.sent()[-1] == (T0 + 15, "hook", "resolved", False)


def test_deleted_group_resolves_when_the_listing_was_complete() -> None:
    run = Run([rule(metric="max_lag")])
    run.step(lag_poll(T0, 500))
    run.step(poll(T0 + 15, topics={"t": 1}, ends={("t", 0): (0, 1500)}))
    assert changes(run) == ["resolved"]


def test_uncommitted_partition_resolves_its_lag_alert() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    tp = ("t", 0)
    run.step(
        poll(
            T0 + 15,
            topics={"t": 1},
            ends={tp: (0, 1500)},
            groups=[group("g", member("m", tp))],
            committed={"g": {}},
        )
    )
    assert changes(run) == ["resolved"]


@pytest.mark.parametrize(
    "unseen",
    [
        pytest.param(down(T0 + 15), id="cluster-down"),
        pytest.param(
            poll(
                T0 + 15,
                topics={"t": 1},
                ends={("t", 0): (0, 1000)},
                groups=[group("g")],
                failed_groups={"g"},
                errors=(PollError(ErrorKind.OFFSET_FETCH, "coordinator loading", group="g"),),
            ),
            id="group-offsets-failed",
        ),
        pytest.param(
            poll(
                T0 + 15,
                topics={"t": 1},
                ends={("t", 0): (0, 1000)},
                groups_complete=False,
                errors=(PollError(ErrorKind.LIST_GROUPS, "broker 2 down", broker=2),),
            ),
            id="group-listing-incomplete",
        ),
        pytest.param(lag_poll(T0 + 15, None), id="end-offset-unread"),
        pytest.param(
            poll(
                T0 + 15,
                topics={},
                groups=[group("g")],
                committed={"g": {("t", 0): 1000}},
                errors=(PollError(ErrorKind.METADATA, "timeout", topic="t"),),
            ),
            id="topic-metadata-failed",
        ),
    ],
)
def test_what_a_poll_could_not_see_keeps_its_state(unseen: object) -> None:
    run = Run([rule()], repeat={"hook": 3600.0})
    run.step(lag_poll(T0, 500))
    before = dict(run.state)
    run.step(unseen)  # type: ignore[arg-type]
    assert changes(run) == [] and run.last is not None and run.last.notifications == []
    assert {k: a.phase for k, a in run.state.items()} == {k: a.phase for k, a in before.items()}
    # Seen again and below the threshold: now it resolves, once.
    run.step(lag_poll(T0 + 30, 0))
    assert changes(run) == ["resolved"]
    assert [s[2] for s in run.sent()] == ["firing", "resolved"]


def test_group_aged_out_while_listing_incomplete_is_not_resolved() -> None:
    """Past max_staleness the view drops a group it cannot see, but an error that
    could hide anything (ListGroups failing on a broker) means it may still exist."""
    run = Run([rule(metric="max_lag")])
    run.step(lag_poll(T0, 500), max_staleness=10)
    incomplete = poll(
        T0 + 15,
        topics={"t": 1},
        ends={("t", 0): (0, 1500)},
        groups_complete=False,
        errors=(PollError(ErrorKind.LIST_GROUPS, "broker 2 down", broker=2),),
    )
    run.step(incomplete, max_staleness=10)
    assert run.view is not None and "g" not in run.view.groups
    assert changes(run) == [] and run.phases() == ["firing"]


def test_stale_data_neither_fires_nor_resolves_even_past_for() -> None:
    run = Run([rule(**{"for": "10s"})])
    run.step(lag_poll(T0, 500))  # pending
    run.step(down(T0 + 20))  # would have fired at T0+10 had it been seen
    assert run.phases() == ["pending"]
    run.step(lag_poll(T0 + 30, 500))  # seen true again: `for` counted from T0
    assert run.phases() == ["firing"]


def test_a_group_down_does_not_hide_another_group_resolving() -> None:
    run = Run([rule(metric="max_lag")])
    tp = ("t", 0)
    p = poll(
        T0,
        topics={"t": 1},
        ends={tp: (0, 1000)},
        groups=[group("a"), group("b")],
        committed={"a": {tp: 0}, "b": {tp: 0}},
    )
    run.step(p)
    assert len(run.state) == 2
    p2 = poll(
        T0 + 15,
        topics={"t": 1},
        ends={tp: (0, 1000)},
        groups=[group("a"), group("b")],
        committed={"a": {tp: 1000}},
        failed_groups={"b"},
        errors=(PollError(ErrorKind.OFFSET_FETCH, "not authorized", group="b"),),
    )
    run.step(p2)
    assert run.last is not None
    assert [(t.alert.label("consumergroup"), str(t.change)) for t in run.last.transitions] == [
        ("a", "resolved")
    ]
    assert [a.label("consumergroup") for a in run.state.values()] == ["b"]


def test_restart_from_state_file_no_second_firing_and_no_lost_resolve(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    r = rule(**{"for": "30s"})
    first = Run([r])
    first.step(lag_poll(T0, 500))
    first.step(lag_poll(T0 + 30, 500))
    assert first.sent() == [(T0 + 30, "hook", "firing", False)]
    state_file.save(path, first.state, T0 + 30)

    # Restarted while still behind: no second firing notification.
    again = Run([r], state=state_file.load(path).alerts)
    again.step(lag_poll(T0 + 120, 600))
    assert again.notifications == [] and again.phases() == ["firing"]
    # Still remembers when the hook was last told, so the reminder comes on time.
    again.step(lag_poll(T0 + 30 + 3600, 600))
    assert again.sent() == [(T0 + 3630, "hook", "firing", True)]

    # Restarted after the consumer caught up while the exporter was down.
    later = Run([r], state=state_file.load(path).alerts)
    later.step(lag_poll(T0 + 300, 0))
    assert later.sent() == [(T0 + 300, "hook", "resolved", False)]
    (resolved,) = later.notifications
    assert resolved.alert.fired_at == T0 + 30


def test_restart_keeps_pending_for_counting(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    r = rule(**{"for": "60s"})
    first = Run([r])
    first.step(lag_poll(T0, 500))
    state_file.save(path, first.state, T0)
    again = Run([r], state=state_file.load(path).alerts)
    again.step(lag_poll(T0 + 60, 500))
    assert again.phases() == ["firing"]


def test_state_file_round_trip_is_exact(tmp_path: Path) -> None:
    run = Run([rule(notifiers=["hook", "am"]), rule(name="sum", metric="lag_sum")])
    run.step(lag_poll(T0, 500, 30))
    path = tmp_path / "s.json"
    state_file.save(path, run.state, T0)
    assert state_file.load(path).alerts == run.state
    assert state_file.load(tmp_path / "missing.json").alerts == {}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(state_file.StateFileError, match="not valid"):
        state_file.load(tmp_path / "bad.json")
    assert not list(tmp_path.glob(".*.tmp"))


def test_retire_resolves_alerts_of_removed_rules_and_clusters() -> None:
    run = Run([rule(), rule(name="other")])
    run.step(lag_poll(T0, 500))
    kept = retire(run.state, [rule()], ["c1"], T0 + 5)
    assert [a.rule for a in kept.state.values()] == ["behind"]
    assert [(n.alert.rule, n.status) for n in kept.notifications] == [("other", "resolved")]
    gone = retire(run.state, [rule(), rule(name="other")], ["c2"], T0 + 5)
    assert gone.state == {} and len(gone.notifications) == 2


def test_new_notifier_on_a_firing_alert_is_told_once() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    run.rules = [rule(notifiers=["hook", "am"])]
    run.step(lag_poll(T0 + 15, 500))
    assert run.sent() == [(T0, "hook", "firing", False), (T0 + 15, "am", "firing", False)]


def test_rule_without_notifiers_still_tracks_state() -> None:
    run = Run([rule(notifiers=[])])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 15, 0))
    assert run.notifications == [] and changes(run) == ["resolved"]


def test_alerts_of_other_clusters_are_left_alone() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    other = dict(run.state)
    run.view = None
    run.step(replace(lag_poll(T0 + 15, 0), cluster="c2"))
    assert run.state == other and changes(run) == []


# --- property: the engine agrees with a plain model of Prometheus' semantics ---

# One poll: a lag value, or None for a poll that did not reach the cluster.
polls = st.lists(
    st.tuples(st.floats(min_value=1, max_value=40), st.one_of(st.none(), st.integers(0, 200))),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(polls, st.sampled_from([0.0, 10.0, 30.0]), st.sampled_from([25.0, 60.0]))
def test_engine_matches_reference_model(
    steps: list[tuple[float, int | None]], for_seconds: float, repeat: float
) -> None:
    run = Run([rule(**{"for": for_seconds})], repeat={"hook": repeat})
    t = T0
    model_phase: str | None = None
    since = 0.0
    last_sent = 0.0
    expected: list[tuple[float, str, bool]] = []
    for dt, lag in steps:
        t += dt
        # A long outage would age the view out; keep it young so only `reached` matters.
        run.step(down(t) if lag is None else lag_poll(t, lag), max_staleness=1e9)
        if lag is None:
            # Unseen: nothing changes, but a firing alert is still reminded.
            if model_phase == "firing" and t - last_sent >= repeat:
                last_sent = t
                expected.append((t, "firing", True))
            continue
        if lag > 100:
            if model_phase is None:
                model_phase, since = "pending", t
            if model_phase == "pending" and t - since >= for_seconds:
                model_phase, last_sent = "firing", t
                expected.append((t, "firing", False))
            elif model_phase == "firing" and t - last_sent >= repeat:
                last_sent = t
                expected.append((t, "firing", True))
        else:
            if model_phase == "firing":
                expected.append((t, "resolved", False))
            model_phase = None
        assert run.phases() == ([] if model_phase is None else [model_phase])
    assert [(n.at, n.status, n.repeat) for n in run.notifications] == expected
    # Never two first-firing notifications without a resolve in between.
    firsts = [n.status for n in run.notifications if not n.repeat]
    assert all(a != b for a, b in pairwise(firsts))
    assert firsts[:1] in ([], ["firing"])


def test_phase_and_change_names_are_the_documented_ones() -> None:
    assert [str(p) for p in Phase] == ["pending", "firing"]
    assert {str(c) for c in Change} == {"pending", "firing", "resolved", "inactive", "kept"}
    assert alerting().rules == ()


def test_a_new_measure_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """How lag_seconds or status plug in: one MEASURES entry, validation and
    evaluation follow. A word-valued measure compares with == and != only."""
    monkeypatch.setitem(MEASURES, "group_state", per_group(lambda g: g.state, numeric=False))
    with pytest.raises(ConfigError, match="metric group_state is compared with == or != only"):
        rule(metric="group_state", threshold="Empty")
    r = rule(metric="group_state", op="==", threshold="Empty")
    run = Run([r])
    tp = ("t", 0)
    p = poll(
        T0,
        topics={"t": 1},
        ends={tp: (0, 10)},
        groups=[group("idle", state="Empty"), group("busy", member("m", tp))],
        committed={"idle": {tp: 5}, "busy": {tp: 5}},
    )
    run.step(p)
    (alert,) = run.state.values()
    assert alert.label("consumergroup") == "idle" and alert.value == "Empty"


def test_rules_on_lag_seconds_and_status() -> None:
    from lag_exporter.alerts.engine import evaluate
    from lag_exporter.history import History
    from lag_exporter.status import StatusRules
    from lag_exporter.view import Derivation

    from .factories import view_of as build

    derive = Derivation(History(size=50), StatusRules(stop_after=20, stop_after_max=60))
    rules = alerting(
        {"name": "old", "metric": "lag_seconds", "threshold": 30, "notifiers": ["hook"]},
        {
            "name": "stopped",
            "metric": "status",
            "op": "==",
            "threshold": "STOP",
            "notifiers": ["hook"],
            "for": 0,
        },
        {
            "name": "group-err",
            "metric": "group_status",
            "op": "==",
            "threshold": "ERR",
            "for": 0,
            "notifiers": ["hook"],
        },
    ).rules
    state: dict = {}  # type: ignore[type-arg]
    view = None
    fired: list[str] = []
    for i in range(0, 61, 5):
        t = 1_700_000_000.0 + i
        # Production 10/s; the group stopped at offset 100 at t+10 and nobody owns it.
        p = poll(
            t,
            topics={"t": 1},
            ends={("t", 0): (0, 10 * i)},
            groups=[group("g", state="Empty")],
            committed={"g": {("t", 0): min(100, 10 * i)}},
        )
        view = build(p, view, derive=derive)
        result = evaluate(rules, view, t, state, {"hook": 3600.0})
        state = result.state
        fired += [n.alert.rule for n in result.notifications if n.status == "firing"]
    assert sorted(fired) == ["group-err", "old", "stopped"]


def test_status_rules_need_a_word_and_an_equality() -> None:
    with pytest.raises(ConfigError):
        alerting({"name": "x", "metric": "status", "op": ">", "threshold": "STOP"})


def test_keep_firing_for_holds_a_firing_alert_through_a_dip() -> None:
    run = Run([rule(keep_firing_for="60s")])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 1, 50))  # a burst consumed: condition false
    assert changes(run) == ["kept"] and run.phases() == ["firing"]
    assert run.last is not None and run.last.transitions[0].alert.value == 50
    run.step(lag_poll(T0 + 2, 500))  # back above: the same alert, no new page
    run.step(lag_poll(T0 + 30, 50))
    run.step(lag_poll(T0 + 89.9, 50))
    assert run.phases() == ["firing"]
    run.step(lag_poll(T0 + 90, 50))  # false for the whole 60 s: resolved now, once
    assert changes(run) == ["resolved"]
    assert [(at, status) for at, _, status, _ in run.sent()] == [
        (T0, "firing"),
        (T0 + 90, "resolved"),
    ]


def test_keep_firing_for_does_not_delay_a_pending_alert_going_inactive() -> None:
    run = Run([rule(**{"for": "30s", "keep_firing_for": "60s"})])
    run.step(lag_poll(T0, 500))
    run.step(lag_poll(T0 + 10, 50))
    assert changes(run) == ["inactive"] and run.state == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 20), st.booleans()), min_size=1, max_size=40))
def test_keep_firing_for_resolves_only_after_that_long_false(
    steps: list[tuple[float, bool]],
) -> None:
    run = Run([rule(keep_firing_for="30s")])
    t, false_since, firing = T0, None, False
    for dt, above in steps:
        t += dt
        run.step(lag_poll(t, 500 if above else 5))
        if above:
            firing, false_since = True, None
        elif firing:
            false_since = t if false_since is None else false_since
            if t - false_since >= 30:
                firing, false_since = False, None
        assert run.phases() == (["firing"] if firing else [])
    firsts = [status for _, _, status, repeat in run.sent() if not repeat]
    assert all(a != b for a, b in pairwise(firsts))


def test_status_rules_default_to_for_2m_and_keep_firing_for_10m() -> None:
    (status, lag) = alerting(
        {"name": "s", "metric": "group_status", "op": "==", "threshold": "ERR"},
        {"name": "l", "metric": "lag", "threshold": 1},
    ).rules
    assert (status.for_seconds, status.keep_firing_for) == (120.0, 600.0)
    assert (lag.for_seconds, lag.keep_firing_for) == (0.0, 0.0)
    explicit = rule(metric="status", op="==", threshold="STOP", **{"for": 0}, keep_firing_for=0)
    assert (explicit.for_seconds, explicit.keep_firing_for) == (0.0, 0.0)


def test_firing_alert_unseen_during_an_outage_is_still_reminded() -> None:
    """Repeats go on while the cluster is unreachable, so Alertmanager (which
    ends an alert not re-sent before its endsAt) does not resolve it."""
    run = Run([rule(notifiers=["am"])], repeat={"am": 60.0})
    run.step(lag_poll(T0, 500))
    for i in range(1, 11):  # 5 minutes unreachable, polled every 30 s
        run.step(down(T0 + 30 * i), max_staleness=60)
    assert run.view is not None and run.view.groups == {}
    assert run.phases() == ["firing"]
    assert [(at - T0, repeat) for at, _, _, repeat in run.sent()] == [
        (0, False),
        (60, True),
        (120, True),
        (180, True),
        (240, True),
        (300, True),
    ]
    run.step(lag_poll(T0 + 330, 5))  # back, and really caught up: resolved
    assert changes(run) == ["resolved"]


def test_a_lower_bound_below_the_threshold_resolves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from collections.abc import Iterator

    from lag_exporter.alerts.measures import Measure, Series

    values = {"v": (500.0, False)}

    def extract(view: object) -> Iterator[Series]:
        value, bound = values["v"]
        yield Series((("consumergroup", "g"),), value, False, bound)

    monkeypatch.setitem(MEASURES, "fake_seconds", Measure(("consumergroup",), extract))
    (r,) = alerting(
        {"name": "old", "metric": "fake_seconds", "threshold": 300, "notifiers": ["hook"]}
    ).rules
    run = Run([r])
    run.step(lag_poll(T0, 1))
    assert run.phases() == ["firing"]
    values["v"] = (12.0, True)  # history lost: "at least 12 s"
    run.step(lag_poll(T0 + 10, 1))
    assert changes(run) == [] and run.phases() == ["firing"]
    values["v"] = (400.0, True)  # a lower bound above the threshold is certain
    run.step(lag_poll(T0 + 20, 1))
    assert run.phases() == ["firing"]
    values["v"] = (12.0, False)  # a real value below: resolved
    run.step(lag_poll(T0 + 30, 1))
    assert changes(run) == ["resolved"]


def test_cluster_up_and_poll_age_seconds_measures() -> None:
    run = Run(
        [
            rule(name="unreachable", metric="cluster_up", op="==", threshold=0),
            rule(name="stale", metric="poll_age_seconds", threshold=60),
        ]
    )
    run.step(lag_poll(T0, 0))
    assert run.state == {}
    run.step(down(T0 + 30))
    assert [a.rule for a in run.state.values()] == ["unreachable"]
    (alert,) = run.state.values()
    assert alert.identity == (("cluster", "c1"),)
    run.step(down(T0 + 61))
    assert sorted(a.rule for a in run.state.values()) == ["stale", "unreachable"]
    run.step(lag_poll(T0 + 90, 0))
    assert run.state == {} and sorted(changes(run)) == ["resolved", "resolved"]


def test_exporter_measures_resolve_when_false_or_gone() -> None:
    from lag_exporter.alerts.engine import evaluate_exporter

    (r,) = alerting(
        {"name": "failing", "metric": "notifications_failing", "threshold": 0, "for": "20s"}
    ).rules
    a, b = (("notifier", "a"),), (("notifier", "b"),)
    repeat = {"hook": 3600.0, "am": 60.0}
    e1 = evaluate_exporter([r], {"notifications_failing": {a: 1, b: 1}}, T0, {}, repeat)
    assert [str(t.change) for t in e1.transitions] == ["pending", "pending"]
    e2 = evaluate_exporter([r], {"notifications_failing": {a: 1, b: 0}}, T0 + 20, e1.state, repeat)
    assert sorted(str(t.change) for t in e2.transitions) == ["firing", "inactive"]
    (alert,) = e2.state.values()
    assert alert.identity == a and alert.label("cluster") is None
    assert {n.notifier for n in e2.notifications} == {"hook", "am"}
    e3 = evaluate_exporter([r], {"notifications_failing": {}}, T0 + 30, e2.state, repeat)
    assert [str(t.change) for t in e3.transitions] == ["resolved"] and e3.state == {}
    # Cluster evaluations leave exporter alerts alone, and so does retire.
    run = Run([r], state=dict(e2.state))
    run.step(lag_poll(T0 + 40, 500))
    assert run.state == e2.state
    assert retire(e2.state, [r], ["c1"], T0 + 50).state == e2.state


def test_exporter_rules_have_no_cluster_label_or_selector() -> None:
    with pytest.raises(ConfigError, match=r"no label 'cluster'"):
        alerting(
            {
                "name": "f",
                "metric": "notifications_failing",
                "threshold": 0,
                "annotations": {"summary": "{{ $labels.cluster }}"},
            }
        )
    with pytest.raises(ConfigError, match=r"clusters: metric notifications_failing is about"):
        alerting({"name": "f", "metric": "notifications_failing", "threshold": 0, "clusters": "c1"})


def test_alert_of_a_cluster_the_rule_no_longer_selects_resolves() -> None:
    run = Run([rule()])
    run.step(lag_poll(T0, 500))
    assert run.phases() == ["firing"]
    run.rules = [rule(clusters={"exclude": ["c1"]})]  # edited across a restart
    run.step(lag_poll(T0 + 10, 500))
    assert changes(run) == ["resolved"] and run.state == {}
