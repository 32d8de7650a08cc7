from pathlib import Path

import pytest

from lag_exporter.cli import main
from lag_exporter.config import (
    ConfigError,
    Overrides,
    Secret,
    load_settings,
    parse_duration,
    parse_settings,
)

VALID = {
    "poll_interval": "5s",
    "listen_address": "127.0.0.1:9999",
    "clusters": [
        {
            "name": "prod",
            "kafka": {
                "bootstrap.servers": "b1:9092,b2:9092",
                "security.protocol": "sasl_ssl",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "monitor",
                "sasl.password": "s3cret",
            },
            "groups": {"allow": ["orders-.*"], "deny": [".*-test"]},
            "topics": {"deny": ["_.*"]},
            "labels": {"env": "prod"},
        }
    ],
}


def test_valid_document_becomes_typed_settings() -> None:
    settings = parse_settings(VALID)
    (cluster,) = settings.clusters
    assert cluster.name == "prod"
    assert cluster.poll_interval == 5.0
    assert cluster.groups.accepts("orders-eu")
    assert not cluster.groups.accepts("orders-test")
    assert not cluster.groups.accepts("billing")
    assert not cluster.topics.accepts("_schemas")
    kwargs = cluster.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(cluster)


def test_defaults_alone_poll_localhost() -> None:
    settings = parse_settings(None)
    assert settings.clusters[0].bootstrap_servers == "127.0.0.1:9092"
    assert settings.listen_address == "0.0.0.0:9308"
    assert settings.clusters[0].poll_interval == 15.0


def test_flag_beats_environment_beats_file() -> None:
    env = Overrides.from_env(
        {"LAG_EXPORTER_POLL_INTERVAL": "7s", "LAG_EXPORTER_LOG_LEVEL": "debug"}
    )
    flags = Overrides(poll_interval="3s")
    settings = parse_settings({"poll_interval": "20s"}, flags.over(env))
    assert settings.clusters[0].poll_interval == 3.0
    assert settings.log_level == "debug"


