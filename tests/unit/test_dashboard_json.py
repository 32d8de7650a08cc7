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
    assert names == ["datasource", "cluster", "consumergroup", "topic"]
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
