"""Partition advice, hot partitions, idle members and retry topics, from plain values."""

import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lag_exporter.config import InsightConfig
from lag_exporter.history import History
from lag_exporter.insight import (
    classify_topic,
    disproportionate,
    partitions_needed,
    skew,
    unowned_partitions,
)
from lag_exporter.model import (
    CapacityMethod,
    ClusterView,
    GroupDescription,
    PartitionAdvice,
    Verdict,
)
from lag_exporter.view import Derivation

from .factories import group, member, poll, view_of
from .simulate import Consumer, Simulation

T0 = 1_700_000_000.0
rates = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


# --- the rule and its pieces -------------------------------------------------


@given(
    production=st.floats(min_value=0.0, max_value=1e6),
    capacity=st.floats(min_value=1e-3, max_value=1e6),
    headroom=st.floats(min_value=1.0, max_value=5.0),
)
def test_partitions_needed_is_the_smallest_count_that_carries_the_load(
    production: float, capacity: float, headroom: float
) -> None:
    n = partitions_needed(production, capacity, headroom)
    load = production * headroom
    assert n >= 1
    assert n * capacity >= load * (1 - 1e-9)
    if n > 1:
        assert (n - 1) * capacity < load


def test_partitions_needed_is_not_fooled_by_floating_point() -> None:
    # 25 x 1.2 / 10 is 3.0000000000000004 in binary floating point.
    assert partitions_needed(25.0, 10.0, 1.2) == 3
    assert partitions_needed(30.0, 10.0, 1.2) == 4
    assert partitions_needed(0.0, 10.0, 1.2) == 1
    with pytest.raises(ValueError):
        partitions_needed(1.0, 0.0, 1.2)


@given(st.lists(rates, min_size=2, max_size=50))
def test_skew_is_between_one_and_the_number_of_values(values: list[float]) -> None:
    s = skew(values)
    if sum(values) <= 0:
        assert s is None
    else:
        assert s is not None
        assert 1 - 1e-9 <= s <= len(values) + 1e-9


def test_skew_of_even_and_of_all_in_one() -> None:
    assert skew([5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert skew([0.0, 9.0, 0.0]) == pytest.approx(3.0)
    assert skew([7.0]) is None
    assert skew([0.0, 0.0]) is None


@given(st.lists(rates, min_size=2, max_size=30), st.floats(min_value=1.01, max_value=10))
def test_hot_partitions_hold_more_than_their_share(values: list[float], factor: float) -> None:
    by_partition = dict(enumerate(values))
    hot = disproportionate(by_partition, factor)
    total = sum(values)
    n = len(values)
    for p in hot:
        # More than `factor` x the others' mean means more than a fair share.
        assert values[p] > 0 and values[p] / total > 1 / n
    # Scaling every partition's rate changes nothing (by 4: exact in binary floating point).
    assume(total > 0)
    assert disproportionate({p: v * 4 for p, v in by_partition.items()}, factor) == hot


@given(st.integers(min_value=2, max_value=64), st.floats(min_value=0.1, max_value=1e5))
def test_an_even_topic_has_no_hot_partition(n: int, rate: float) -> None:
    assert disproportionate(dict.fromkeys(range(n), rate), 2.0) == ()


def test_a_dominant_key_makes_its_partition_hot_even_with_two_partitions() -> None:
    assert disproportionate({0: 90.0, 1: 10.0}, 2.0) == (0,)
    assert disproportionate({0: 55.0, 1: 45.0}, 2.0) == ()
    assert disproportionate({0: 0.0, 1: 0.0, 2: 12.0}, 2.0) == (2,)
    # The floor: a lag of 2 on one partition is not a hot partition.
    assert disproportionate({0: 2.0, 1: 0.0}, 2.0, floor=2) == ()


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("orders-retry", ("retry", "orders")),
        ("orders-retry-0", ("retry", "orders")),
        ("orders-retry-5000", ("retry", "orders")),
        ("orders-dlt", ("dead_letter", "orders")),
        ("orders.DLT", ("dead_letter", "orders")),
        ("orders-DLT", ("dead_letter", "orders")),
        ("orders.dlt", ("dead_letter", "orders")),
        ("payments-eu-retry-2", ("retry", "payments-eu")),
        ("orders", None),
        ("retry", None),
        ("-dlt", None),
        ("orders-retrying", None),
    ],
)
def test_spring_kafka_names(topic: str, expected: tuple[str, str] | None) -> None:
    assert classify_topic(topic, InsightConfig()) == expected


