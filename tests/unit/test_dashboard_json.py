"""Static checks of the Grafana dashboard; tests/integration/test_dashboard.py runs
every query against a real Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "kafka-consumer-lag.json"


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def test_committed_json_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, "grafana/generate_dashboard.py", "--check"], cwd=ROOT, check=False
    )
    assert result.returncode == 0, "run: python grafana/generate_dashboard.py"


def test_importable_shape() -> None:
    doc = load()
    assert doc["uid"] == "kafka-consumer-lag"
    assert {"kafka", "consumer-lag"} <= set(doc["tags"])
    assert doc["schemaVersion"] >= 36
    names = [v["name"] for v in doc["templating"]["list"]]
    assert names == ["datasource", "cluster", "consumergroup", "topic", "exporter_url"]
    multi = {v["name"]: v.get("multi") for v in doc["templating"]["list"]}
    assert multi["consumergroup"] and multi["topic"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for p in load()["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))


# --- what an on-call engineer reads ---------------------------------------------

RULES = ROOT / "prometheus" / "rules" / "lag-exporter.yml"


def _panels() -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in load()["panels"] if p["type"] != "row"}


def _alert_threshold(metric: str) -> float:
    import re

    import yaml

    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            m = re.search(rf"\({metric}\)\s*>\s*([\d.]+)", rule["expr"])
            if m and "alert" in rule:
                return float(m.group(1))
    raise AssertionError(f"no alert on {metric}")


def test_status_over_time_as_state_timelines_with_words_and_colours() -> None:
    from lag_exporter.status import STATUS_CODES

    panels = _panels()
    colours = {"OK": "green", "WARN": "yellow", "ERR": "red", "STOP": "red", "STALL": "red"}
    colours["REWIND"] = "purple"
    for title in ("Group status", "Partition status"):
        p = panels[title]
        assert p["type"] == "state-timeline"
        (mapping,) = p["fieldConfig"]["defaults"]["mappings"]
        shown = {code: (o["text"], o["color"]) for code, o in mapping["options"].items()}
        assert shown == {str(c): (str(s), colours[str(s)]) for s, c in STATUS_CODES.items()}
    # The table that shows status codes shows them as words too.
    table = panels["Groups, worst first"]
    (status,) = [
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "status"
    ]
    assert status["properties"][0]["value"][0]["options"]["3"]["text"] == "ERR"


def test_thresholds_are_the_alert_rules() -> None:
    panels = _panels()
    lag = panels["Largest partition lag"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert "max_lag{" in panels["Largest partition lag"]["targets"][0]["expr"]
    assert lag[-1] == {"color": "red", "value": _alert_threshold("kafka_consumergroup_max_lag")}
    secs = panels["Worst lag in seconds"]["fieldConfig"]["defaults"]
    assert secs["thresholds"]["steps"][-1]["value"] == _alert_threshold(
        "kafka_consumergroup_max_lag_seconds"
    )
    assert secs["unit"] == "dtdurations"
    # The sum is not what any alert looks at: no traffic-light colours on it.
    assert panels["Total lag"]["fieldConfig"]["defaults"]["color"]["mode"] == "fixed"


def test_units_rates_in_msg_per_second_and_durations() -> None:
    for p in _panels().values():
        exprs = " ".join(t["expr"] for t in p["targets"])
        unit = p["fieldConfig"]["defaults"]["unit"]
        rates = ("rate(", "rate5m", "deriv", "per_second")
        # Members counts members; its deriv only picks the groups shown red.
        counts = ("errors", "range]", "kafka_consumergroup_members")
        if any(r in exprs for r in rates) and not any(c in exprs for c in counts):
            assert unit == "suffix: msg/s", p["title"]
        if p["type"] == "table":
            # Columns have their own units: the lag seconds column is a duration.
            for o in p["fieldConfig"]["overrides"]:
                if o["matcher"]["options"] == "lag seconds":
                    assert {"id": "unit", "value": "dtdurations"} in o["properties"]
        elif "seconds" in exprs and "is_lower_bound" not in exprs and "rate(" not in exprs:
            assert unit in ("s", "dtdurations"), p["title"]


def test_alerts_from_both_the_exporter_and_prometheus() -> None:
    panels = _panels()
    for title in ("Firing alerts", "Firing and pending alerts"):
        exprs = " ".join(t["expr"] for t in panels[title]["targets"])
        assert "ALERTS" in exprs and "lag_exporter_alerts" in exprs, title


def test_lag_trend_uses_the_recording_rule_and_members_turn_red_when_lag_grows() -> None:
    panels = _panels()
    assert (
        "kafka_consumergroup:lag:deriv10m" in panels["Lag trend (messages/s)"]["targets"][0]["expr"]
    )
    members = panels["Members"]
    red = members["targets"][1]["expr"]
    assert "== 0" in red and "deriv10m > 0" in red
    (override,) = members["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byFrameRefID", "options": "B"}
    assert override["properties"][0]["value"]["fixedColor"] == "red"


def test_data_quality_row() -> None:
    panels = _panels()
    wanted = {
        "Messages lost to retention": "retention_lost_messages",
        "Stale groups": "kafka_consumergroup_stale",
        "Uncommitted partitions": "uncommitted_partitions",
        "Lag seconds that are a lower bound": "lag_seconds_is_lower_bound",
        "Committed past log end": "offset_past_log_end",
        "Notification failures": "lag_exporter_notifications_total",
    }
    for title, metric in wanted.items():
        expr = panels[title]["targets"][0]["expr"]
        # Data even where a metric is not exposed (yet, or by an older exporter).
        assert metric in expr and expr.endswith("or vector(0)"), title


def test_groups_in_tables_link_to_the_exporter_and_a_drill_down() -> None:
    tables = [
        p
        for p in _panels().values()
        if p["type"] == "table" and any("consumergroup" in t["expr"] for t in p["targets"])
    ]
    assert len(tables) >= 4
    for p in tables:
        links = [
            link
            for o in p["fieldConfig"]["overrides"]
            if o["matcher"]["options"] == "consumergroup"
            for prop in o["properties"]
            if prop["id"] == "links"
            for link in prop["value"]
        ]
        urls = " ".join(link["url"] for link in links)
        assert "${exporter_url}/group?cluster=" in urls, p["title"]
        assert "var-consumergroup=${__value.raw}" in urls, p["title"]