def test_poll_interval_precedence_per_level_with_a_cluster_value() -> None:
    """flags > environment > the cluster's entry > the file's top level > default."""
    document = {
        "poll_interval": "20s",
        "clusters": [
            {"name": "a", "poll_interval": "30s", "kafka": {"bootstrap.servers": "a:9092"}},
            {"name": "b", "kafka": {"bootstrap.servers": "b:9092"}},
        ],
    }
    env = Overrides.from_env({"LAG_EXPORTER_POLL_INTERVAL": "7s"})
    flags = Overrides(poll_interval="3s")

    def intervals(overrides: Overrides, doc: dict[str, object] = document) -> list[float]:
        return [c.poll_interval for c in parse_settings(doc, overrides).clusters]

    assert intervals(flags.over(env)) == [3.0, 3.0]
    assert intervals(Overrides().over(env)) == [7.0, 7.0]
    assert intervals(Overrides()) == [30.0, 20.0]
    without_top = {"clusters": document["clusters"]}
    assert intervals(Overrides(), without_top) == [30.0, 15.0]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"poll_intervall": "5s"}, "poll_intervall: unknown key"),
        ({"poll_interval": "soon"}, "poll_interval: expected a duration"),
        ({"poll_interval": -1}, "poll_interval: must be greater than zero"),
        ({"clusters": [{"name": "a"}]}, "clusters[0].kafka: required"),
        (
            {"clusters": [{"name": "a", "kafka": {"bootstrap.server": "x:1"}}]},
            "clusters[0].kafka.bootstrap.server: unknown key",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "a",
                        "kafka": {"bootstrap.servers": "x:1"},
                        "groups": {"allow": ["(unclosed"]},
                    }
                ]
            },
            "clusters[0].groups.allow[0]: invalid regular expression",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "a",
                        "kafka": {"bootstrap.servers": "x:1", "request.timeout.ms": "fast"},
                    }
                ]
            },
            "clusters[0].kafka.request.timeout.ms: expected a positive integer",
        ),
        (
            {
                "clusters": [
                    {"name": "a", "kafka": {"bootstrap.servers": "x:1", "security.protocol": "TLS"}}
                ]
            },
            "clusters[0].kafka.security.protocol: expected one of",
        ),
        (
            {
                "clusters": [
                    {"name": "a", "kafka": {"bootstrap.servers": "x:1"}, "labels": {"topic": "x"}}
                ]
            },
            "clusters[0].labels.topic: reserved",
        ),
        (
            {
                "clusters": [
                    {"name": "a", "kafka": {"bootstrap.servers": "x:1"}},
                    {"name": "a", "kafka": {"bootstrap.servers": "y:1"}},
                ]
            },
            "used twice",
        ),
        (
            {
                "clusters": [
                    {"name": "a", "kafka": {"bootstrap.servers": "x:1"}, "granularity": "member"}
                ]
            },
            "clusters[0].granularity: expected one of partition, topic, group, got 'member'",
        ),
        ({"listen_address": "9308"}, "listen_address: expected HOST:PORT"),
        ({"clusters": "prod"}, "clusters: expected a non-empty list"),
        (["not", "a", "mapping"], "config: expected a mapping"),
    ],
)
def test_invalid_documents_name_the_key(document: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(document)
    assert message in str(info.value)


def test_secrets_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("KAFKA_PASSWORD", "from-env")
    doc = {
        "clusters": [
            {
                "name": "a",
                "kafka": {"bootstrap.servers": "x:1", "sasl.password": {"file": str(secret_file)}},
            },
            {
                "name": "b",
                "kafka": {"bootstrap.servers": "x:1", "sasl.password": {"env": "KAFKA_PASSWORD"}},
            },
        ]
    }
    a, b = parse_settings(doc).clusters
    assert a.kafka["sasl.password"] == Secret("from-file")
    assert b.client_kwargs()["sasl_plain_password"] == "from-env"


def test_jaas_config_supplies_username_and_password() -> None:
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="mon" password="p@ss";'
    )
    doc = {
        "clusters": [{"name": "a", "kafka": {"bootstrap.servers": "x:1", "sasl.jaas.config": jaas}}]
    }
    kwargs = parse_settings(doc).clusters[0].client_kwargs()
    assert kwargs["sasl_plain_username"] == "mon"
    assert kwargs["sasl_plain_password"] == "p@ss"


def test_missing_secret_env_is_named() -> None:
    doc = {
        "clusters": [
            {
                "name": "a",
                "kafka": {"bootstrap.servers": "x:1", "sasl.password": {"env": "NOPE_NOT_SET"}},
            }
        ]
    }
    with pytest.raises(ConfigError, match="NOPE_NOT_SET is not set"):
        parse_settings(doc)


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("15s", 15), ("2m", 120), ("1h", 3600), (3, 3)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


def test_missing_file_and_bad_yaml_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("clusters:\n  - name: a\n   kafka: [\n")
    with pytest.raises(ConfigError, match=r"bad.yml: line \d+, column \d+: not valid YAML"):
        load_settings(bad)


def test_validate_config_command_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yml"
    good.write_text("clusters:\n  - name: a\n    kafka:\n      bootstrap.servers: x:9092\n")
    assert main(["validate-config", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "clusters:\n  - name: a\n    kafka:\n      bootstrap.servers: x:9092\n"
        "    groups:\n      allow: ['[']\n"
    )
    assert main(["validate-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "clusters[0].groups.allow[0]" in err and "invalid regular expression" in err


def test_run_with_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("log_level: loud\n")
    assert main(["--config", str(bad)]) == 2
    assert "log_level: expected one of" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yml")]) == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("lag-exporter ")


def test_granularity_per_cluster_defaults_to_partition() -> None:
    settings = parse_settings(
        {
            "clusters": [
                {"name": "a", "kafka": {"bootstrap.servers": "x:1"}},
                {"name": "b", "kafka": {"bootstrap.servers": "y:1"}, "granularity": "Topic"},
                {"name": "c", "kafka": {"bootstrap.servers": "z:1"}, "granularity": "group"},
            ]
        }
    )
    assert [c.granularity for c in settings.clusters] == ["partition", "topic", "group"]
