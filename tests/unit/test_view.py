import re

from lag_exporter.config import NameFilter
from lag_exporter.health import next_health
from lag_exporter.model import ErrorKind, PollError
from lag_exporter.view import build_view

from .factories import group, member, poll, view_of

T0 = 1_700_000_000.0
ORDERS = {"orders": 3}
ENDS = {("orders", 0): (0, 100), ("orders", 1): (0, 50), ("orders", 2): (10, 10)}


def test_lag_rows_for_committed_and_assigned_partitions() -> None:
    c = member("c", ("orders", 0), ("orders", 1), ("orders", 2))
    p = poll(
        T0,
        topics=ORDERS,
        ends=ENDS,
        groups=[group("g", c)],
        committed={"g": {("orders", 0): 90, ("orders", 1): 50}},
    )
    g = view_of(p).groups["g"]
    rows = {(r.topic, r.partition): r for r in g.partitions}
    assert rows[("orders", 0)].lag == 10
    assert rows[("orders", 1)].lag == 0
    # Assigned but never committed: a row without lag, counted as uncommitted.
    assert rows[("orders", 2)].lag is None and rows[("orders", 2)].committed is None
    assert g.uncommitted_partitions == 1
    assert g.max_lag == 10
    assert rows[("orders", 0)].member == c
    assert not g.stale


def test_empty_group_with_commits_is_reported() -> None:
    p = poll(
        T0,
        topics=ORDERS,
        ends=ENDS,
        groups=[group("g", state="Empty")],
        committed={"g": {("orders", 0): 10}},
    )
    g = view_of(p).groups["g"]
    assert g.state == "Empty" and g.members == ()
    assert [r.lag for r in g.partitions] == [90]


def test_failed_group_is_carried_stale_while_young_then_dropped() -> None:
    first = view_of(
        poll(
            T0,
            topics=ORDERS,
            ends=ENDS,
            groups=[group("g"), group("h")],
            committed={"g": {("orders", 0): 10}, "h": {("orders", 1): 5}},
        )
    )
    second_poll = poll(
        T0 + 15,
        topics=ORDERS,
        ends=ENDS,
        groups=[group("g"), group("h")],
        committed={"h": {("orders", 1): 6}},
        failed_groups={"g"},
    )
    second = view_of(second_poll, first, max_staleness=60)
    assert second.groups["g"].stale
    assert [r.lag for r in second.groups["g"].partitions] == [90]
    assert all(r.stale for r in second.groups["g"].partitions)
    # The other group is unaffected and fresh.
    assert not second.groups["h"].stale and second.groups["h"].partitions[0].lag == 44
    third = view_of(
        poll(
            T0 + 61,
            topics=ORDERS,
            ends=ENDS,
            groups=[group("g"), group("h")],
            committed={"h": {("orders", 1): 7}},
            failed_groups={"g"},
        ),
        second,
        max_staleness=60,
    )
    assert "g" not in third.groups and "h" in third.groups


def test_group_no_longer_listed_disappears_at_once() -> None:
    first = view_of(
        poll(
            T0, topics=ORDERS, ends=ENDS, groups=[group("g")], committed={"g": {("orders", 0): 10}}
        )
    )
    second = view_of(poll(T0 + 15, topics=ORDERS, ends=ENDS), first)
    assert second.groups == {}


def test_unlisted_group_is_kept_when_some_broker_did_not_answer_list_groups() -> None:
    first = view_of(
        poll(
            T0, topics=ORDERS, ends=ENDS, groups=[group("g")], committed={"g": {("orders", 0): 10}}
        )
    )
    second = view_of(poll(T0 + 15, topics=ORDERS, ends=ENDS, groups_complete=False), first)
    assert second.groups["g"].stale


def test_unreached_cluster_keeps_bounded_stale_data_and_reports_down() -> None:
    first = view_of(
        poll(
            T0, topics=ORDERS, ends=ENDS, groups=[group("g")], committed={"g": {("orders", 0): 10}}
        )
    )
    down = poll(T0 + 15, reached=False, errors=(PollError(ErrorKind.CONNECTION, "refused"),))
    second = view_of(down, first)
    assert not second.health.up
    assert second.health.last_success_at == T0
    assert second.groups["g"].stale
    assert second.topics["orders"].offsets[0].log_end == 100
    third = view_of(poll(T0 + 120, reached=False), second)
    assert third.groups == {} and third.topics == {}


def test_deleted_topic_drops_rows_and_says_so_once() -> None:
    committed = {"g": {("orders", 0): 10, ("gone", 0): 3}}
    first_poll = poll(
        T0,
        topics={**ORDERS, "gone": 1},
        ends={**ENDS, ("gone", 0): (0, 5)},
        groups=[group("g")],
        committed=committed,
    )
    first = view_of(first_poll)
    assert {r.topic for r in first.groups["g"].partitions} == {"orders", "gone"}
    second_poll = poll(T0 + 15, topics=ORDERS, ends=ENDS, groups=[group("g")], committed=committed)
    health = next_health(first.health, second_poll)
    second, notices = build_view(
        second_poll, first, labels={}, topic_filter=NameFilter(), max_staleness=60, health=health
    )
    assert {r.topic for r in second.groups["g"].partitions} == {"orders"}
    assert "gone" not in second.topics
    assert [n.topic for n in notices] == ["gone", "gone"]
    assert {n.kind for n in notices} == {ErrorKind.TOPIC_DELETED}
    assert any("topic 'gone' no longer exists" in n.message and "g" in n.message for n in notices)
    _, again = build_view(
        second_poll, second, labels={}, topic_filter=NameFilter(), max_staleness=60, health=health
    )
    assert again == []


def test_leaderless_partition_does_not_void_its_topic() -> None:
    ends = {("orders", 0): (0, 100), ("orders", 1): (0, 50)}  # partition 2 unread
    p = poll(
        T0,
        topics=ORDERS,
        ends=ends,
        groups=[group("g")],
        committed={"g": {("orders", 0): 1, ("orders", 1): 1, ("orders", 2): 1}},
    )
    rows = view_of(p).groups["g"].partitions
    assert [r.lag for r in rows] == [99, 49, None]
    assert rows[2].stale


def test_topic_filter_hides_topics_from_groups() -> None:
    p = poll(T0, topics=ORDERS, ends=ENDS, groups=[group("g")], committed={"g": {("orders", 0): 1}})
    deny = NameFilter(deny=(re.compile("ord.*"),))
    assert view_of(p, topic_filter=deny).groups["g"].partitions == ()


def test_dead_group_is_not_reported() -> None:
    p = poll(T0, topics=ORDERS, ends=ENDS, groups=[group("g", state="Dead")], committed={"g": {}})
    assert view_of(p).groups == {}
