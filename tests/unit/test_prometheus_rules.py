"""The Prometheus rules shipped for people who alert in Prometheus: checked and
unit-tested with promtool (Debian's prometheus package, installed by `make test`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: `make test` installs Debian's prometheus package"
    return subprocess.run(
        [binary, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", "prometheus/rules/lag-exporter.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_passing_unit_test() -> None:
    result = promtool("test", "rules", "prometheus/tests/lag-exporter.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    rules = (ROOT / "prometheus/rules/lag-exporter.yml").read_text()
    tests = (ROOT / "prometheus/tests/lag-exporter.test.yml").read_text()
    alerts = [
        line.split(":", 1)[1].strip()
        for line in rules.splitlines()
        if line.strip().startswith("- alert:")
    ]
    assert alerts
    for alert in alerts:
        assert f"alertname: {alert}" in tests, f"no promtool test for {alert}"


def test_example_scrape_config_is_valid() -> None:
    result = promtool("check", "config", "--syntax-only", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
