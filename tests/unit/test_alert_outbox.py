"""The outbox on a fake clock: supersession, order, backoff and the horizon."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lag_exporter.alerts import state_file
from lag_exporter.alerts.engine import Notification
from lag_exporter.alerts.outbox import (
    DROPPED_AFTER_HORIZON,
    FAILED,
    RETRIED,
    Outbox,
    Policy,
)

from .alert_factories import Run, lag_poll, rule

T0 = 1_700_000_000.0
POLICY = Policy(backoff=1.0, max_backoff=60.0, horizon=3600.0)


def alerts(count: int = 2) -> list[Notification]:
    """First firings of `count` different alerts."""
    run = Run([rule()])
    run.step(lag_poll(T0, *([500] * count)))
    return list(run.notifications)


def firing(n: Notification, at: float, repeat: bool) -> Notification:
    return replace(n, status="firing", repeat=repeat, at=at, ends_at=None)


def resolved(n: Notification, at: float) -> Notification:
    return replace(n, status="resolved", repeat=False, at=at, ends_at=at)


def contents(box: Outbox) -> list[tuple[str, bool, float]]:
    return [(e.notification.status, e.notification.repeat, e.notification.at) for e in box]


def test_a_repeat_replaces_a_queued_firing_and_keeps_it_a_first_announcement() -> None:
    (a,) = alerts(1)
    box = Outbox(POLICY)
    box.add(a, T0)
    box.add(firing(a, T0 + 60, repeat=True), T0 + 60)
    assert contents(box) == [("firing", False, T0 + 60)]
    assert box.oldest_queued_at() == T0  # still waiting since the first one


def test_a_resolved_drops_queued_repeats_but_not_an_undelivered_first_firing() -> None:
    (a,) = alerts(1)
    box = Outbox(POLICY)
    box.add(a, T0)
    box.add(resolved(a, T0 + 5), T0 + 5)
    assert contents(box) == [("firing", False, T0), ("resolved", False, T0 + 5)]

    told = Outbox(POLICY)
    told.add(firing(a, T0 + 60, repeat=True), T0 + 60)  # the first one was delivered
    told.add(resolved(a, T0 + 70), T0 + 70)
    assert contents(told) == [("resolved", False, T0 + 70)]


def test_entries_of_one_alert_go_in_order_others_do_not_wait() -> None:
    a, b = alerts(2)
    box = Outbox(POLICY)
    box.add(a, T0)
    box.add(resolved(a, T0), T0)
    box.add(b, T0)
    first = box.next_due(T0)
    assert first is not None and first.notification == a
    second = box.next_due(T0)  # a's resolved waits for a's firing, b does not
    assert second is not None and second.notification == b
    assert box.next_due(T0) is None
    assert box.failed(first, T0, "HTTP 503", retry=True) == RETRIED
    assert box.next_due(T0) is None  # a's firing waits out its backoff, its resolved too
    assert box.next_wake() == T0 + 1
    again = box.next_due(T0 + 1)
    assert again is first
    box.delivered(again)
    after = box.next_due(T0 + 1)
    assert after is not None and after.notification.status == "resolved"


def test_backoff_doubles_up_to_its_cap_and_gives_up_at_the_horizon() -> None:
    (a,) = alerts(1)
    box = Outbox(Policy(backoff=1.0, max_backoff=8.0, horizon=40.0))
    box.add(a, T0)
    now, waits, results = T0, [], []
    while (e := box.next_due(now)) is not None:
        results.append(box.failed(e, now, "refused", retry=True))
        if results[-1] != RETRIED:
            break
        waits.append(e.next_at - now)
        now = e.next_at
    assert waits == [1, 2, 4, 8, 8, 8, 8]  # 39 s after queueing; the next would be 47
    assert results[-1] == DROPPED_AFTER_HORIZON and len(box) == 0


def test_a_final_answer_is_failed_at_once() -> None:
    (a,) = alerts(1)
    box = Outbox(POLICY)
    box.add(a, T0)
    e = box.next_due(T0)
    assert e is not None
    assert box.failed(e, T0, "HTTP 400", retry=False) == FAILED and len(box) == 0


def test_restored_entries_past_the_horizon_expire() -> None:
    a, b = alerts(2)
    box = Outbox(POLICY)
    box.add(a, T0)
    box.add(b, T0 + 3000)
    (old,) = box.expired(T0 + 3601)
    assert old.notification == a and len(box) == 1


# An episode script: per step, which alert the engine speaks about (or None:
# an attempt is made), and whether the receiver accepts attempts now.
steps = st.lists(
    st.tuples(st.sampled_from([0, 1, None]), st.booleans(), st.floats(0.5, 30)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_receiver_sees_every_transition_once_in_order(
    script: list[tuple[int | None, bool, float]],
) -> None:
    """Whatever the receiver's failures (within the horizon), once it accepts
    again it has seen each alert's transitions exactly once and in order:
    firing, resolved, firing, ... with reminders only in between."""
    base = alerts(2)
    box = Outbox(Policy(backoff=1.0, max_backoff=60.0, horizon=1e9))
    now = T0
    firing_now = [False, False]
    transitions: list[list[str]] = [[], []]
    received: list[list[tuple[str, bool]]] = [[], []]

    def attempt(accept: bool) -> None:
        e = box.next_due(now)
        if e is None:
            return
        if accept:
            box.delivered(e)
            i = [b.alert.key for b in base].index(e.key)
            received[i].append((e.notification.status, e.notification.repeat))
        else:
            box.failed(e, now, "HTTP 503", retry=True)

    for who, accept, dt in script:
        now += dt
        if who is None:
            attempt(accept)
            continue
        if firing_now[who] and dt > 10:
            box.add(firing(base[who], T0, repeat=True), now)  # a reminder
        elif firing_now[who]:
            box.add(resolved(base[who], T0), now)
            firing_now[who] = False
            transitions[who].append("resolved")
        else:
            box.add(firing(base[who], T0, repeat=False), now)
            firing_now[who] = True
            transitions[who].append("firing")
    while len(box):  # the receiver is back for good
        now = max(now, box.next_wake() or now)
        attempt(True)
    for i in (0, 1):
        firsts = [status for status, repeat in received[i] if not repeat]
        assert firsts == transitions[i]
        # A reminder only ever follows a firing the receiver already has.
        for (before, _), (status, repeat) in zip(received[i], received[i][1:], strict=False):
            if repeat:
                assert before == "firing" and status == "firing"
        if received[i]:
            assert received[i][0] == ("firing", False)


def test_a_resolved_replaces_a_firing_the_receiver_may_have_taken() -> None:
    """A receiver that takes requests but answers after the timeout: its
    firing is never acknowledged, yet its resolve must not wait behind it."""
    (a,) = alerts(1)
    box = Outbox(POLICY)
    box.add(a, T0)
    e = box.next_due(T0)
    assert e is not None
    box.add(resolved(a, T0 + 2), T0 + 2)  # arrives while the firing is in flight
    assert box.failed(e, T0 + 3, "TimeoutError", retry=True, maybe_received=True) == RETRIED
    assert contents(box) == [("resolved", False, T0 + 2)]

    refused = Outbox(POLICY)
    refused.add(a, T0)
    e = refused.next_due(T0)
    assert e is not None
    refused.failed(e, T0, "connection refused", retry=True)
    refused.add(resolved(a, T0 + 2), T0 + 2)  # surely not received: both go, in order
    assert contents(refused) == [("firing", False, T0), ("resolved", False, T0 + 2)]
    timed_out = Outbox(POLICY)
    timed_out.add(a, T0)
    e = timed_out.next_due(T0)
    assert e is not None
    timed_out.failed(e, T0, "TimeoutError", retry=True, maybe_received=True)
    timed_out.add(resolved(a, T0 + 2), T0 + 2)
    assert contents(timed_out) == [("resolved", False, T0 + 2)]


def test_no_second_firing_while_one_is_being_sent() -> None:
    (a,) = alerts(1)
    box = Outbox(POLICY)
    box.add(a, T0)
    e = box.next_due(T0)
    assert e is not None
    box.add(firing(a, T0 + 60, repeat=True), T0 + 60)
    assert len(box) == 1
    box.delivered(e)
    box.add(firing(a, T0 + 120, repeat=True), T0 + 120)  # a real reminder later on
    assert contents(box) == [("firing", True, T0 + 120)]


def test_outboxes_round_trip_through_the_state_file_and_version_1_still_loads(
    tmp_path: Path,
) -> None:
    a, b = alerts(2)
    box = Outbox(POLICY)
    box.add(a, T0)
    box.add(resolved(a, T0 + 5), T0 + 5)
    box.add(b, T0 + 6)
    e = box.next_due(T0 + 6)
    assert e is not None
    box.failed(e, T0 + 7, "TimeoutError", retry=True, maybe_received=True)
    told = {b.alert.key: T0 + 3}
    path = tmp_path / "alerts.json"
    state_file.save(path, {}, T0 + 8, {"hook": (list(box), told)})
    saved = state_file.load(path)
    entries, delivered = saved.outboxes["hook"]
    assert delivered == told
    assert [
        (x.notification, x.queued_at, x.attempts, x.last_error, x.maybe_received) for x in entries
    ] == [(x.notification, x.queued_at, x.attempts, x.last_error, x.maybe_received) for x in box]

    doc = json.loads(path.read_text())
    doc["version"] = 1
    del doc["outboxes"]
    path.write_text(json.dumps(doc))
    assert state_file.load(path).outboxes == {}
