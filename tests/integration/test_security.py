"""Secured Kafka: SASL (PLAIN, SCRAM-SHA-512), TLS, client certificates and ACLs.

This module's broker is its own, with three more listeners than the usual
PLAINTEXT one: SASL_PLAINTEXT and SASL_SSL (both offering PLAIN and
SCRAM-SHA-512) and SSL requiring a client certificate, and Kafka's standard
KRaft authorizer. Certificates come from a CA made by the test (tests/certs.py);
SCRAM users are created with Kafka's own kafka-configs tool, broad ACLs with
kafka-acls. The PLAINTEXT listener's principal (ANONYMOUS) is a super user:
it is what the test itself uses to set things up.
"""

from __future__ import annotations

import base64
import re
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)

from localkafka import KafkaBroker
from localkafka.broker import tool_class

from ..certs import Authority, authority
from .conftest import Exporter, Kafka, free_port, parse_metrics, select, value, wait_until

PLAIN_USERS = {"alice": "alice-Pl41n-secret"}
READERS = ("User:alice", "User:bob", "User:carol", "User:CN=reader")


@dataclass
class Secured:
    broker: KafkaBroker
    ca: Authority
    rogue_ca: Authority
    directory: Path
    kafka: Kafka

    def listener(self, name: str) -> str:
        return f"127.0.0.1:{self.broker.ports[name]}"

    def scram_user(self, user: str, password: str) -> None:
        """Create or change a SCRAM-SHA-512 user with kafka-configs, as an operator would."""
        proc = self.broker.run_tool(
            tool_class("configs", self.broker.version),
            [
                *("--bootstrap-server", self.broker.bootstrap, "--alter", "--add-config"),
                *(f"SCRAM-SHA-512=[password={password}]", "--entity-type", "users"),
                *("--entity-name", user),
            ],
            timeout=90,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def secured() -> Iterator[Secured]:
    directory = Path(tempfile.mkdtemp(prefix="lag-exporter-tls-"))
    ca = authority(directory, "good")
    rogue = authority(directory, "rogue")
    server = ca.issue("broker", server=True)
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required " + " ".join(
        f'user_{u}="{p}"' for u, p in PLAIN_USERS.items()
    )
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    properties = {
        "listeners": "PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port},"
        "SASL_PLAINTEXT://{host}:{sasl_plaintext},SASL_SSL://{host}:{sasl_ssl},SSL://{host}:{ssl}",
        "advertised.listeners": "PLAINTEXT://{host}:{port},SASL_PLAINTEXT://{host}:{sasl_plaintext},"
        "SASL_SSL://{host}:{sasl_ssl},SSL://{host}:{ssl}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": plain + ";",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram + ";",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain + ";",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram + ";",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(server.bundle),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca.cert),
        "listener.name.ssl.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # ANONYMOUS: the PLAINTEXT and controller listeners (the test's own admin).
        "super.users": "User:ANONYMOUS",
    }
    with KafkaBroker(
        extra_properties=properties, extra_ports=["sasl_plaintext", "sasl_ssl", "ssl"]
    ) as broker:
        broker.start()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        secured = Secured(broker, ca, rogue, directory, Kafka(broker.bootstrap, admin))
        secured.scram_user("bob", "bob-Scr4m-secret")
        # Read-only monitoring rights, as an operator would grant them.
        acl_args = ["--bootstrap-server", broker.bootstrap, "--add"]
        for principal in READERS:
            acl_args += ["--allow-principal", principal]
        acl_args += ["--operation", "Describe", "--cluster", "--topic", "*", "--group", "*"]
        proc = broker.run_tool(tool_class("acls", broker.version), acl_args, timeout=90)
        assert proc.returncode == 0, proc.stderr[-3000:]
        try:
            yield secured
        finally:
            secured.kafka.close()
            admin.close()


def _lagging_group(kafka: Kafka, unique: Callable[[str], str]) -> tuple[str, str]:
    topic = kafka.create_topic(unique("t"), partitions=1)
    group = unique("g")
    kafka.produce(topic, 10)
    kafka.commit(group, {(topic, 0): 3})
    return topic, group


def _config(kafka: dict[str, Any]) -> dict[str, Any]:
    return {
        "poll_interval": "500ms",
        "poll_timeout": "5s",
        "clusters": [{"name": "test", "kafka": kafka}],
    }