def test_configured_patterns_replace_the_defaults() -> None:
    config = InsightConfig(
        retry_patterns=(re.compile(r"retry\.(?P<main>.+)"),),
        dead_letter_patterns=(re.compile(r"(?P<main>.+)_dead"),),
    )
    assert classify_topic("retry.orders", config) == ("retry", "orders")
    assert classify_topic("orders_dead", config) == ("dead_letter", "orders")
    assert classify_topic("orders-dlt", config) is None


# --- capacity: measured only while the consumer has a backlog ------------------


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.floats(min_value=2.0, max_value=200.0),
    overload=st.floats(min_value=1.3, max_value=4.0),
    commit_interval=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    poll_interval=st.sampled_from([1.0, 2.0, 5.0]),
)
def test_measured_capacity_of_a_saturated_consumer_is_its_true_capacity(
    capacity: float, overload: float, commit_interval: float, poll_interval: float
) -> None:
    sim = Simulation(
        "t",
        {0: capacity * overload / 2, 1: capacity * overload / 2},
        [Consumer("c1", capacity, [("t", 0), ("t", 1)])],
        poll_interval=poll_interval,
        commit_interval=commit_interval,
        step=0.1,
        config=InsightConfig(min_busy_time=30.0),
    )
    advice = sim_advice(sim.run(150))
    assert advice.method is CapacityMethod.MEMBER
    assert advice.capacity == pytest.approx(capacity, rel=0.1)
    assert advice.partitions_needed == partitions_needed(
        advice.production_rate or 0, advice.capacity or 1, 1.2
    )


@settings(max_examples=30, deadline=None)
@given(
    production=st.floats(min_value=1.0, max_value=100.0),
    spare=st.floats(min_value=1.3, max_value=5.0),
    commit_interval=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    poll_interval=st.sampled_from([1.0, 2.0, 5.0]),
)
def test_a_consumer_with_spare_capacity_gets_no_number(
    production: float, spare: float, commit_interval: float, poll_interval: float
) -> None:
    sim = Simulation(
        "t",
        {0: production},
        [Consumer("c1", production * spare, [("t", 0)])],
        poll_interval=poll_interval,
        commit_interval=commit_interval,
        step=0.1,
    )
    advice = sim_advice(sim.run(120))
    assert advice.verdict is Verdict.NEVER_SATURATED
    assert advice.capacity is None and advice.partitions_needed is None
    assert advice.capacity_at_least == pytest.approx(production, rel=0.15)


def sim_advice(view: ClusterView, group_id: str = "g", topic: str = "t") -> PartitionAdvice:
    assert view.insight is not None
    return view.insight.groups[group_id].topics[topic]


# --- advice --------------------------------------------------------------------


def test_one_slow_consumer_on_two_partitions_needs_more_partitions() -> None:
    # 30 msg/s, one thread that does 10 msg/s: ceil(30 x 1.2 / 10) = 4.
    sim = Simulation("t", {0: 15.0, 1: 15.0}, [Consumer("c1", 10.0, [("t", 0), ("t", 1)])])
    a = sim_advice(sim.run(120))
    assert a.capacity == pytest.approx(10.0, rel=0.05)
    assert a.production_rate == pytest.approx(30.0, rel=0.02)
    assert (a.partitions_needed, a.consumers_needed, a.consumers) == (4, 4, 1)
    assert a.verdict is Verdict.ADD_PARTITIONS
    assert "add 2" in a.reason
    assert a.overloaded_partitions == ()  # even production: more partitions do help


def test_member_capacity_is_shared_by_its_partitions() -> None:
    # Each member does 10 msg/s over its two partitions; per partition that is only
    # 5 msg/s, but a member owning one partition would do 10.
    sim = Simulation(
        "t",
        dict.fromkeys(range(4), 6.0),
        [
            Consumer("c1", 10.0, [("t", 0), ("t", 1)]),
            Consumer("c2", 10.0, [("t", 2), ("t", 3)]),
        ],
    )
    a = sim_advice(sim.run(120))
    assert a.method is CapacityMethod.MEMBER and a.capacity_measured == 2
    assert a.capacity == pytest.approx(10.0, rel=0.05)
    # 24 msg/s x 1.2 / 10 -> 3 consumers; the 4 partitions are enough.
    assert (a.partitions_needed, a.consumers_needed, a.consumers) == (3, 3, 2)
    assert a.verdict is Verdict.ADD_CONSUMERS


