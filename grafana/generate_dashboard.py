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

from lag_exporter.status import STATUS_CODES

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
    mappings: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    color: str | None = None,
    custom: dict[str, Any] | None = None,
) -> dict[str, Any]:
    for i, t in enumerate(targets):
        t["refId"] = "ABCDEFGH"[i]
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if mappings:
        defaults["mappings"] = mappings
    if color:
        defaults["color"] = {"mode": "fixed", "fixedColor": color}
    elif thresholds:
        defaults["color"] = {"mode": "thresholds"}
    if custom:
        defaults["custom"] = custom
    p: dict[str, Any] = {
        "id": _id(),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
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


# Thresholds follow the bundled alert rules (prometheus/rules/lag-exporter.yml):
# red where a rule fires, orange from half of it. The lag rule looks at the
# largest partition (kafka_consumergroup_max_lag > 10000), so the lag
# thresholds colour that number, never a sum over partitions or groups.
LAG_ALERT = 10_000
LAG_SECONDS_ALERT = 300
LAG_THRESHOLDS: list[tuple[float | None, str]] = [
    (None, "green"),
    (LAG_ALERT / 2, "orange"),
    (LAG_ALERT, "red"),
]
SECONDS_THRESHOLDS: list[tuple[float | None, str]] = [
    (None, "green"),
    (LAG_SECONDS_ALERT / 2, "orange"),
    (LAG_SECONDS_ALERT, "red"),
]
ANY_THRESHOLDS: list[tuple[float | None, str]] = [(None, "green"), (1, "red")]
MSG_RATE = "suffix: msg/s"
DURATION = "dtdurations"  # 1 hour, 5 minutes: durations in words
STATUS_COLOURS = {
    "OK": "green",
    "WARN": "yellow",
    "ERR": "red",
    "STOP": "red",
    "STALL": "red",
    "REWIND": "purple",
}
# Burrow's numeric codes (lag_exporter.status.STATUS_CODES) as words and colours.
STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            str(code): {"text": str(status), "color": STATUS_COLOURS[str(status)], "index": i}
            for i, (status, code) in enumerate(STATUS_CODES.items())
        },
    }
]
TABLE_HIDE = {
    "id": "organize",
    "options": {"excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True}},
}
# Where a table shows a group, its name links to the exporter's page of the
# group ($exporter_url, a dashboard variable) and to this dashboard for that
# group alone.
GROUP_LINKS = [
    {
        "title": "Open ${__value.raw} in lag-exporter",
        "url": "${exporter_url}/group?cluster=${__data.fields.cluster:percentencode}"
        "&group=${__value.raw:percentencode}",
        "targetBlank": True,
    },
    {
        "title": "Drill down to ${__value.raw}",
        "url": "/d/kafka-consumer-lag/kafka-consumer-lag?var-cluster=${__data.fields.cluster}"
        "&var-consumergroup=${__value.raw}&${datasource:queryparam}&${__url_time_range}",
    },
]


def _steps(thresholds: list[tuple[float | None, str]]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in thresholds],
    }


def group_links(field: str = "consumergroup") -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": "links", "value": GROUP_LINKS}],
    }