def _up(exporter: Exporter) -> float | None:
    return value(exporter.metrics(), "lag_exporter_cluster_up", cluster="test")


def _errors(exporter: Exporter, kind: str) -> float:
    return (
        value(exporter.metrics(), "lag_exporter_poll_errors_total", cluster="test", kind=kind) or 0
    )


def _secret_file(directory: Path, text: str) -> str:
    path = directory / f"secret-{uuid.uuid4().hex[:8]}"
    path.write_text(text + "\n")
    return str(path)


@pytest.mark.parametrize("how", ["sasl_plaintext_scram", "sasl_ssl_plain", "sasl_ssl_scram", "ssl"])
def test_secured_listener(
    how: str,
    secured: Secured,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, group = _lagging_group(secured.kafka, unique)
    client = secured.ca.issue("reader")  # principal User:CN=reader
    if how == "sasl_plaintext_scram":
        monkeypatch.setenv("TEST_BOB_PASSWORD", "bob-Scr4m-secret")
        kafka: dict[str, Any] = {
            "bootstrap.servers": secured.listener("sasl_plaintext"),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "bob",
            "sasl.password": {"env": "TEST_BOB_PASSWORD"},
        }
    elif how == "sasl_ssl_plain":
        kafka = {
            "bootstrap.servers": secured.listener("sasl_ssl"),
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "alice",
            "sasl.password": {"file": _secret_file(secured.directory, PLAIN_USERS["alice"])},
            "ssl.ca.location": str(secured.ca.cert),
        }
    elif how == "sasl_ssl_scram":
        kafka = {
            "bootstrap.servers": secured.listener("sasl_ssl"),
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
            'username="bob" password="bob-Scr4m-secret";',
            "ssl.ca.location": str(secured.ca.cert),
        }
    else:
        kafka = {
            "bootstrap.servers": secured.listener("ssl"),
            "security.protocol": "SSL",
            "ssl.ca.location": str(secured.ca.cert),
            "ssl.certificate.location": str(client.cert),
            "ssl.key.location": str(client.key),
        }
    exporter = start_exporter(config=_config(kafka))
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=group) == 7,
        what=f"lag read over {how}",
    )
    assert _errors(exporter, "authentication") == 0 and _errors(exporter, "tls") == 0


def test_wrong_password_is_reported_and_retried_until_fixed(
    secured: Secured,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    _, group = _lagging_group(secured.kafka, unique)
    user = "carol"  # has the read ACLs (READERS); used by this test only
    secured.scram_user(user, "the-old-password")
    exporter = start_exporter(
        config=_config(
            {
                "bootstrap.servers": secured.listener("sasl_plaintext"),
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": user,
                "sasl.password": "the-new-password",
            }
        ),
        wait_ready=False,
    )
    wait_until(lambda: _errors(exporter, "authentication") >= 2, what="authentication errors")
    assert _up(exporter) == 0
    assert exporter.get("/healthz")[0] == 200  # up and serving all along
    log = exporter.log()
    assert re.search(r"cannot connect: .*SaslAuthenticationFailed.*invalid credentials", log), log
    assert "check sasl.mechanism, sasl.username and sasl.password" in log
    assert "the-new-password" not in log and "the-old-password" not in log

    # The operator fixes the credentials on the broker side; the exporter,
    # retrying with backoff, gets in without being restarted.
    secured.scram_user(user, "the-new-password")
    wait_until(lambda: _up(exporter) == 1, timeout=60, what="recovered after the fix")
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=group) == 7,
        what="lag after the fix",
    )
    assert exporter.process.poll() is None