@pytest.mark.parametrize("batch", [50, 300])
def test_a_member_serving_its_partitions_in_turn_is_measured_as_one(batch: int) -> None:
    # Like kafka-python handing out one partition's fetched records at a time: each
    # partition alone progresses in bursts, the member steadily.
    sim = Simulation(
        "t",
        {0: 15.0, 1: 15.0},
        [Consumer("c1", 10.0, [("t", 0), ("t", 1)], batch=batch)],
        poll_interval=1.0,
    )
    a = sim_advice(sim.run(120))
    assert a.capacity == pytest.approx(10.0, rel=0.05)
    assert a.partitions_needed == 4


def test_a_member_busy_on_one_partition_also_counts_what_it_did_on_the_others() -> None:
    # Partition 0 gets 12 msg/s, partition 1 gets 2: the member (10 msg/s) drains
    # partition 1 as it comes and spends the rest on the backlog of partition 0.
    sim = Simulation("t", {0: 12.0, 1: 2.0}, [Consumer("c1", 10.0, [("t", 0), ("t", 1)])])
    a = sim_advice(sim.run(150))
    assert a.capacity == pytest.approx(10.0, rel=0.08)


def test_without_members_capacity_is_measured_per_partition() -> None:
    sim = Simulation(
        "t",
        dict.fromkeys(range(4), 6.0),
        [
            Consumer("c1", 10.0, [("t", 0), ("t", 1)]),
            Consumer("c2", 10.0, [("t", 2), ("t", 3)]),
        ],
        members_known=False,
    )
    a = sim_advice(sim.run(120))
    assert a.method is CapacityMethod.PARTITION and a.capacity_measured == 4
    assert a.capacity == pytest.approx(5.0, rel=0.05)
    assert a.partitions_needed == 6  # ceil(24 x 1.2 / 5)
    assert a.consumers_needed is None and a.consumers is None


def test_a_hot_partition_beyond_one_consumer_is_called_out() -> None:
    # One key sends 20 msg/s to partition 0; each consumer does 10 msg/s.
    sim = Simulation(
        "t",
        {0: 20.0, 1: 1.0, 2: 1.0, 3: 1.0},
        [Consumer(f"c{p}", 10.0, [("t", p)]) for p in range(4)],
    )
    view = sim.run(120)
    a = sim_advice(view)
    assert view.insight is not None
    assert view.insight.topics["t"].hot_partitions == (0,)
    assert a.overloaded_partitions == (0,)
    assert a.hot_lag_partitions == (0,)
    assert a.partitions_needed == 3  # ceil(23 x 1.2 / 10): enough on average
    assert a.verdict is Verdict.HOT_PARTITION
    assert "do not split one key" in a.reason


def test_enough_partitions_and_a_reminder_that_they_cannot_be_removed() -> None:
    sim = Simulation(
        "t",
        {0: 30.0, 1: 0.5},
        [Consumer("c1", 10.0, [("t", 0)]), Consumer("c2", 40.0, [("t", 1)])],
        backlog={1: 2000.0},
    )
    a = sim_advice(sim.run(60))
    # c2 drains a backlog at 40 msg/s: busy; 30.5 x 1.2 / mean(10, 40) -> 2.
    assert a.partitions_needed == 2
    sim = Simulation(
        "t",
        dict.fromkeys(range(6), 1.0),
        [Consumer(f"c{p}", 5.0, [("t", p)]) for p in range(6)],
        backlog=dict.fromkeys(range(6), 1000.0),
    )
    a = sim_advice(sim.run(60))
    assert a.verdict is Verdict.ENOUGH and a.partitions_needed == 2
    assert "cannot be removed" in a.reason


def test_too_few_polls_and_short_backlogs_give_no_number() -> None:
    sim = Simulation("t", {0: 30.0}, [Consumer("c1", 10.0, [("t", 0)])])
    a = sim_advice(sim.run(0))
    assert a.verdict is Verdict.NOT_ENOUGH_DATA and "production rate unknown" in a.reason
    a = sim_advice(sim.run(15))  # busy, but for less than min_busy_time (20 s)
    assert a.verdict is Verdict.NOT_ENOUGH_DATA and "busy for" in a.reason
    assert a.partitions_needed is None and a.capacity is None


