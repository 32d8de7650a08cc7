import gzip
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from lag_exporter.metrics import families, render
from lag_exporter.model import ClusterView
from lag_exporter.textformat import render_text

from .factories import group, member, poll, view_of

T0 = 1_700_000_000.0
ORDERS = {"orders": 2}
ENDS = {("orders", 0): (0, 100), ("orders", 1): (20, 50)}


def samples(views: list[ClusterView]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = render(views).text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def find(all_samples: dict, name: str, **labels: str) -> float | None:
    want = set(labels.items())
    hits = [v for (n, ls), v in all_samples.items() if n == name and want <= set(ls)]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def test_kafka_exporter_names_with_cluster_label() -> None:
    c = member("consumer-1", ("orders", 0), ("orders", 1))
    v = view_of(
        poll(
            T0,
            topics=ORDERS,
            ends=ENDS,
            groups=[group("g", c)],
            committed={"g": {("orders", 0): 60}},
        )
    )
    s = samples([v])
    assert (
        find(
            s,
            "kafka_consumergroup_lag",
            cluster="c1",
            consumergroup="g",
            topic="orders",
            partition="0",
        )
        == 40
    )
    # Never committed: no lag series at all, and counted.
    assert find(s, "kafka_consumergroup_lag", partition="1") is None
    assert find(s, "kafka_consumergroup_uncommitted_partitions", consumergroup="g") == 1
    assert find(s, "kafka_consumergroup_current_offset", partition="0") == 60
    assert find(s, "kafka_consumergroup_lag_sum", consumergroup="g", topic="orders") == 40
    assert find(s, "kafka_consumergroup_current_offset_sum", topic="orders") == 60
    assert find(s, "kafka_consumergroup_members", consumergroup="g") == 1
    assert find(s, "kafka_consumergroup_max_lag", consumergroup="g") == 40
    assert find(s, "kafka_consumergroup_state", consumergroup="g", state="Stable") == 1
    assert find(s, "kafka_topic_partitions", topic="orders") == 2
    assert find(s, "kafka_topic_partition_current_offset", topic="orders", partition="1") == 50
    assert find(s, "kafka_topic_partition_oldest_offset", topic="orders", partition="1") == 20
    assert find(s, "kafka_brokers", cluster="c1") == 1
    assert find(s, "kafka_consumergroup_member_assigned_partitions", client_id="consumer-1") == 2
    assert (
        find(s, "kafka_consumergroup_partition_assignment", partition="1", client_id="consumer-1")
        == 1
    )
    assert find(s, "lag_exporter_cluster_up", cluster="c1") == 1
    assert find(s, "lag_exporter_poll_kafka_requests", api="Metadata") == 1
    assert find(s, "lag_exporter_polls_total", result="success") == 1
    assert find(s, "lag_exporter_build_info") == 1


def test_series_of_vanished_groups_and_topics_are_gone_next_render() -> None:
    first = view_of(
        poll(T0, topics=ORDERS, ends=ENDS, groups=[group("g")], committed={"g": {("orders", 0): 1}})
    )
    assert find(samples([first]), "kafka_consumergroup_lag", consumergroup="g") == 99
    second = view_of(poll(T0 + 15), first)
    s = samples([second])
    assert not any(name.startswith("kafka_consumergroup") for name, _ in s)
    assert find(s, "kafka_topic_partitions", topic="orders") is None


def test_retention_loss_is_reported_apart_from_lag() -> None:
    v = view_of(
        poll(T0, topics=ORDERS, ends=ENDS, groups=[group("g")], committed={"g": {("orders", 1): 5}})
    )
    s = samples([v])
    assert find(s, "kafka_consumergroup_lag", partition="1") == 30
    assert find(s, "kafka_consumergroup_retention_lost_messages", topic="orders") == 15


def test_constant_labels_and_several_clusters_share_families() -> None:
    a = view_of(poll(T0, topics=ORDERS, ends=ENDS))
    b = ClusterView("c2", {"env": "prod"}, a.brokers, a.topics, a.groups, a.health)
    s = samples([a, b])
    assert find(s, "kafka_topic_partitions", cluster="c2", env="prod") == 2
    assert find(s, "kafka_topic_partitions", cluster="c1", env="") == 2


def test_gzip_form_is_the_same_exposition() -> None:
    view = view_of(poll(T0, topics=ORDERS, ends=ENDS))
    exposition = render([view])
    text = gzip.decompress(exposition.gzipped)
    assert text == render_text(families([view]))  # only the gzip form is kept
    assert len(text) == exposition.size
    pieces = list(exposition.pieces(size=100))
    assert len(pieces) > 1 and all(len(p) <= 100 for p in pieces)
    assert b"".join(pieces) == text == exposition.text


def test_down_cluster_exposes_health_but_no_broker_count() -> None:
    v = view_of(poll(T0, reached=False))
    s = samples([v])
    assert find(s, "lag_exporter_cluster_up", cluster="c1") == 0
    assert find(s, "kafka_brokers", cluster="c1") is None
    assert find(s, "lag_exporter_polls_total", result="failure") == 1


def _granular_views() -> list[ClusterView]:
    c = member("consumer-1", ("orders", 0), ("orders", 1))
    a = view_of(
        poll(
            T0,
            topics=ORDERS,
            ends=ENDS,
            groups=[group("g", c)],
            committed={"g": {("orders", 0): 60, ("orders", 1): 5}},
        )
    )
    b = ClusterView("c2", {}, a.brokers, a.topics, a.groups, a.health)
    c3 = ClusterView("c3", {}, a.brokers, a.topics, a.groups, a.health)
    return [a, b, c3]


def _names(text: str, cluster: str) -> set[str]:
    return {
        s.name
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("cluster") == cluster
    }


def test_granularity_chooses_the_consumer_group_series_per_cluster() -> None:
    views = _granular_views()
    text = render(views, granularity={"c2": "topic", "c3": "group"}).text.decode()
    full, topic, grouped = _names(text, "c1"), _names(text, "c2"), _names(text, "c3")
    per_partition = {
        "kafka_consumergroup_lag",
        "kafka_consumergroup_current_offset",
        "kafka_consumergroup_partition_assignment",
    }
    per_topic = {
        "kafka_consumergroup_lag_sum",
        "kafka_consumergroup_current_offset_sum",
        "kafka_consumergroup_retention_lost_messages",
    }
    per_group = {
        "kafka_consumergroup_max_lag",
        "kafka_consumergroup_members",
        "kafka_consumergroup_state",
        "kafka_consumergroup_info",
        "kafka_consumergroup_stale",
        "kafka_consumergroup_uncommitted_partitions",
        "kafka_consumergroup_member_assigned_partitions",
    }
    topic_series = {
        "kafka_topic_partitions",
        "kafka_topic_partition_current_offset",
        "kafka_topic_partition_oldest_offset",
    }
    assert per_partition | per_topic | per_group | topic_series <= full
    assert not per_partition & topic
    assert per_topic | per_group | topic_series <= topic
    assert not (per_partition | per_topic) & grouped
    assert per_group | topic_series <= grouped
    # The exporter's own series are never cut.
    assert "lag_exporter_group_partitions_tracked" in grouped
    # Sums and maxima are computed from every partition whatever is shown.
    s = {
        (x.name, frozenset(x.labels.items())): x.value
        for family in text_string_to_metric_families(text)
        for x in family.samples
    }
    assert find(s, "kafka_consumergroup_lag_sum", cluster="c2") == 40 + 30
    assert find(s, "kafka_consumergroup_max_lag", cluster="c3") == 40


def test_families_dropped_everywhere_have_no_help_lines() -> None:
    views = _granular_views()
    text = render(views, granularity={"c1": "group", "c2": "group", "c3": "group"}).text.decode()
    assert "kafka_consumergroup_lag " not in text
    assert "# HELP kafka_consumergroup_lag_sum" not in text
    assert "# HELP kafka_consumergroup_max_lag " in text


def test_publish_duration_is_exposed_once_known() -> None:
    v = view_of(poll(T0, topics=ORDERS, ends=ENDS))
    assert find(samples([v]), "lag_exporter_publish_duration_seconds") is None
    timed = replace(v, health=replace(v.health, last_publish_duration=1.25))
    assert find(samples([timed]), "lag_exporter_publish_duration_seconds", cluster="c1") == 1.25
