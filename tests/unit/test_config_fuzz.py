"""Bad configuration never crashes the loader: either Settings or ConfigError, nothing else.

Documents are built from the real key names (so the fuzzer gets past the
unknown-key check and into every validator) mixed with random keys and
values of every YAML type; raw text goes through the YAML parser too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lag_exporter.config import (
    _CLUSTER_KEYS,
    _KAFKA_INT_KEYS,
    _KAFKA_SECRET_KEYS,
    _KAFKA_STRING_KEYS,
    _TOP_KEYS,
    ConfigError,
    Overrides,
    Settings,
    load_settings,
    parse_settings,
)
from lag_exporter.web import WebConfig, parse_web_config

SECRET = "s3cr3t-Marker-9f1c"
os.environ.setdefault("LAG_EXPORTER_FUZZ_SECRET", SECRET)

KAFKA_KEYS = [
    *_KAFKA_STRING_KEYS,
    *_KAFKA_SECRET_KEYS,
    *_KAFKA_INT_KEYS,
    "ssl.endpoint.identification.algorithm",
]
NESTED_KEYS = [
    "allow",
    "deny",
    "history_size",
    "exact",
    "exact_max_fetches",
    "allowed_lag",
    "window",
    "stop_after",
    "stop_after_max",
    "file",
    "env",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "15s",
            "500ms",
            "0s",
            "-1s",
            "1e309",
            "99999999999999999999h",
            "PLAINTEXT",
            "SASL_SSL",
            "SCRAM-SHA-512",
            "127.0.0.1:9092",
            "0.0.0.0:99999",
            "[",
            "a{99999999999}",
            "(?P<x",
            "\x00",
            "/dev/null",
            "/nonexistent/file",
            "/",
            "LAG_EXPORTER_FUZZ_SECRET",
            "debug",
            "json",
        ]
    ),
)
keys = st.one_of(
    st.sampled_from([*_TOP_KEYS, *_CLUSTER_KEYS, *KAFKA_KEYS, *NESTED_KEYS]),
    st.text(max_size=10),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=30,
)


@st.composite
def cluster_documents(draw: st.DrawFn) -> dict[str, Any]:
    kafka = draw(st.dictionaries(st.sampled_from(KAFKA_KEYS), values, max_size=6))
    if draw(st.booleans()):
        kafka["bootstrap.servers"] = "127.0.0.1:9092"
    if draw(st.booleans()):
        kafka["sasl.password"] = draw(
            st.sampled_from([SECRET, {"env": "LAG_EXPORTER_FUZZ_SECRET"}, {"file": "/dev/null"}])
        )
    cluster = draw(st.dictionaries(st.sampled_from(_CLUSTER_KEYS), values, max_size=6))
    cluster.setdefault("name", "c")
    cluster["kafka"] = kafka
    return cluster


documents = st.one_of(
    values,
    st.builds(
        lambda top, clusters: {**top, "clusters": clusters},
        st.dictionaries(st.sampled_from(_TOP_KEYS), values, max_size=6),
        st.lists(cluster_documents(), max_size=3),
    ),
)


def _check_outcome(document: object) -> None:
    try:
        result = parse_settings(document)
    except ConfigError as exc:
        message = str(exc)
        assert SECRET not in message, message
        assert len(message) < 2000
        return
    assert isinstance(result, Settings)
    assert SECRET not in repr(result)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_parse_settings_gives_settings_or_config_error(document: object) -> None:
    _check_outcome(document)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(lambda d: yaml.safe_dump(d), documents),
        st.sampled_from(
            [
                "[" * 5000,
                "{a: " * 3000,
                "a: &x [1]\nb: *x\nc: *y\n",
                "!!python/object:os.system {}",
                "clusters: !!binary AAAA",
                "\ufeffclusters: []",
                "poll_interval: .nan",
                "poll_interval: .inf",
                "poll_interval: 1e400",
            ]
        ),
    )
)
def test_yaml_text_gives_settings_or_config_error(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "config.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        result = load_settings(path, Overrides())
    except ConfigError:
        return
    assert isinstance(result, Settings)


def test_binary_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    for path in (binary, tmp_path / "missing.yml", tmp_path):
        try:
            load_settings(path)
        except ConfigError:
            continue
        raise AssertionError(f"{path} accepted")


def test_secret_from_unreadable_files_is_config_error(tmp_path: Path) -> None:
    binary = tmp_path / "password"
    binary.write_bytes(b"\xff\xfe\x80")
    for source in ({"file": str(binary)}, {"file": str(tmp_path)}, {"file": "a\x00b"}):
        doc = {
            "clusters": [
                {"name": "c", "kafka": {"bootstrap.servers": "k:9092", "sasl.password": source}}
            ]
        }
        try:
            parse_settings(doc)
        except ConfigError:
            continue
        raise AssertionError(f"{source} accepted")


web_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "tls_server_config",
                        "basic_auth_users",
                        "cert_file",
                        "key_file",
                        "client_ca_file",
                        "client_auth_type",
                        "min_version",
                        "alice",
                    ]
                ),
                st.text(max_size=8),
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(web_values)
def test_web_config_gives_config_or_error(document: object) -> None:
    try:
        result = parse_web_config(document, Path("/nonexistent"))
    except ConfigError:
        return
    assert isinstance(result, WebConfig)
