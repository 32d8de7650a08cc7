"""The `plan` report, as text and JSON, from views built of plain values."""

import json
import re

import pytest

from lag_exporter.cli import EXIT_CONFIG, main
from lag_exporter.plan import KAFKA_RULES, Run, plan_document, plan_text

from .simulate import Consumer, Simulation, retry_view, slow_consumer_view

RUN = Run(polls=25, duration=120.0, interval=5.0)


def test_plan_text_explains_the_numbers_and_the_rules() -> None:
    text = plan_text([slow_consumer_view()], RUN)
    assert "cluster c1: 25 polls over 120 s (every 5 s), headroom 1.2" in text
    assert "topic orders (2 partitions): 30.0 msg/s produced" in text
    assert re.search(r"capacity 10\.\d msg/s per consumer", text)
    assert re.search(r"needed 4 partitions \(have 2\), 4 consumers \(have 1\) = ceil", text)
    assert "=> add_partitions: needs 4 partitions, has 2: add 2 and run 4 consumers" in text
    for rule in KAFKA_RULES:
        assert rule in text


def test_plan_text_lists_idle_members_and_retry_topics() -> None:
    text = plan_text([retry_view()], RUN)
    assert "g: 2 of 3 members idle (c2, c3): more consumers than partitions" in text
    assert "retry pay-retry-1000: 2.0 msg/s in, backlog 50" in text
    assert "dead letters pay.DLT: 20 messages, 0.5 msg/s in" in text
    assert "pay (main topic not found)" in text


def test_plan_says_when_it_has_too_little_data() -> None:
    view = Simulation("orders", {0: 5.0}, [Consumer("c1", 10.0, [("orders", 0)])]).run(0)
    text = plan_text([view], Run(polls=1, duration=0.0, interval=5.0))
    assert "not enough polls" in text
    assert "not_enough_data" in text and "no number is given rather than a guess" in text


def test_plan_document_is_json() -> None:
    doc = json.loads(json.dumps(plan_document([slow_consumer_view(), retry_view()], RUN)))
    assert doc["polls"] == 25 and doc["kafka_rules"] == list(KAFKA_RULES)
    first, second = doc["clusters"]
    (topic,) = first["topics"]
    (advice,) = topic["groups"]
    assert advice["verdict"] == "add_partitions"
    assert (advice["partitions"], advice["partitions_needed"], advice["consumers_needed"]) == (
        2,
        4,
        4,
    )
    assert advice["capacity_method"] == "member"
    assert topic["partition_rates"]["0"]["share"] == pytest.approx(0.5, abs=0.02)
    (g,) = second["groups"]
    assert [m["client_id"] for m in g["idle_members"]] == ["c2", "c3"]
    (r,) = second["retry_topics"]
    assert r["main_topic"] == "pay" and r["dead_letter_messages"] == 20


def test_plan_flags_are_checked_before_anything_is_polled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "--bootstrap-servers", "k:9092", "--duration", "soon"]) == EXIT_CONFIG
    assert "--duration" in capsys.readouterr().err
    assert main(["plan", "--bootstrap-servers", "k:9092", "--poll-interval", "0s"]) == EXIT_CONFIG
    assert "--poll-interval" in capsys.readouterr().err