def test_min_busy_time_zero_counts_no_unit_that_was_never_busy() -> None:
    # A consumer that keeps up is never busy: no rate from 0 messages in 0 s.
    sim = Simulation(
        "t",
        {0: 5.0},
        [Consumer("c1", 50.0, [("t", 0)])],
        config=InsightConfig(min_busy_time=0.0),
    )
    a = sim_advice(sim.run(30))
    assert a.verdict is Verdict.NEVER_SATURATED and a.capacity is None


def test_a_stopped_group_is_not_consuming_rather_than_slow() -> None:
    sim = Simulation("t", {0: 30.0}, [Consumer("c1", 0.0, [("t", 0)])])
    a = sim_advice(sim.run(60))
    assert a.verdict is Verdict.NOT_CONSUMING
    assert a.partitions_needed is None


# --- idle members, unowned partitions -------------------------------------------


def insight_view(**kwargs: object) -> ClusterView:
    derive = Derivation(History(), insight=InsightConfig())
    view = view_of(poll(T0, **kwargs), derive=derive)  # type: ignore[arg-type]
    assert view.insight is not None
    return view


def test_members_beyond_the_partitions_are_idle() -> None:
    owner = member("c1", ("one", 0))
    idle = [member("c2"), member("c3")]
    view = insight_view(
        topics={"one": 1},
        ends={("one", 0): (0, 10)},
        groups=[group("g", owner, *idle)],
        committed={"g": {("one", 0): 10}},
    )
    assert view.insight is not None
    g = view.insight.groups["g"]
    assert g.members == 3 and g.idle_members == tuple(idle)
    assert g.unowned == {}


def test_no_idle_members_while_rebalancing_or_when_members_are_unknown() -> None:
    view = insight_view(
        topics={"one": 1},
        groups=[group("g", member("c1"), member("c2"), state="PreparingRebalance")],
    )
    assert view.insight is not None
    assert view.insight.groups["g"].idle_members == ()


def test_subscribed_partitions_without_owner() -> None:
    m = member("c1", ("orders", 0))
    m2 = member("c2")
    subscribed = type(m)(m2.member_id, m2.client_id, m2.host, None, (), ("orders", "audit"))
    view = insight_view(
        topics={"orders": 3, "audit": 1, "other": 2},
        groups=[group("g", m, subscribed)],
    )
    assert view.insight is not None
    assert view.insight.groups["g"].unowned == {"orders": (1, 2), "audit": (0,)}


def test_unowned_partitions_ignore_topics_that_are_not_reported() -> None:
    m = member("c1", ("orders", 0))
    topics = insight_view(topics={"orders": 2}).topics
    assert unowned_partitions([m], topics) == {"orders": (1,)}
    assert unowned_partitions([member("c", ("gone", 0))], topics) == {}


# --- retry and dead-letter topics -------------------------------------------------


def test_retry_and_dead_letter_topics_are_related_to_their_main_topic() -> None:
    derive = Derivation(History(), rate_window=60, insight=InsightConfig())
    topics = {"orders": 1, "orders-retry-0": 1, "orders-retry-1": 1, "orders-dlt": 2, "x.DLT": 1}
    view: ClusterView | None = None
    for i in range(3):
        ends = {
            ("orders", 0): (0, 1000 + 100 * i),
            ("orders-retry-0", 0): (0, 50 + 10 * i),
            ("orders-retry-1", 0): (0, 5),
            ("orders-dlt", 0): (10, 30 + 2 * i),
            ("orders-dlt", 1): (0, 7),
            ("x.DLT", 0): (0, 0),
        }
        view = view_of(
            poll(
                T0 + 10 * i,
                topics=topics,
                ends=ends,
                groups=[group("orders-service")],
                committed={"orders-service": {("orders-retry-0", 0): 40, ("orders-retry-1", 0): 5}},
            ),
            view,
            derive=derive,
        )
    assert view is not None and view.insight is not None
    retries = view.insight.retries
    assert set(retries) == {"orders", "x"}
    r = retries["orders"]
    assert r.main_exists and not retries["x"].main_exists
    assert r.retry_topics == ("orders-retry-0", "orders-retry-1")
    assert r.dead_letter_topics == ("orders-dlt",)
    assert r.dead_letter_messages == (34 - 10) + 7
    assert r.dead_letter_rate == pytest.approx(0.2)
    assert r.retry_rate == pytest.approx(1.0)
    assert r.retry_lag == {
        ("orders-service", "orders-retry-0"): 30,
        ("orders-service", "orders-retry-1"): 0,
    }
    assert r.retry_backlog == 30
    # Retry and dead-letter topics get no advice of their own as main topics.
    assert "orders-dlt" not in retries