def status_column(field: str) -> dict[str, Any]:
    """A table column of status codes shown as coloured words."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {"id": "mappings", "value": STATUS_MAPPINGS},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }


def state_timeline(
    title: str, expr: str, legend: str, x: int, y: int, w: int, h: int, description: str
) -> dict[str, Any]:
    return panel(
        "state-timeline",
        title,
        [target(expr, legend)],
        x,
        y,
        w,
        h,
        unit="none",
        mappings=STATUS_MAPPINGS,
        custom={"fillOpacity": 80, "lineWidth": 0},
        options={
            "mergeValues": True,
            "showValue": "auto",
            "alignValue": "left",
            "rowHeight": 0.85,
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "single"},
        },
        description=description,
    )


def panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    y = 0
    out.append(row("Now", y))
    y += 1
    out += [
        panel(
            "stat",
            "Groups in ERR",
            [target(f"count(kafka_consumergroup_group_status{{{C}, {G}}} == 3) or vector(0)")],
            0,
            y,
            3,
            4,
            thresholds=ANY_THRESHOLDS,
            description="A partition STOP (nothing consumes), STALL (a consumer holds it but "
            "does not move) or REWIND (its committed offset went back).",
        ),
        panel(
            "stat",
            "Groups in WARN",
            [target(f"count(kafka_consumergroup_group_status{{{C}, {G}}} == 2) or vector(0)")],
            3,
            y,
            3,
            4,
            thresholds=[(None, "green"), (1, "yellow")],
            description="Lag grew across the whole status window while the consumer commits.",
        ),
        panel(
            "stat",
            "Largest partition lag",
            [target(f"max(kafka_consumergroup_max_lag{{{C}, {G}}})")],
            6,
            y,
            4,
            4,
            thresholds=LAG_THRESHOLDS,
            description=f"What KafkaConsumerGroupLagHigh looks at: red above {LAG_ALERT:,} "
            "messages on one partition.",
        ),
        panel(
            "stat",
            "Worst lag in seconds",
            [target(f"max(kafka_consumergroup_max_lag_seconds{{{C}, {G}}})")],
            10,
            y,
            4,
            4,
            unit=DURATION,
            thresholds=SECONDS_THRESHOLDS,
            description="Age of the oldest unconsumed message (accurate to one poll interval); "
            f"KafkaConsumerGroupLagSecondsHigh fires above {LAG_SECONDS_ALERT} s.",
        ),
        panel(
            "stat",
            "Total lag",
            [target(f"sum(kafka_consumergroup:lag:sum{{{C}, {G}}})")],
            14,
            y,
            3,
            4,
            color="blue",
            description="Messages not yet consumed, over the selected groups. No colour: no "
            "alert looks at the sum.",
        ),
        panel(
            "stat",
            "Firing alerts",
            [
                target('sum(lag_exporter_alerts{state="firing"}) or vector(0)', "exporter"),
                target('count(ALERTS{alertstate="firing"}) or vector(0)', "Prometheus"),
            ],
            17,
            y,
            4,
            4,
            thresholds=ANY_THRESHOLDS,
            options={"textMode": "value_and_name", "colorMode": "background"},
            description="The exporter's own rules (/api/v1/alerts) and Prometheus' rules (ALERTS).",
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
    ]
    y += 4
    out += [
        state_timeline(
            "Group status",
            f"max by (cluster, consumergroup) (kafka_consumergroup_group_status{{{C}, {G}}})",
            "{{consumergroup}}",
            0,
            y,
            12,
            8,
            "OK green, WARN yellow, ERR red, over time: a group that went OK -> ERR -> OK "
            "shows the red stretch.",
        ),
        state_timeline(
            "Partition status",
            f"max by (cluster, consumergroup, topic, partition) "
            f"(kafka_consumergroup_status{{{CGT}}})",
            "{{consumergroup}} {{topic}}-{{partition}}",
            12,
            y,
            12,
            8,
            "STOP: nothing consumes; STALL: a consumer holds the partition but its offset "
            "does not move; REWIND (purple): the offset went back; WARN: lag growing across "
            "the window.",
        ),
    ]
    y += 8
    out += [
        panel(
            "table",
            "Groups, worst first",
            [
                target(
                    f"max by (cluster, consumergroup) "
                    f"(kafka_consumergroup_group_status{{{C}, {G}}})",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (cluster, consumergroup) (kafka_consumergroup_max_lag{{{C}, {G}}})",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (cluster, consumergroup) "
                    f"(kafka_consumergroup_max_lag_seconds{{{C}, {G}}})",
                    instant=True,
                    table=True,
                ),
                target(
                    f"sum by (cluster, consumergroup) (kafka_consumergroup_members{{{C}, {G}}})",
                    instant=True,
                    table=True,
                ),
            ],
            0,
            y,
            14,
            8,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "status",
                            "Value #B": "largest partition lag",
                            "Value #C": "lag seconds",
                            "Value #D": "members",
                        },
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "status", "desc": True}]}},
            ],
            overrides=[
                status_column("status"),
                group_links(),
                {
                    "matcher": {"id": "byName", "options": "lag seconds"},
                    "properties": [
                        {"id": "unit", "value": DURATION},
                        {"id": "thresholds", "value": _steps(SECONDS_THRESHOLDS)},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "largest partition lag"},
                    "properties": [
                        {"id": "thresholds", "value": _steps(LAG_THRESHOLDS)},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
            ],
            description="Click a group: its page in lag-exporter (set the exporter URL "
            "variable), or this dashboard for that group alone.",
        ),
        panel(
            "table",
            "Firing and pending alerts",
            [
                target(
                    f"sum by (alertname, alertstate, severity, cluster, consumergroup) "
                    f"(ALERTS{{{C}}})",
                    instant=True,
                    table=True,
                ),
                target(
                    'sum by (rule, state) (lag_exporter_alerts{state="firing"}) > 0 '
                    'or sum by (rule, state) (lag_exporter_alerts{state="pending"})',
                    instant=True,
                    table=True,
                ),
            ],
            14,
            y,
            10,
            8,
            transformations=[TABLE_HIDE],
            overrides=[group_links()],
            description="Prometheus' alerts (ALERTS, from the bundled rules) and the "
            "exporter's own, by rule.",
        ),
    ]
    y += 8
    out.append(row("Lag", y))
    y += 1
    out += [
        panel(
            "timeseries",
            "Lag per group",
            [
                target(
                    f"kafka_consumergroup:lag:sum{{{C}, {G}}}",
                    "{{consumergroup}}",
                )
            ],
            0,
            y,
            12,
            8,
            description="Messages behind, summed over the group's partitions (recording "
            "rule kafka_consumergroup:lag:sum).",
        ),
        panel(
            "timeseries",
            "Lag trend (messages/s)",
            [target(f"kafka_consumergroup:lag:deriv10m{{{C}, {G}}}", "{{consumergroup}}")],
            12,
            y,
            12,
            8,
            unit=MSG_RATE,
            thresholds=[(None, "green"), (0.001, "red")],
            custom={"thresholdsStyle": {"mode": "area"}},
            description="How fast lag grows (above 0, red) or shrinks: the recording rule "
            "kafka_consumergroup:lag:deriv10m that KafkaConsumerGroupLagGrowing uses.",
        ),
        panel(
            "timeseries",
            "Largest partition lag per group",
            [
                target(
                    f"max by (cluster, consumergroup) (kafka_consumergroup_max_lag{{{C}, {G}}})",
                    "{{consumergroup}}",
                )
            ],
            0,
            y + 8,
            12,
            8,
            thresholds=LAG_THRESHOLDS,
            custom={"thresholdsStyle": {"mode": "line+area"}},
        ),
        panel(
            "timeseries",
            "Lag in seconds per group",
            [
                target(
                    f"max by (cluster, consumergroup) "
                    f"(kafka_consumergroup_max_lag_seconds{{{C}, {G}}})",
                    "{{consumergroup}}",
                )
            ],
            12,
            y + 8,
            12,
            8,
            unit="s",
            thresholds=SECONDS_THRESHOLDS,
            custom={"thresholdsStyle": {"mode": "line+area"}},
        ),
        panel(
            "timeseries",
            "Consumption vs production",
            [
                target(
                    f"sum by (consumergroup, topic) "
                    f"(kafka_consumergroup_topic:messages_consumed:rate5m{{{CGT}}})",
                    "consumed {{consumergroup}} / {{topic}}",
                ),
                target(
                    f"sum by (topic) (kafka_topic:messages_in:rate5m{{{C}, {T}}})",
                    "produced {{topic}}",
                ),
            ],
            0,
            y + 16,
            12,
            8,
            unit=MSG_RATE,
            description="From offsets (5-minute rates): when consumption stays below "
            "production, lag grows.",
        ),
        panel(
            "timeseries",
            "Time to catch up",
            [
                target(
                    f"kafka_consumergroup_catchup_seconds{{{CGT}}}", "{{consumergroup}} / {{topic}}"
                )
            ],
            12,
            y + 16,
            12,
            8,
            unit="s",
            description="lag / (consumption - production); absent while a group is not "
            "catching up.",
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
            y + 24,
            12,
            8,
            thresholds=LAG_THRESHOLDS,
            custom={"thresholdsStyle": {"mode": "line"}},
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
            y + 24,
            12,
            8,
            unit="s",
            thresholds=SECONDS_THRESHOLDS,
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
    ]
    y += 32
    out.append(row("Members", y))
    y += 1
    no_members_growing = (
        f"(sum by (cluster, consumergroup) (kafka_consumergroup_members{{{C}, {G}}}) == 0) "
        "and on (cluster, consumergroup) (kafka_consumergroup:lag:deriv10m > 0)"
    )
    out += [
        panel(
            "stat",
            "Members",
            [
                target(
                    f"sum by (cluster, consumergroup) (kafka_consumergroup_members{{{C}, {G}}}) "
                    f"unless on (cluster, consumergroup) ({no_members_growing})",
                    "{{consumergroup}}",
                ),
                target(no_members_growing, "{{consumergroup}}: no members, lag growing"),
            ],
            0,
            y,
            8,
            8,
            color="green",
            overrides=[
                {
                    "matcher": {"id": "byFrameRefID", "options": "B"},
                    "properties": [
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}
                    ],
                }
            ],
            options={"textMode": "value_and_name", "colorMode": "background"},
            description="Red: no member while lag grows (KafkaConsumerGroupNoMembersLagGrowing); "
            "a group without members and without new messages is fine.",
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
            y,
            16,
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
            overrides=[group_links()],
        ),
    ]
    y += 8
    out.append(row("Data quality", y))
    y += 1
    out += [
        panel(
            "stat",
            "Messages lost to retention",
            [target(f"sum(kafka_consumergroup_retention_lost_messages{{{CGT}}}) or vector(0)")],
            0,
            y,
            4,
            4,
            thresholds=ANY_THRESHOLDS,
            description="Deleted by retention before the group consumed them.",
        ),
        panel(
            "stat",
            "Stale groups",
            [target(f"sum(kafka_consumergroup_stale{{{C}, {G}}}) or vector(0)")],
            4,
            y,
            4,
            4,
            thresholds=[(None, "green"), (1, "orange")],
            description="Groups whose offsets the last poll could not read: shown as last read.",
        ),
        panel(
            "stat",
            "Uncommitted partitions",
            [target(f"sum(kafka_consumergroup_uncommitted_partitions{{{C}, {G}}}) or vector(0)")],
            8,
            y,
            4,
            4,
            thresholds=[(None, "green"), (1, "orange")],
            description="Partitions a group's members own without a committed offset: no lag "
            "is reported for them.",
        ),
        panel(
            "stat",
            "Lag seconds that are a lower bound",
            [
                target(
                    f"count(kafka_consumergroup_lag_seconds_is_lower_bound{{{CGT}}} == 1) "
                    "or vector(0)"
                )
            ],
            12,
            y,
            4,
            4,
            thresholds=[(None, "green"), (1, "orange")],
            description="Partitions whose committed offset is older than the kept history: "
            "their lag in seconds is at least the value shown.",
        ),
        panel(
            "stat",
            "Committed past log end",
            [target(f"count(kafka_consumergroup_offset_past_log_end{{{CGT}}}) or vector(0)")],
            16,
            y,
            4,
            4,
            thresholds=ANY_THRESHOLDS,
            description="Committed offsets beyond the log end (topic re-created or truncated): "
            "lag is reported as 0 there.",
        ),
        panel(
            "stat",
            "Notification failures",
            [
                target(
                    'sum(increase(lag_exporter_notifications_total{result="failed"}[$__range])) '
                    "or vector(0)",
                    "failed",
                ),
                target("sum(lag_exporter_notifications_failing) or vector(0)", "notifiers failing"),
            ],
            20,
            y,
            4,
            4,
            thresholds=ANY_THRESHOLDS,
            options={"textMode": "value_and_name"},
            description="Alert notifications that could not be delivered in the time range, "
            "and notifiers failing now.",
        ),
    ]
    y += 4
    out.append(row("Topics", y))
    y += 1
    out += [
        panel(
            "timeseries",
            "Production rate",
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
            unit=MSG_RATE,
        ),
        panel(
            "timeseries",
            "Production rate per partition",
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
            unit=MSG_RATE,
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
            overrides=[group_links()],
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
            overrides=[group_links()],
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
            "Poll errors",
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
            unit="suffix: errors/s",
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
            unit=DURATION,
            thresholds=[(None, "green"), (60, "orange"), (120, "red")],
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
                {
                    # Where people open the exporter's own pages: the group links
                    # of the tables and the dashboard link go there.
                    "name": "exporter_url",
                    "label": "Exporter URL",
                    "type": "textbox",
                    "query": "http://localhost:9308",
                    "current": {"text": "http://localhost:9308", "value": "http://localhost:9308"},
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "links": [
            {
                "title": "lag-exporter overview",
                "type": "link",
                "url": "${exporter_url}/",
                "targetBlank": True,
                "icon": "external link",
            }
        ],
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
