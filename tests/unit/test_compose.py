"""docker-compose.yml cannot be run here (no Docker engine), so it is checked
statically: against the Compose specification's schema, and for agreement
with every file it mounts and every address the other configs use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lag_exporter.config import DEFAULT_LISTEN_ADDRESS, load_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def yaml_file(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        assert host.startswith("./"), f"{volume}: only bind mounts of repository files"
        out[container] = ROOT / host
    return out


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(compose, schema)


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for container, host in mounts(service).items():
            assert host.exists(), f"service {name} mounts {host} at {container}: missing"


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["lag-exporter"]["build"] == "."
    for name in ("prometheus", "alertmanager", "grafana", "demo-traffic"):
        assert name in services


def test_exporter_reaches_kafka_at_its_advertised_address(compose: dict[str, Any]) -> None:
    services = compose["services"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    kafka_address = re.search(r"PLAINTEXT://([^,]+)", advertised)
    assert kafka_address is not None
    config_path = mounts(services["lag-exporter"])["/etc/lag-exporter/config.yml"]
    assert services["lag-exporter"]["command"][-1] == "/etc/lag-exporter/config.yml"
    settings = load_settings(config_path)
    assert settings.clusters[0].bootstrap_servers == kafka_address.group(1)
    traffic = services["demo-traffic"]["entrypoint"]
    assert traffic[traffic.index("--bootstrap-servers") + 1] == kafka_address.group(1)
    assert mounts(services["demo-traffic"])[traffic[1]].name == "traffic.py"


def test_prometheus_scrapes_the_exporter_and_alerts_to_alertmanager(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    prometheus = services["prometheus"]
    config_host = mounts(prometheus)["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_host.read_text())
    (job,) = config["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    exporter_port = DEFAULT_LISTEN_ADDRESS.rsplit(":", 1)[1]
    assert host == "lag-exporter" and port == exporter_port
    assert f"{exporter_port}:{exporter_port}" in services["lag-exporter"]["ports"]
    (am_target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    am_host, am_port = am_target.split(":")
    assert am_host in services and f"{am_port}:{am_port}" in services[am_host]["ports"]
    # The rule files Prometheus loads are the ones in this repository.
    (rules_glob,) = config["rule_files"]
    rules_dir = mounts(prometheus)[str(Path(rules_glob).parent)]
    assert sorted(rules_dir.glob(Path(rules_glob).name)) == [
        ROOT / "prometheus" / "rules" / "lag-exporter.yml"
    ]
    assert any(
        a.startswith("--config.file=/etc/prometheus/prometheus.yml") for a in prometheus["command"]
    )


def test_grafana_provisions_the_datasource_and_dashboard(compose: dict[str, Any]) -> None:
    services = compose["services"]
    grafana = mounts(services["grafana"])
    provisioning = grafana["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    host_port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"])
    assert host_port is not None
    assert host_port.group(1) in services
    assert f"{host_port.group(2)}:{host_port.group(2)}" in services["prometheus"]["ports"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())[
        "providers"
    ]
    dashboards = grafana[provider["options"]["path"]]
    assert (dashboards / "kafka-consumer-lag.json").exists()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).name).exists()
    assert "3000:3000" in services["grafana"]["ports"]


def test_alertmanager_config_is_mounted(compose: dict[str, Any]) -> None:
    am = mounts(compose["services"]["alertmanager"])
    config = yaml.safe_load(am["/etc/alertmanager/alertmanager.yml"].read_text())
    assert config["route"]["receiver"] in {r["name"] for r in config["receivers"]}