def test_hot_partitions_need_a_minimum_rate() -> None:
    derive = Derivation(History(), rate_window=60, insight=InsightConfig(hot_min_rate=1.0))
    view = None
    for i in range(3):
        view = view_of(
            poll(
                T0 + 10 * i, topics={"quiet": 2}, ends={("quiet", 0): (0, i), ("quiet", 1): (0, 0)}
            ),
            view,
            derive=derive,
        )
    assert view is not None and view.insight is not None
    t = view.insight.topics["quiet"]
    assert t.production_rate == pytest.approx(0.1)
    assert t.hot_partitions == () and t.skew == pytest.approx(2.0)
    assert t.shares == {0: pytest.approx(1.0), 1: 0.0}
    assert math.isclose(sum(t.shares.values()), 1.0)


def test_a_poll_that_cannot_read_the_group_keeps_its_measurements() -> None:
    sim = Simulation("t", {0: 15.0, 1: 15.0}, [Consumer("c1", 10.0, [("t", 0), ("t", 1)])])
    view = sim.run(120)
    assert sim.derive is not None
    meters = dict(sim.derive.history.members)
    assert list(meters) == [("g", "t", "c1-id", (0, 1))]
    last = view.health.last_poll_at or 0
    failed = poll(
        last + 5,
        topics={"t": 2},
        ends={("t", 0): (0, 5000), ("t", 1): (0, 5000)},
        groups=[view_groups_description(view)],
        failed_groups={"g"},
    )
    after = view_of(failed, view, derive=sim.derive)
    assert after.groups["g"].stale
    assert sim.derive.history.members == meters
    assert sim_advice(after).capacity == pytest.approx(10.0, rel=0.05)


def view_groups_description(view: ClusterView) -> GroupDescription:
    g = view.groups["g"]
    return GroupDescription(g.group_id, g.state, g.protocol_type, g.protocol, 1, g.members)


def test_dead_letter_and_retry_measures_for_alert_rules() -> None:
    from lag_exporter.alerts.engine import evaluate
    from lag_exporter.alerts.measures import MEASURES

    from .alert_factories import alerting

    derive = Derivation(History(), rate_window=60, insight=InsightConfig())
    view: ClusterView | None = None
    for i in range(3):
        view = view_of(
            poll(
                T0 + 10 * i,
                topics={"orders": 1, "orders-retry": 1, "orders-dlt": 1},
                ends={
                    ("orders", 0): (0, 100),
                    ("orders-retry", 0): (0, 20),
                    ("orders-dlt", 0): (0, 5 + 2 * i),
                },
                groups=[group("svc")],
                committed={"svc": {("orders-retry", 0): 8}},
            ),
            view,
            derive=derive,
        )
    assert view is not None
    dlt = {s.labels: s.value for s in MEASURES["dead_letter_messages"].extract(view)}
    assert dlt == {(("main_topic", "orders"), ("topic", "orders-dlt")): 9}
    rates = [s.value for s in MEASURES["dead_letter_rate"].extract(view)]
    assert rates == [pytest.approx(0.2)]
    retry = {s.labels: s.value for s in MEASURES["retry_lag"].extract(view)}
    assert retry == {
        (("consumergroup", "svc"), ("main_topic", "orders"), ("topic", "orders-retry")): 12
    }
    rules = alerting(
        {
            "name": "dead-letters",
            "metric": "dead_letter_messages",
            "threshold": 0,
            "notifiers": ["hook"],
            "topics": {"include": [{"regex": ".*-dlt"}]},
        },
    ).rules
    result = evaluate(rules, view, T0 + 20, {}, {"hook": 3600.0})
    (alert,) = result.state.values()
    assert alert.label("main_topic") == "orders" and alert.value == 9
