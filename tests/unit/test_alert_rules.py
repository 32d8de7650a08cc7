"""The `alerting:` section: valid rules become typed values, bad ones name the rule and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lag_exporter.alerts.measures import MEASURES
from lag_exporter.alerts.template import TemplateError, parse_template
from lag_exporter.cli import main
from lag_exporter.config import ConfigError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = [{"name": "prod", "kafka": {"bootstrap.servers": "b:9092"}, "labels": {"env": "p"}}]


def document(*rules: dict[str, Any], **alerting: Any) -> dict[str, Any]:
    return {
        "clusters": CLUSTERS,
        "alerting": {
            "notifiers": {"ops": {"type": "webhook", "url": "https://hooks.example/x"}},
            "rules": list(rules),
            **alerting,
        },
    }


def good_rule(**fields: Any) -> dict[str, Any]:
    return {"name": "behind", "metric": "lag_sum", "threshold": 1000, **fields}


def test_a_complete_rule() -> None:
    settings = parse_settings(
        document(
            good_rule(
                op=">=",
                **{"for": "5m"},
                severity="critical",
                labels={"team": "payments"},
                annotations={"summary": "{{ $labels.consumergroup }}: {{ $value }}"},
                notifiers=["ops"],
                clusters="prod",
                groups={"include": [{"regex": "orders-.*"}], "exclude": ["orders-test"]},
                topics=["orders"],
            ),
            state_file="/tmp/x.json",
            instance="exporter-1",
            external_url="http://exporter:9308/",
        )
    )
    assert settings.alerting is not None
    (r,) = settings.alerting.rules
    assert (r.metric, r.op, r.threshold, r.for_seconds, r.severity) == (
        "lag_sum",
        ">=",
        1000,
        300.0,
        "critical",
    )
    assert r.groups.matches("orders-eu") and not r.groups.matches("orders-test")
    assert not r.groups.matches("billing")
    assert r.topics.matches("orders") and not r.topics.matches("orders2")
    assert r.holds(1000) and not r.holds(999)
    assert settings.alerting.external_url == "http://exporter:9308"
    assert settings.alerting.notifiers["ops"].repeat_interval == 4 * 3600


def test_defaults_notifiers_all_and_for_zero() -> None:
    settings = parse_settings(document(good_rule()))
    assert settings.alerting is not None
    (r,) = settings.alerting.rules
    assert r.notifiers == ("ops",) and r.for_seconds == 0 and r.op == ">"
    assert "summary" in r.annotations


def test_no_alerting_section_no_alerting() -> None:
    assert parse_settings({"clusters": CLUSTERS}).alerting is None


def test_notifier_settings_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    (tmp_path / "pw").write_text("hunter2\n")
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.example/T0/B0/secret")
    settings = parse_settings(
        document(
            good_rule(),
            notifiers={
                "hook": {
                    "type": "webhook",
                    "url": "https://r.example/",
                    "format": "alertmanager",
                    "headers": {"X-Token": {"env": "SLACK_URL"}},
                    "basic_auth": {"username": "u", "password": {"file": str(tmp_path / "pw")}},
                    "tls": {"ca_file": str(ca), "insecure_skip_verify": False},
                    "timeout": "3s",
                    "max_attempts": 3,
                    "backoff": "200ms",
                    "queue_size": 10,
                    "repeat_interval": "30m",
                },
                "chat": {"type": "slack", "url": {"env": "SLACK_URL"}, "channel": "#kafka"},
                "am": {"type": "alertmanager", "url": "http://alertmanager:9093"},
            },
        )
    )
    assert settings.alerting is not None
    n = settings.alerting.notifiers
    assert n["hook"].basic_auth is not None and n["hook"].basic_auth[1].reveal() == "hunter2"
    assert (n["hook"].timeout, n["hook"].max_attempts, n["hook"].backoff) == (3.0, 3, 0.2)
    assert n["hook"].repeat_interval == 1800 and n["hook"].format == "alertmanager"
    assert n["chat"].url.reveal().endswith("/secret")
    assert n["am"].repeat_interval == 60  # Alertmanager needs re-sends, as from Prometheus
    assert "secret" not in repr(settings) and "hunter2" not in repr(settings)


BAD: list[tuple[dict[str, Any], str]] = [
    (
        document(good_rule(metric="lag_bytes")),
        "alerting.rules[0] (behind).metric: unknown metric 'lag_bytes'; expected one of lag,",
    ),
    (
        document(good_rule(groups={"include": [{"regex": "orders-("}]})),
        "alerting.rules[0] (behind).groups.include[0].regex: invalid regular expression",
    ),
    (
        document(good_rule(groups=["orders-.*"])),
        "alerting.rules[0] (behind).groups[0]: 'orders-.*' looks like a regular expression",
    ),
    (document(good_rule(**{"for": "-5m"})), "alerting.rules[0] (behind).for: must not be negative"),
    (document(good_rule(**{"for": -1})), "alerting.rules[0] (behind).for: must not be negative"),
    (
        document(good_rule(notifiers=["ops", "pager"])),
        "alerting.rules[0] (behind).notifiers[1]: unknown notifier 'pager'; configured: ops",
    ),
    (
        document(good_rule(annotations={"summary": "{{ $labels.partition }} behind"})),
        "alerting.rules[0] (behind).annotations.summary: {{ $labels.partition }}: alerts of "
        "this rule have no label 'partition'",
    ),
    (
        document(good_rule(annotations={"description": "{{ $lag }}"})),
        "alerting.rules[0] (behind).annotations.description: {{ $lag }}: unknown template variable",
    ),
    (
        document(good_rule(annotations={"summary": "{{ $value "})),
        "annotations.summary: '{{' without a closing '}}'",
    ),
    (document(good_rule(op="=>")), "alerting.rules[0] (behind).op: expected one of"),
    (document(good_rule(threshold="high")), "alerting.rules[0] (behind).threshold: expected a"),
    (document({"name": "x", "metric": "lag"}), "alerting.rules[0] (x).threshold: required"),
    (document({"metric": "lag", "threshold": 1}), "alerting.rules[0].name: required"),
    (document(good_rule(when="always")), "alerting.rules[0] (behind).when: unknown key"),
    (document(good_rule(), good_rule()), "alerting.rules[1].name: 'behind' is used twice"),
    (
        document(good_rule(labels={"severity": "page"})),
        "alerting.rules[0] (behind).labels.severity: reserved",
    ),
    (
        document(good_rule(metric="max_lag", topics=["orders"])),
        "alerting.rules[0] (behind).topics: metric max_lag is per group",
    ),
    (
        document(good_rule(clusters=["staging"])),
        "alerting.rules[0] (behind).clusters: no cluster is named 'staging'",
    ),
    (
        document(good_rule(), notifiers={"x": {"type": "email", "url": "http://a"}}),
        "alerting.notifiers.x.type: expected one of webhook, alertmanager, slack",
    ),
    (
        document(good_rule(), notifiers={"x": {"type": "webhook", "url": "ftp://secret@a"}}),
        "alerting.notifiers.x.url: expected an http:// or https:// URL",
    ),
    (
        document(good_rule(), notifiers={"x": {"type": "webhook"}}),
        "alerting.notifiers.x.url: required",
    ),
    (
        document(good_rule(), notifiers={"x": {"type": "slack", "url": "http://a", "format": "x"}}),
        "alerting.notifiers.x.format: unknown key",
    ),
    (
        document(
            good_rule(), notifiers={"x": {"type": "webhook", "url": "http://a", "max_attempts": 0}}
        ),
        "alerting.notifiers.x.max_attempts: expected a positive integer",
    ),
    (
        document(
            good_rule(),
            notifiers={"x": {"type": "webhook", "url": "http://a", "tls": {"ca_file": "/nope"}}},
        ),
        "alerting.notifiers.x.tls.ca_file: /nope is not a readable file",
    ),
    (document(good_rule(), rulez=[]), "alerting.rulez: unknown key"),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_bad_rules_name_the_rule_and_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(doc)
    assert message in str(info.value)


def test_url_is_never_echoed_in_errors() -> None:
    doc = document(good_rule(), notifiers={"x": {"type": "slack", "url": "hooks/T0/B0/tok3n"}})
    with pytest.raises(ConfigError) as info:
        parse_settings(doc)
    assert "tok3n" not in str(info.value)


def test_validate_config_and_start_exit_2_on_a_bad_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(document(good_rule(metric="lag_bytes"))))
    assert main(["validate-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "rules[0] (behind).metric: unknown metric 'lag_bytes'" in err
    assert main(["run", "--config", str(bad)]) == 2
    assert "rules[0] (behind).metric" in capsys.readouterr().err
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(document(good_rule())))
    assert main(["validate-config", str(good)]) == 0
    assert "1 alert rule(s)" in capsys.readouterr().out


def test_unwritable_state_file_stops_the_start_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yml"
    doc = document(good_rule(), state_file=str(tmp_path / "no-such-dir" / "state.json"))
    doc["listen_address"] = "127.0.0.1:0"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["run", "--config", str(cfg)]) == 2
    assert "alerting.state_file: cannot write alert state file" in capsys.readouterr().err


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example takes its secrets from the environment (its first line names them).
    monkeypatch.setenv("KAFKA_PASSWORD", "x")
    monkeypatch.setenv("ALERT_WEBHOOK_TOKEN", "Bearer x")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/T0/B0/x")
    settings = load_settings(ROOT / "examples" / "config.yml")
    assert settings.alerting is not None and settings.alerting.rules
    rules = {r.name: r for r in settings.alerting.rules}
    assert rules["ConsumerGroupStopped"].keep_firing_for == 600
    assert rules["AlertDeliveryFailing"].metric == "notifications_failing"
    hook = settings.alerting.notifiers["ops-webhook"]
    assert (hook.max_backoff, hook.retry_for, hook.max_attempts) == (60, 86400, None)


def test_templates() -> None:
    t = parse_template("{{$labels.topic}} at {{ $value }} / {{ $threshold }}!", {"topic"})
    assert t.render({"topic": "orders"}, 1500.0, 1000) == "orders at 1500 / 1000!"
    assert t.render({"topic": "orders"}, 0.25, 1000) == "orders at 0.25 / 1000!"
    with pytest.raises(TemplateError, match="no label 'group'"):
        parse_template("{{ $labels.group }}", {"consumergroup"})
    assert parse_template("no variables", ()).render({}, None, 1) == "no variables"


def test_every_measure_declares_its_labels() -> None:
    per_cluster = {"cluster_up", "poll_age_seconds"}
    exporter = {"notifications_failing": ("notifier",)}
    for name, measure in MEASURES.items():
        assert measure.per_cluster != (name in exporter), name
        if name in exporter:
            assert measure.labels == exporter[name], name
            continue
        assert bool(measure.labels) != (name in per_cluster), name
        # Every other series names what it is about: a group, or a dead-letter topic's main topic.
        if measure.labels:
            assert measure.labels[0] in ("consumergroup", "main_topic"), name
        assert len(set(measure.labels)) == len(measure.labels), name
        assert measure.unit in ("messages", "seconds", "messages/s", "status", "up"), name


def test_cluster_measures_take_no_group_selector() -> None:
    from lag_exporter.alerts.rules import parse_alerting

    with pytest.raises(ConfigError, match=r"groups: metric cluster_up is not per group"):
        parse_alerting(
            {"rules": [{"name": "x", "metric": "cluster_up", "threshold": 1, "groups": ["g"]}]},
            cluster_names=["c1"],
            cluster_label_names=(),
        )
