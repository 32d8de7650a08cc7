"""SIGHUP reloads the configuration of a running exporter; a bad one changes nothing."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import yaml

from localkafka import KafkaBroker

from .conftest import Exporter, Kafka, value, wait_until


def _cluster(name: str, bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kafka": {"bootstrap.servers": bootstrap}, **extra}


def _reload(exporter: Exporter, doc: dict[str, Any] | str, count: int) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    exporter.config_path.write_text(text)
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: (
            exporter.log().count("received SIGHUP") >= count
            and exporter.log().count("configuration reload") >= count
        ),
        what=f"reload {count} handled",
    )


def _polls(exporter: Exporter, cluster: str) -> float:
    return (
        value(exporter.metrics(), "lag_exporter_polls_total", cluster=cluster, result="success")
        or 0
    )


def test_sighup_reload(
    broker: KafkaBroker,
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    topic = kafka.create_topic(unique("t"), partitions=1)
    group = unique("g")
    kafka.produce(topic, 10)
    kafka.commit(group, {(topic, 0): 6})
    base: dict[str, Any] = {
        "poll_interval": "500ms",
        "clusters": [_cluster("a", broker.bootstrap), _cluster("b", broker.bootstrap)],
    }
    exporter = start_exporter(config=base)
    listen = yaml.safe_load(exporter.config_path.read_text())["listen_address"]

    def lag(cluster: str) -> float | None:
        return value(
            exporter.metrics(), "kafka_consumergroup_lag", cluster=cluster, consumergroup=group
        )

    wait_until(lambda: lag("a") == 4 and lag("b") == 4, what="both clusters polled")
    polls_a = _polls(exporter, "a")

    # b removed, c added, a unchanged: a keeps its poller (its counters go on).
    changed = {
        "poll_interval": "500ms",
        "listen_address": listen,
        "clusters": [
            _cluster("a", broker.bootstrap),
            _cluster("c", broker.bootstrap, labels={"env": "new"}),
        ],
    }
    _reload(exporter, changed, 1)
    wait_until(lambda: lag("c") == 4 and lag("b") is None, what="c polled and b gone")
    assert _polls(exporter, "a") > polls_a  # never restarted from zero
    assert value(exporter.metrics(), "lag_exporter_cluster_up", cluster="b") is None
    log = exporter.log()
    assert "removed cluster b" in log and "added cluster c" in log
    assert "restarted cluster a" not in log

    # Invalid: the running configuration stays, with the reason logged.
    _reload(exporter, "clusters:\n  - name: a\n    kafka: {}\n", 2)
    assert "configuration reload failed, the running configuration stays" in exporter.log()
    assert "bootstrap.servers: required" in exporter.log()
    exporter.wait_polls(2)
    assert lag("a") == 4 and lag("c") == 4
    _reload(exporter, "clusters: [", 3)
    assert exporter.log().count("configuration reload failed") == 2

    # A changed cluster is restarted; a changed listen address needs a restart and is ignored.
    polls_a = _polls(exporter, "a")
    changed["clusters"][0]["labels"] = {"team": "x"}
    changed["listen_address"] = "127.0.0.1:1"
    _reload(exporter, changed, 4)
    wait_until(
        lambda: (
            value(
                exporter.metrics(),
                "kafka_consumergroup_lag",
                cluster="a",
                consumergroup=group,
                team="x",
            )
            == 4
        ),
        what="a polled with its new label",
    )
    log = exporter.log()
    assert "restarted cluster a" in log
    assert "listen_address changed" in log
    assert _polls(exporter, "a") >= polls_a  # the view carried over: counters never go back
    assert exporter.get("/healthz")[0] == 200
    assert exporter.process.poll() is None
