"""Every dashboard query and every Prometheus rule, run against a real Prometheus
that scrapes the real exporter polling the real broker with live traffic."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, Exporter, Kafka, free_port, wait_until
from .test_timelag import PausableConsumer, SteadyProducer

DASHBOARD = ROOT / "grafana" / "dashboards" / "kafka-consumer-lag.json"
RULES = ROOT / "prometheus" / "rules" / "lag-exporter.yml"
# Names Prometheus itself provides.
BUILTIN = {"up", "time", "vector"}
METRIC = re.compile(r"\b((?:kafka|lag_exporter)_[a-zA-Z0-9_:]*)")
# Metrics of the data-quality panels that exist only where something is wrong
# (a committed offset past the log end) or once a notifier has made an attempt;
# their queries fall back to vector(0), so they return data either way.
ANNOUNCED = {
    "kafka_consumergroup_offset_past_log_end",
    "lag_exporter_notifications_total",
    "lag_exporter_notifications_failing",
}
# The panels drawn into a PNG, so that a reviewer sees the story the dashboard tells.
DRAWN = {
    "Group status": "",
    "Partition status": "",
    "Lag per group": "messages",
    "Lag trend (messages/s)": "msg/s",
    "Lag in seconds per group": "seconds",
    "Consumption vs production": "msg/s",
}


class Prometheus:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port, self.process, self.log = port, process, log

    def api(self, path: str, **params: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                doc: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            doc = json.loads(exc.read())
        return doc

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[Exporter], Prometheus]]:
    started: list[Prometheus] = []

    def start(exporter: Exporter) -> Prometheus:
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: `make test` installs Debian's prometheus package"
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "kafka-lag-exporter",
                    "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
                }
            ],
        }
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = tmp_path / "prometheus.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={tempfile.mkdtemp(dir=tmp_path)}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        prom = Prometheus(port, process, log)
        started.append(prom)
        wait_until(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200
            ),
            timeout=60,
            what="prometheus ready",
        )
        return prom

    yield start
    for prom in started:
        prom.process.terminate()
        try:
            prom.process.wait(15)
        except subprocess.TimeoutExpired:
            prom.process.kill()


def dashboard_queries(cluster: str, groups: str = ".*") -> list[tuple[str, str]]:
    """(panel title, expression with Grafana's variables substituted) for every target."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
            assert m, variable["definition"]
            # What Grafana asks Prometheus for a label_values() variable.
            out.append((f"variable {variable['name']}", f"group by ({m.group(2)}) ({m.group(1)})"))
    for panel in doc["panels"]:
        for t in panel.get("targets", []):
            out.append((panel["title"], t["expr"]))
    substituted = []
    for title, expr in out:
        expr = (
            expr.replace("$cluster", cluster)
            .replace("$consumergroup", groups)
            .replace("$topic", ".*")
            .replace("$__rate_interval", "10s")
            .replace("$__interval", "2s")
            .replace("$__range", "5m")
        )
        assert "$" not in expr, f"{title}: unsubstituted variable in {expr}"
        substituted.append((title, expr))
    return substituted


def rule_expressions() -> tuple[list[tuple[str, str]], set[str]]:
    doc = yaml.safe_load(RULES.read_text())
    exprs, recorded = [], set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            exprs.append((rule.get("alert") or rule["record"], rule["expr"]))
            if "record" in rule:
                recorded.add(rule["record"])
    return exprs, recorded


def test_every_panel_and_rule_query_returns_data(
    kafka: Kafka,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
    prometheus_for: Callable[[Exporter], Prometheus],
    tmp_path: Path,
) -> None:
    topic = kafka.create_topic(unique("traffic"), partitions=1)
    lagging, keeping_up = unique("lagging"), unique("keeping-up")
    # Retry and dead-letter topics in Spring Kafka's naming, for the partitioning panels.
    retry = kafka.create_topic(f"{topic}-retry", partitions=1)
    dead_letters = kafka.create_topic(f"{topic}-dlt", partitions=1)
    kafka.produce(retry, 5)
    kafka.produce(dead_letters, 3)
    kafka.commit(lagging, {(retry, 0): 1})
    exporter = start_exporter(
        config={
            "poll_interval": "1s",
            "clusters": [
                {
                    "name": "test",
                    "kafka": {"bootstrap.servers": kafka.bootstrap},
                    # The lagging group stops for long enough to be STOP (ERR) while
                    # the test runs: the status timelines then have a red stretch.
                    "status": {"stop_after": "5s", "window": "60s"},
                }
            ],
            # A rule that fires for the lagging group, so the alert panels have data.
            "alerting": {
                # A notifier, so its delivery metrics (which rules name) exist;
                # the rule sends nothing to it.
                "notifiers": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/"}},
                "rules": [
                    {
                        "name": "Behind",
                        "metric": "max_lag",
                        "threshold": 3,
                        "notifiers": [],
                        "groups": [lagging],
                    }
                ],
            },
        }
    )
    prom = prometheus_for(exporter)
    with (
        SteadyProducer(kafka.bootstrap, topic),
        PausableConsumer(kafka.consumer(keeping_up, topic)),
        # A second member on a one-partition topic: it is idle.
        PausableConsumer(kafka.consumer(keeping_up, topic)),
    ):
        # A group that stays behind: committed once, then left alone.
        wait_until(lambda: kafka.end_offsets(topic, 1)[0] >= 10, what="some traffic")
        kafka.commit(lagging, {(topic, 0): 5})
        exposed = set()

        def scraped_enough() -> bool:
            result = prom.query(
                f'count_over_time(kafka_consumergroup_lag{{consumergroup="{lagging}"}}[1m])'
            )
            return (
                bool(result["data"]["result"])
                and float(result["data"]["result"][0]["value"][1]) >= 12
            )

        wait_until(scraped_enough, timeout=90, what="a dozen scrapes in Prometheus")
        wait_until(
            lambda: prom.query('lag_exporter_alerts{state="firing"} > 0')["data"]["result"],
            timeout=30,
            what="the exporter's alert firing, seen by Prometheus",
        )
        for name, _labels in exporter.metrics():
            exposed.add(name)
        # And every name any scrape had (some series come and go, e.g. catch-up
        # time exists only while a group catches up).
        scraped = prom.api("label/__name__/values", **{"match[]": '{job="kafka-lag-exporter"}'})
        exposed.update(scraped["data"])

        problems = []
        for title, expr in dashboard_queries("test"):
            result = prom.query(expr)
            if result.get("status") != "success":
                problems.append(f"{title}: {expr}: {result.get('error')}")
            elif not result["data"]["result"]:
                problems.append(f"{title}: {expr}: no series")
        rules, recorded = rule_expressions()
        for name, expr in rules:
            result = prom.query(expr)
            if result.get("status") != "success":
                problems.append(f"rule {name}: {expr}: {result.get('error')}")
        assert not problems, "\n".join(problems)

        # Every metric a panel or a rule names is one the exporter exposes
        # (or a recording rule defined next to them).
        named = {
            m for _, expr in [*dashboard_queries("test"), *rules] for m in METRIC.findall(expr)
        }
        unknown = sorted(
            n for n in named if n not in exposed and n not in recorded and n not in ANNOUNCED
        )
        assert not unknown, f"not exposed by the exporter: {unknown}"
        assert named & exposed  # the check above can fail: it looked at real names
        wait_until(
            lambda: prom.query(
                f'kafka_consumergroup_group_status{{consumergroup="{lagging}", status="ERR"}}'
            )["data"]["result"],
            timeout=60,
            what=f"{lagging} ERR in Prometheus",
        )
        drawn = draw_panels(
            prom,
            _screenshots(tmp_path) / "dashboard-panels.png",
            # Test names are letters, digits, "_" and "-": nothing to escape in a regex
            # (and PromQL's strings would refuse re.escape's "\-").
            f"{lagging}|{keeping_up}",
            lagging[: lagging.index("-lagging-") + 1],
        )
        assert drawn.exists() and drawn.stat().st_size > 10_000
    assert "kafka_consumergroup:lag:sum" in recorded
    loaded = prom.api("rules")["data"]["groups"]
    assert {g["name"] for g in loaded} == {"lag-exporter-recording", "lag-exporter-alerts"}
    assert all(r["health"] == "ok" for g in loaded for r in g["rules"]), loaded


def _screenshots(tmp_path: Path) -> Path:
    """$LAG_EXPORTER_SCREENSHOTS (the README's docs/ images), else the test's directory."""
    target = os.environ.get("LAG_EXPORTER_SCREENSHOTS")
    out = (ROOT / target if not os.path.isabs(target) else Path(target)) if target else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


STATUS_COLOURS = {1: "#37872d", 2: "#e0b400", 3: "#c4162a", 4: "#c4162a", 5: "#c4162a"}
STATUS_COLOURS[6] = "#8f3bb8"


def draw_panels(prom: Prometheus, path: Path, groups: str, prefix: str, seconds: int = 90) -> Path:
    """The DRAWN panels' queries for `groups` (a regex) over the last `seconds`, from
    Prometheus, as one PNG.

    Each panel must have data: at least one series with two points.
    """
    import time

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[str]] = {}
    for t, expr in dashboard_queries("test", groups):
        if t in DRAWN:
            panels.setdefault(t, []).append(expr)
    legends = {
        p["title"]: [t["legendFormat"] for t in p["targets"]]
        for p in json.loads(DASHBOARD.read_text())["panels"]
        if p["title"] in DRAWN
    }
    end = time.time()
    fig, axes = plt.subplots(3, 2, figsize=(14, 11))
    for ax, title in zip(axes.flat, DRAWN, strict=True):
        drawn: list[tuple[str, dict[str, Any]]] = []
        for expr, legend in zip(panels[title], legends[title], strict=True):
            result = prom.api(
                "query_range", query=expr, start=str(end - seconds), end=str(end), step="1"
            )
            assert result.get("status") == "success", (title, result)
            drawn += [(legend, s) for s in result["data"]["result"]]
        assert any(len(s["values"]) >= 2 for _, s in drawn), f"{title}: no data"
        for k, (legend, s) in enumerate(drawn[:8]):
            labels = s["metric"]
            label = re.sub(
                r"\{\{(\w+)\}\}",
                # Names without the test's name in front: "lagging-1a2b3c".
                lambda m, ls=labels: ls.get(m[1], "").removeprefix(prefix),
                legend,
            )
            times = [float(t) - end for t, _ in s["values"]]
            values = [float(v) for _, v in s["values"]]
            if title.endswith("status"):
                # A state timeline: one band per series, coloured by status.
                for t, v in zip(times, values, strict=True):
                    ax.barh(k, 1.0, left=t, color=STATUS_COLOURS.get(int(v), "grey"), height=0.8)
                ax.text(times[0], k, " " + label, va="center", fontsize=7, color="white")
            else:
                ax.plot(times, values, label=label)
        if not title.endswith("status"):
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.set_yticks([])
        ax.set_title(title)
        ax.set_xlabel("seconds before now")
        ax.set_ylabel(DRAWN[title])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
