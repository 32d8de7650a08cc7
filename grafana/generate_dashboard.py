"""Writes grafana/dashboards/kafka-consumer-lag.json.

The dashboard is data; this script is where it is edited, so that panels stay
consistent (datasource, variables, units) and a test can check the committed
JSON is what this script produces. Run: python grafana/generate_dashboard.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards" / "kafka-consumer-lag.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
C = 'cluster=~"$cluster"'
G = 'consumergroup=~"$consumergroup"'
T = 'topic=~"$topic"'
CGT = f"{C}, {G}, {T}"

_next_id = 0


def _id() -> int:
    global _next_id
    _next_id += 1
    return _next_id


def target(
    expr: str, legend: str = "", *, instant: bool = False, table: bool = False
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": "ABCDEFGH"[0],
    }
    if instant:
        t["instant"] = True
        t["range"] = False
    if table:
        t["format"] = "table"
    return t


def panel(
    kind: str,
    title: str,
    targets: list[dict[str, Any]],
    x: int,
    y: int,
    w: int,
    h: int,
    *,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    options: dict[str, Any] | None = None,
    transformations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    for i, t in enumerate(targets):
        t["refId"] = "ABCDEFGH"[i]
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    p: dict[str, Any] = {
        "id": _id(),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": options or {},
    }
    if transformations:
        p["transformations"] = transformations
    return p


def row(title: str, y: int) -> dict[str, Any]:
    return {
        "id": _id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-query"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


LAG_THRESHOLDS: list[tuple[float | None, str]] = [(None, "green"), (1000, "orange"), (10000, "red")]
SECONDS_THRESHOLDS: list[tuple[float | None, str]] = [(None, "green"), (60, "orange"), (300, "red")]
TABLE_HIDE = {
    "id": "organize",
    "options": {"excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True}},
}


def panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    y = 0
    out.append(row("Overview", y))
    y += 1
    out += [
        panel(
            "stat",
            "Total lag",
            [target(f"sum(kafka_consumergroup_lag_sum{{{CGT}}})")],
            0,
            y,
            4,
            4,
            unit="short",
            thresholds=LAG_THRESHOLDS,
            description="Messages not yet consumed, over the selected groups and topics.",
        ),
        panel(
            "stat",
            "Worst lag in seconds",
            [target(f"max(kafka_consumergroup_max_lag_seconds{{{C}, {G}}})")],
            4,
            y,
            4,
            4,
            unit="s",
            thresholds=SECONDS_THRESHOLDS,
            description="Age of the oldest unconsumed message (accurate to one poll interval).",
        ),
        panel(
            "piechart",
            "Groups by state",
            [
                target(
                    f"count by (state) (kafka_consumergroup_state{{{C}, {G}}})",
                    "{{state}}",
                    instant=True,
                )
            ],
            8,
            y,
            5,
            8,
            options={
                "reduceOptions": {"calcs": ["lastNotNull"]},
                "legend": {"displayMode": "table", "placement": "right"},
            },
        ),
        panel(
            "piechart",
            "Groups by status",
            [
                target(
                    f"count by (status) (kafka_consumergroup_group_status{{{C}, {G}}})",
                    "{{status}}",
                    instant=True,
                )
            ],
            13,
            y,
            5,
            8,
            options={
                "reduceOptions": {"calcs": ["lastNotNull"]},
                "legend": {"displayMode": "table", "placement": "right"},
            },
            description="OK, WARN (lag growing across the window) or ERR (a partition STOP, "
            "STALL or REWIND).",
        ),
        panel(
            "stat",
            "Firing alerts",
            [target('sum(lag_exporter_alerts{state="firing"})')],
            18,
            y,
            3,
            4,
            thresholds=[(None, "green"), (1, "red")],
            description="Alerts the exporter's own rules are firing (see /api/v1/alerts).",
        ),
        panel(
            "stat",
            "Clusters up",
            [target(f"sum(lag_exporter_cluster_up{{{C}}})")],
            21,
            y,
            3,
            4,
            thresholds=[(None, "red"), (1, "green")],
        ),
        panel(
            "bargauge",
            "Worst groups by lag",
            [
                target(
                    f"topk(10, max by (cluster, consumergroup) "
                    f"(kafka_consumergroup_max_lag{{{C}, {G}}}))",
                    "{{cluster}} / {{consumergroup}}",
                    instant=True,
                )
            ],
            0,
            y + 4,
            4,
            4,
            thresholds=LAG_THRESHOLDS,
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        panel(
            "bargauge",
            "Worst groups by lag in seconds",
            [
                target(
                    f"topk(10, max by (cluster, consumergroup) "
                    f"(kafka_consumergroup_max_lag_seconds{{{C}, {G}}}))",
                    "{{cluster}} / {{consumergroup}}",
                    instant=True,
                )
            ],
            4,
            y + 4,
            4,
            4,
            unit="s",
            thresholds=SECONDS_THRESHOLDS,
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        panel(
            "table",
            "Alerts by rule",
            [target("sum by (rule, state) (lag_exporter_alerts)", instant=True, table=True)],
            18,
            y + 4,
            6,
            4,
            transformations=[TABLE_HIDE],
            description="Pending and firing alerts of each of the exporter's rules.",
        ),
    ]
    y += 8
    out.append(row("Consumer groups", y))
    y += 1
    out += [
        panel(
            "timeseries",
            "Lag per topic",
            [
                target(
                    f"sum by (consumergroup, topic) (kafka_consumergroup_lag_sum{{{CGT}}})",
                    "{{consumergroup}} / {{topic}}",
                )
            ],
            0,
            y,
            12,
            8,
            thresholds=LAG_THRESHOLDS,
        ),
        panel(
            "timeseries",
            "Lag in seconds per partition",
            [
                target(
                    f"kafka_consumergroup_lag_seconds{{{CGT}}}",
                    "{{consumergroup}} / {{topic}}-{{partition}}",
                )
            ],
            12,
            y,
            12,
            8,
            unit="s",
            thresholds=SECONDS_THRESHOLDS,
        ),
        panel(
            "timeseries",
            "Lag per partition",
            [
                target(
                    f"kafka_consumergroup_lag{{{CGT}}}",
                    "{{consumergroup}} / {{topic}}-{{partition}}",
                )
            ],
            0,
            y + 8,
            12,
            8,
            thresholds=LAG_THRESHOLDS,
        ),
        panel(
            "timeseries",
            "Consumption vs production (messages/s)",
            [
                target(
                    f"sum by (consumergroup, topic) "
                    f"(rate(kafka_consumergroup_current_offset{{{CGT}}}[$__rate_interval]))",
                    "consumed {{consumergroup}} / {{topic}}",
                ),
                target(
                    f"sum by (topic) (rate(kafka_topic_partition_current_offset{{{C}, {T}}}"
                    f"[$__rate_interval]))",
                    "produced {{topic}}",
                ),
            ],
            12,
            y + 8,
            12,
            8,
            unit="short",
            description="From offsets: when consumption stays below production, lag grows.",
        ),
        panel(
            "timeseries",
            "Estimated time to catch up",
            [
                target(
                    f"kafka_consumergroup_catchup_seconds{{{CGT}}}", "{{consumergroup}} / {{topic}}"
                )
            ],
            0,
            y + 16,
            8,
            8,
            unit="s",
            description="lag / (consumption - production); absent while a group is not "
            "catching up.",
        ),
        panel(
            "table",
            "Members and assignment",
            [
                target(
                    f"kafka_consumergroup_partition_assignment{{{CGT}}}", instant=True, table=True
                )
            ],
            8,
            y + 16,
            10,
            8,
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "Value": True,
                            "__name__": True,
                            "instance": True,
                            "job": True,
                        }
                    },
                }
            ],
        ),
        panel(
            "stat",
            "Members",
            [
                target(
                    f"sum by (consumergroup) (kafka_consumergroup_members{{{C}, {G}}})",
                    "{{consumergroup}}",
                )
            ],
            18,
            y + 16,
            6,
            4,
        ),
        panel(
            "table",
            "Partition status",
            [target(f"kafka_consumergroup_status{{{CGT}}}", instant=True, table=True)],
            18,
            y + 20,
            6,
            4,
            transformations=[TABLE_HIDE],
            description="STOP: nothing consumes; STALL: a consumer holds the partition "
            "but its offset does not move; REWIND: offset went back; WARN: lag "
            "growing across the window.",
        ),
    ]
    y += 24
    out.append(row("Topics", y))
    y += 1
    out += [
        panel(
            "timeseries",
            "Production rate (messages/s)",
            [
                target(
                    f"sum by (topic) (rate(kafka_topic_partition_current_offset{{{C}, {T}}}"
                    f"[$__rate_interval]))",
                    "{{topic}}",
                )
            ],
            0,
            y,
            10,
            8,
        ),
        panel(
            "timeseries",
            "Production rate per partition (messages/s)",
            [
                target(
                    f"kafka_topic_partition_messages_in_per_second{{{C}, {T}}}",
                    "{{topic}}-{{partition}}",
                )
            ],
            10,
            y,
            10,
            8,
            description="One partition far above the others is the mark of a hot key.",
        ),
        panel(
            "table",
            "Partitions",
            [target(f"kafka_topic_partitions{{{C}, {T}}}", instant=True, table=True)],
            20,
            y,
            4,
            8,
            transformations=[TABLE_HIDE],
        ),
    ]
    y += 8
    out.append(row("Partitioning", y))
    y += 1
    out += [
        panel(
            "table",
            "Partition advice",
            [
                target(
                    f"kafka_consumergroup_partition_advice{{{CGT}}} == 1", instant=True, table=True
                ),
            ],
            0,
            y,
            10,
            8,
            transformations=[TABLE_HIDE],
            description="The verdict per group and topic (kafka_consumergroup_partitions_needed "
            "has the number) = ceil(production rate x headroom / capacity "
            "measured while the consumers had a backlog); `lag-exporter plan` explains each "
            "verdict. Partitions can be added but never removed, and adding them remaps keys.",
        ),
        panel(
            "timeseries",
            "Production share per partition",
            [
                target(
                    f"kafka_topic_partition_production_share{{{C}, {T}}}", "{{topic}}-{{partition}}"
                )
            ],
            10,
            y,
            8,
            8,
            unit="percentunit",
            description="A partition with far more than its fair share is hot: a dominant "
            "key (same key, same partition). More partitions do not split one key.",
        ),
        panel(
            "stat",
            "Idle members",
            [
                target(
                    f"sum by (consumergroup) (kafka_consumergroup_idle_members{{{C}, {G}}})",
                    "{{consumergroup}}",
                )
            ],
            18,
            y,
            6,
            4,
            thresholds=[(None, "green"), (1, "orange")],
            description="Members that own no partition: more consumers (or threads, e.g. "
            "concurrency=3) than partitions.",
        ),
        panel(
            "table",
            "Dead-letter and retry topics",
            [
                target(f"kafka_topic_dead_letter_messages{{{C}}}", instant=True, table=True),
                target(f"kafka_consumergroup_retry_lag{{{C}, {G}}}", instant=True, table=True),
            ],
            18,
            y + 4,
            6,
            4,
            transformations=[TABLE_HIDE],
            description="Messages in dead-letter topics and retries waiting, by main topic.",
        ),
    ]
    y += 8
    out.append(row("Exporter", y))
    y += 1
    out += [
        panel(
            "timeseries",
            "Poll duration",
            [target(f"lag_exporter_poll_duration_seconds{{{C}}}", "{{cluster}}")],
            0,
            y,
            6,
            6,
            unit="s",
        ),
        panel(
            "timeseries",
            "Poll errors (per second)",
            [
                target(
                    f"sum by (cluster, kind) (rate(lag_exporter_poll_errors_total{{{C}}}"
                    f"[$__rate_interval]))",
                    "{{cluster}} {{kind}}",
                )
            ],
            6,
            y,
            6,
            6,
        ),
        panel(
            "stat",
            "Time since last successful poll",
            [
                target(
                    f"time() - lag_exporter_last_successful_poll_timestamp_seconds{{{C}}}",
                    "{{cluster}}",
                )
            ],
            12,
            y,
            4,
            6,
            unit="s",
            thresholds=[(None, "green"), (60, "orange"), (300, "red")],
        ),
        panel(
            "timeseries",
            "Kafka requests per poll",
            [target(f"sum by (api) (lag_exporter_poll_kafka_requests{{{C}}})", "{{api}}")],
            16,
            y,
            4,
            6,
        ),
        panel(
            "stat",
            "Tracked",
            [
                target(f"sum(lag_exporter_groups_tracked{{{C}}})", "groups"),
                target(f"sum(lag_exporter_group_partitions_tracked{{{C}}})", "group partitions"),
            ],
            20,
            y,
            4,
            6,
        ),
    ]
    return out


def dashboard() -> dict[str, Any]:
    return {
        "uid": "kafka-consumer-lag",
        "title": "Kafka consumer lag",
        "description": "Consumer-group lag, lag in seconds, status and rates from lag-exporter.",
        "tags": ["kafka", "consumer-lag", "lag-exporter"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable("cluster", "Cluster", "label_values(lag_exporter_cluster_up, cluster)"),
                variable(
                    "consumergroup",
                    "Consumer group",
                    'label_values(kafka_consumergroup_state{cluster=~"$cluster"}, consumergroup)',
                ),
                variable(
                    "topic",
                    "Topic",
                    'label_values(kafka_topic_partitions{cluster=~"$cluster"}, topic)',
                ),
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels(),
    }


def render() -> str:
    global _next_id
    _next_id = 0
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
