"""Insight as Prometheus series, and its configuration."""

import pytest

from lag_exporter.config import ConfigError, parse_settings

from .factories import group, member, poll, view_of
from .simulate import retry_view, slow_consumer_view
from .test_metrics import find, samples

T0 = 1_700_000_000.0


def test_advice_series() -> None:
    s = samples([slow_consumer_view()])
    labels = {"consumergroup": "g", "topic": "orders"}
    assert find(s, "kafka_consumergroup_partitions_needed", **labels) == 4
    assert find(s, "kafka_consumergroup_consumers_needed", **labels) == 4
    capacity = find(
        s,
        "kafka_consumergroup_consumption_capacity_per_partition_messages_per_second",
        method="member",
        **labels,
    )
    assert capacity == pytest.approx(10.0, rel=0.05)
    busy = find(s, "kafka_consumergroup_capacity_busy_seconds", **labels)
    assert busy is not None and busy >= 60
    assert find(s, "kafka_consumergroup_partition_advice", verdict="add_partitions") == 1
    assert find(s, "kafka_topic_partition_production_share", topic="orders", partition="0") == (
        pytest.approx(0.5, abs=0.02)
    )
    assert find(s, "kafka_topic_production_skew", topic="orders") == pytest.approx(1.0, abs=0.05)
    assert find(s, "kafka_topic_partition_hot", topic="orders") is None


def test_idle_members_retry_and_dead_letter_series() -> None:
    s = samples([retry_view()])
    assert find(s, "kafka_consumergroup_idle_members", consumergroup="g") == 2
    dead = {"main_topic": "pay", "topic": "pay.DLT"}
    assert find(s, "kafka_topic_dead_letter_messages", **dead) == 20
    assert find(s, "kafka_topic_dead_letter_messages_in_per_second", **dead) == pytest.approx(0.5)
    retry = {"main_topic": "pay", "topic": "pay-retry-1000"}
    assert find(s, "kafka_topic_retry_messages_in_per_second", **retry) == pytest.approx(2.0)
    assert find(s, "kafka_consumergroup_retry_lag", consumergroup="g", **retry) == 50
    assert find(s, "kafka_consumergroup_info", consumergroup="g", group_type="") == 1


def test_no_insight_series_without_insight() -> None:
    s = samples([view_of(poll(T0, topics={"one": 1}, groups=[group("g", member("c"))]))])
    assert not any("needed" in name or "dead_letter" in name for name, _ in s)


CLUSTER = {"name": "c", "kafka": {"bootstrap.servers": "k:9092"}}


def test_insight_settings() -> None:
    settings = parse_settings(
        {
            "clusters": [
                {
                    **CLUSTER,
                    "insight": {
                        "headroom": 1.5,
                        "capacity_window": "30m",
                        "min_busy_time": "1m",
                        "hot_factor": 3,
                        "hot_min_rate": 0.5,
                        "retry_topics": ["retry-(?P<main>.+)"],
                        "dead_letter_topics": ["(?P<main>.+)-parked"],
                    },
                }
            ]
        }
    )
    insight = settings.clusters[0].insight
    assert (insight.headroom, insight.capacity_window, insight.min_busy_time) == (1.5, 1800, 60)
    assert (insight.hot_factor, insight.hot_min_rate) == (3.0, 0.5)
    assert [p.pattern for p in insight.retry_patterns] == ["retry-(?P<main>.+)"]
    default = parse_settings({"clusters": [CLUSTER]}).clusters[0].insight
    assert default.headroom == 1.2 and len(default.dead_letter_patterns) == 1


@pytest.mark.parametrize(
    ("insight", "message"),
    [
        ({"headroom": 0}, "insight.headroom: expected a number greater than 0"),
        ({"hot_factor": 1}, "insight.hot_factor: expected a number greater than 1"),
        ({"min_busy_time": "soon"}, "insight.min_busy_time"),
        ({"retry_topics": ["(.+)-again"]}, "needs a named group (?P<main>...)"),
        ({"dead_letter_topics": ["("]}, "invalid regular expression"),
        ({"headrom": 2}, "insight.headrom: unknown key"),
    ],
)
def test_bad_insight_settings_name_the_key(insight: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        parse_settings({"clusters": [{**CLUSTER, "insight": insight}]})
    assert message in str(err.value)