@pytest.mark.parametrize("side", ["broker_certificate", "client_certificate"])
def test_untrusted_certificate_is_reported(
    side: str,
    secured: Secured,
    start_exporter: Callable[..., Exporter],
) -> None:
    if side == "broker_certificate":
        # The exporter trusts another CA than the one that signed the broker's certificate.
        kafka = {
            "bootstrap.servers": secured.listener("sasl_ssl"),
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "alice",
            "sasl.password": PLAIN_USERS["alice"],
            "ssl.ca.location": str(secured.rogue_ca.cert),
        }
        reason = "CERTIFICATE_VERIFY_FAILED"
    else:
        # The broker does not trust the CA that signed the exporter's certificate.
        client = secured.rogue_ca.issue("reader")
        kafka = {
            "bootstrap.servers": secured.listener("ssl"),
            "security.protocol": "SSL",
            "ssl.ca.location": str(secured.ca.cert),
            "ssl.certificate.location": str(client.cert),
            "ssl.key.location": str(client.key),
        }
        reason = "CERTIFICATE_UNKNOWN"
    exporter = start_exporter(config=_config(kafka), wait_ready=False)
    wait_until(lambda: _errors(exporter, "tls") >= 2, what="tls errors, retried")
    assert _up(exporter) == 0
    assert exporter.get("/healthz")[0] == 200
    log = exporter.log()
    assert re.search(rf"cannot connect: .*{reason}", log), log[-3000:]
    assert "check ssl.ca.location" in log
    assert exporter.process.poll() is None


