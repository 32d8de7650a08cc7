from types import SimpleNamespace

from lag_exporter.kafka.collector import merge_listings


def entry(group_id: str, state: str = "Stable") -> SimpleNamespace:
    return SimpleNamespace(group_id=group_id, group_state=state, protocol_type="consumer")


def test_a_group_listed_by_two_brokers_is_reported_once() -> None:
    broker1 = [entry("orders"), entry("billing")]
    broker2 = [entry("orders", "PreparingRebalance"), entry("audit")]
    merged = merge_listings([broker1, broker2], lambda g: True)
    assert sorted(merged) == ["audit", "billing", "orders"]
    assert merged["orders"].group_state == "Stable"


def test_filter_applies_before_anything_else() -> None:
    merged = merge_listings([[entry("orders"), entry("orders-test")]], lambda g: "test" not in g)
    assert list(merged) == ["orders"]