def test_authorization_denied_on_some_groups_and_topics(
    secured: Secured,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
) -> None:
    prefix = f"authz{uuid.uuid4().hex[:6]}"
    kafka = secured.kafka
    shared = kafka.create_topic(f"{prefix}-ok-topic", partitions=1)
    hidden = kafka.create_topic(f"{prefix}-hidden-topic", partitions=1)
    for topic in (shared, hidden):
        kafka.produce(topic, 10)
    allowed, both, denied = f"{prefix}-ok-g1", f"{prefix}-ok-g2", f"{prefix}-denied-g"
    kafka.commit(allowed, {(shared, 0): 2})
    kafka.commit(both, {(shared, 0): 5, (hidden, 0): 1})
    kafka.commit(denied, {(shared, 0): 4})

    user = f"limited{uuid.uuid4().hex[:6]}"
    secured.scram_user(user, "limited-pass")
    principal = f"User:{user}"

    def allow(resource: ResourcePattern) -> ACL:
        return ACL(principal, "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW, resource)

    prefixed = ACLResourcePatternType.PREFIXED
    result = kafka.admin.create_acls(
        [
            allow(ResourcePattern(ResourceType.CLUSTER, "kafka-cluster")),
            allow(ResourcePattern(ResourceType.GROUP, f"{prefix}-ok-", prefixed)),
            allow(ResourcePattern(ResourceType.TOPIC, f"{prefix}-ok-", prefixed)),
        ]
    )
    assert not result["failed"], result

    config = _config(
        {
            "bootstrap.servers": secured.listener("sasl_plaintext"),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": "limited-pass",
        }
    )
    config["clusters"][0]["groups"] = {"allow": [f"{prefix}-.*"]}
    exporter = start_exporter(config=config)

    def denied_reported() -> list[dict[str, Any]]:
        (cluster,) = exporter.groups()["clusters"]
        return [
            e for e in cluster["errors"] if e["group"] == denied and e["kind"] == "authorization"
        ]

    wait_until(denied_reported, what="the denied group reported as an authorization error")
    wait_until(
        lambda: value(exporter.metrics(), "kafka_consumergroup_lag", consumergroup=both) == 5,
        what="lag of the group with a hidden topic",
    )
    s = exporter.metrics()
    # What may be read is reported as usual, fresh.
    assert value(s, "kafka_consumergroup_lag", consumergroup=allowed) == 8
    assert value(s, "kafka_consumergroup_stale", consumergroup=allowed) == 0
    assert value(s, "kafka_consumergroup_stale", consumergroup=both) == 0
    # What may not is absent, not made up; the denial is counted and logged by group.
    assert not select(s, "kafka_consumergroup_lag", consumergroup=denied)
    assert not select(s, "kafka_topic_partitions", topic=hidden)
    assert not select(s, "kafka_consumergroup_lag", topic=hidden)
    assert _errors(exporter, "authorization") >= 1
    assert value(s, "lag_exporter_cluster_up", cluster="test") == 1
    assert f"authorization group={denied}" in exporter.log()


def test_secrets_never_appear_in_logs_or_responses(
    secured: Secured,
    unique: Callable[[str], str],
    start_exporter: Callable[..., Exporter],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Debug logging, every endpoint, a failing login, a reload: no secret shows anywhere."""
    _, group = _lagging_group(secured.kafka, unique)
    bob, alice = "bob-Scr4m-secret", PLAIN_USERS["alice"]
    wrong, basic = "Wr0ng-but-s3cret-pw", "B4sic-auth-s3cret"
    token = "Bearer whk-t0ken-s3cret"
    monkeypatch.setenv("TEST_BOB_PASSWORD", bob)
    monkeypatch.setenv("TEST_WEBHOOK_TOKEN", token)
    sasl_ssl = {
        "bootstrap.servers": secured.listener("sasl_ssl"),
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(secured.ca.cert),
    }
    scram = {
        "bootstrap.servers": secured.listener("sasl_plaintext"),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "bob",
    }
    config = {
        "poll_interval": "500ms",
        "poll_timeout": "3s",
        "clusters": [
            {"name": "env", "kafka": scram | {"sasl.password": {"env": "TEST_BOB_PASSWORD"}}},
            {
                "name": "file",
                "kafka": sasl_ssl
                | {
                    "sasl.mechanism": "PLAIN",
                    "sasl.username": "alice",
                    "sasl.password": {"file": _secret_file(secured.directory, alice)},
                },
            },
            {
                "name": "jaas",
                "kafka": sasl_ssl
                | {
                    "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
                    f'required username="bob" password="{bob}";',
                },
            },
            {"name": "wrong", "kafka": scram | {"sasl.password": wrong}},
        ],
        # A webhook whose token is a secret, and whose receiver is not there:
        # the failed deliveries are logged, the token must not be.
        "alerting": {
            "notifiers": {
                "hook": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{free_port()}/hook",
                    "headers": {"Authorization": {"env": "TEST_WEBHOOK_TOKEN"}},
                    "max_attempts": 2,
                    "backoff": "100ms",
                }
            },
            "rules": [{"name": "Behind", "metric": "lag", "op": ">", "threshold": 1}],
        },
    }
    web = tmp_path / "web.yml"
    web.write_text(
        f"basic_auth_users:\n  prom: {bcrypt.hashpw(basic.encode(), bcrypt.gensalt(4)).decode()}\n"
    )
    exporter = start_exporter(config=config, wait_ready=False, args=("--web.config.file", str(web)))
    good = {"Authorization": "Basic " + base64.b64encode(f"prom:{basic}".encode()).decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(f"prom:{wrong}".encode()).decode()}

    def metrics() -> Any:
        status, body = exporter.get("/metrics", good)
        assert status == 200
        return parse_metrics(body.decode())

    def state() -> bool:
        s = metrics()
        up = {n: value(s, "lag_exporter_cluster_up", cluster=n) for n in ("env", "file", "jaas")}
        failed = value(s, "lag_exporter_poll_errors_total", cluster="wrong", kind="authentication")
        return all(v == 1 for v in up.values()) and bool(failed)

    wait_until(state, timeout=60, what="three clusters up, the wrong password refused")
    wait_until(
        lambda: "notifier hook:" in exporter.log(), what="a webhook delivery attempted and failed"
    )
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in exporter.log(), what="reload")

    responses = []
    paths = ("/", "/metrics", "/api/v1/groups", "/api/v1/alerts", "/healthz", "/readyz", "/x")
    ui = ("/api/v1/overview", f"/group?cluster=env&group={group}", "/api/v1/group?cluster=env")
    for path in (*paths, *ui):
        for headers in (good, bad, {}):
            status, body = exporter.get(path, headers)
            responses.append((path, status, body))
    assert exporter.get("/metrics", bad)[0] == 401
    assert exporter.get("/metrics")[0] == 401
    assert exporter.get("/healthz")[0] == 200  # left open for liveness probes
    assert b'"authentication"' in exporter.get("/api/v1/groups", good)[1]
    assert group.encode() in exporter.get("/api/v1/groups", good)[1]
    assert exporter.stop() == 0
    log = exporter.log()
    assert "DEBUG kafka" in log  # kafka-python's own debug output is there, and was checked
    for secret in (bob, alice, wrong, basic, token, token.removeprefix("Bearer ")):
        assert secret not in log, f"a secret is in the log: {secret[:3]}..."
        for path, status, body in responses:
            assert secret.encode() not in body, f"a secret is in {path} ({status})"
