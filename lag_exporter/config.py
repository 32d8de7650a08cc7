"""Settings: YAML file, environment variables and flags -> typed, validated values.

Every error names the key that is wrong and what would be right, because the
person reading it is usually editing a file under pressure.
Precedence, highest first: command-line flag, environment variable, file, default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_LISTEN_ADDRESS = "0.0.0.0:9308"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_POLL_INTERVAL = 15.0

# Environment variables for the settings that are natural to set that way.
ENV_CONFIG = "LAG_EXPORTER_CONFIG"
ENV_BOOTSTRAP = "LAG_EXPORTER_BOOTSTRAP_SERVERS"
ENV_LISTEN = "LAG_EXPORTER_LISTEN_ADDRESS"
ENV_POLL_INTERVAL = "LAG_EXPORTER_POLL_INTERVAL"
ENV_LOG_LEVEL = "LAG_EXPORTER_LOG_LEVEL"
ENV_LOG_FORMAT = "LAG_EXPORTER_LOG_FORMAT"

# Cardinality of the consumer-group series: one per partition (everything),
# per topic (no per-partition group series) or per group (no per-topic either).
GRANULARITIES = ("partition", "topic", "group")

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels the exporter sets itself; a constant label may not shadow them.
RESERVED_LABELS = frozenset(
    {"cluster", "consumergroup", "topic", "partition", "state", "member_id", "client_id", "host"}
)


class ConfigError(Exception):
    """Invalid configuration. The message names the key and the fix; exit code 2."""


class Secret:
    """A string that never shows itself in logs, reprs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class NameFilter:
    """Allow/deny regexes over names. Empty allow list means allow everything."""

    allow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()

    def accepts(self, name: str) -> bool:
        if not self.allow and not self.deny:
            return True  # the usual case, asked once per group partition
        if self.allow and not any(p.fullmatch(name) for p in self.allow):
            return False
        return not any(p.fullmatch(name) for p in self.deny)


# Kafka client settings as Kafka (and librdkafka) spell them, mapped to
# kafka-python's keyword arguments. Only settings that mean something to a
# read-only admin client are accepted; anything else is a typo worth reporting.
_KAFKA_STRING_KEYS = {
    "bootstrap.servers": "bootstrap_servers",
    "client.id": "client_id",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.crl.location": "ssl_crlfile",
    "sasl.kerberos.service.name": "sasl_kerberos_service_name",
}
_KAFKA_SECRET_KEYS = {
    "sasl.password": "sasl_plain_password",
    "ssl.key.password": "ssl_password",
    "sasl.jaas.config": "",  # parsed for username and password below
}
_KAFKA_INT_KEYS = {
    "request.timeout.ms": "request_timeout_ms",
    "reconnect.backoff.ms": "reconnect_backoff_ms",
    "reconnect.backoff.max.ms": "reconnect_backoff_max_ms",
    "socket.connection.setup.timeout.ms": "socket_connection_setup_timeout_ms",
    "metadata.max.age.ms": "metadata_max_age_ms",
}
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    kafka: Mapping[str, str | int | bool | Secret]
    groups: NameFilter = NameFilter()
    topics: NameFilter = NameFilter()
    labels: Mapping[str, str] = field(default_factory=dict)
    poll_interval: float = DEFAULT_POLL_INTERVAL
    poll_timeout: float = 30.0
    include_internal_topics: bool = False
    # Which consumer-group series are exposed: per partition, per topic or per group.
    granularity: str = "partition"

    @property
    def bootstrap_servers(self) -> str:
        return str(self.kafka["bootstrap.servers"])

    def client_kwargs(self) -> dict[str, Any]:
        """kafka-python keyword arguments for this cluster (secrets revealed)."""
        out: dict[str, Any] = {}
        for key, value in self.kafka.items():
            if key == "sasl.jaas.config":
                assert isinstance(value, Secret)
                options = dict(_JAAS_OPTION.findall(value.reveal()))
                if "username" in options:
                    out.setdefault("sasl_plain_username", options["username"])
                if "password" in options:
                    out.setdefault("sasl_plain_password", options["password"])
                continue
            if key == "ssl.endpoint.identification.algorithm":
                out["ssl_check_hostname"] = str(value).lower() == "https"
                continue
            target = (
                _KAFKA_STRING_KEYS.get(key) or _KAFKA_SECRET_KEYS.get(key) or _KAFKA_INT_KEYS[key]
            )
            out[target] = value.reveal() if isinstance(value, Secret) else value
        return out


@dataclass(frozen=True, slots=True)
class Settings:
    clusters: tuple[ClusterConfig, ...]
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    max_staleness: float = 60.0
    log_level: str = "info"
    log_format: str = "text"

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return parse_listen_address(self.listen_address)


# --- parsing helpers -------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object, key: str) -> float:
    """'500ms', '15s', '2m', '1h' or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like '15s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ConfigError(f"{key}: expected a duration like '15s', '500ms' or '2m', got {value!r}")
    if seconds <= 0:
        raise ConfigError(f"{key}: must be greater than zero, got {value!r}")
    return seconds


def parse_listen_address(value: str, key: str = "listen_address") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: expected HOST:PORT such as '0.0.0.0:9308', got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _expect_mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            raise ConfigError(f"{key}: keys must be strings, got {k!r}")
    return value


def _check_keys(value: Mapping[str, Any], allowed: Sequence[str], key: str) -> None:
    for k in value:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(f"{where}: unknown key; expected one of: {', '.join(allowed)}")


def _expect_str(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _compile_patterns(value: object, key: str) -> tuple[re.Pattern[str], ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list of regular expressions, got {value!r}")
    out = []
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str):
            raise ConfigError(f"{key}[{i}]: expected a regular expression string, got {pattern!r}")
        try:
            out.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(
                f"{key}[{i}]: invalid regular expression {pattern!r}: {exc}"
            ) from None
    return tuple(out)


def _name_filter(value: object, key: str) -> NameFilter:
    if value is None:
        return NameFilter()
    mapping = _expect_mapping(value, key)
    _check_keys(mapping, ("allow", "deny"), key)
    return NameFilter(
        allow=_compile_patterns(mapping.get("allow"), f"{key}.allow"),
        deny=_compile_patterns(mapping.get("deny"), f"{key}.deny"),
    )


def resolve_secret(value: object, key: str) -> Secret:
    """A secret given inline, or as {file: PATH} or {env: NAME}, so that it
    need not live in the config file itself."""
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, Mapping) and len(value) == 1:
        if "file" in value:
            path = Path(_expect_str(value["file"], f"{key}.file"))
            try:
                return Secret(path.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                raise ConfigError(f"{key}.file: cannot read {path}: {exc.strerror}") from None
        if "env" in value:
            name = _expect_str(value["env"], f"{key}.env")
            if name not in os.environ:
                raise ConfigError(f"{key}.env: environment variable {name} is not set")
            return Secret(os.environ[name])
    raise ConfigError(f"{key}: expected a string, {{file: PATH}} or {{env: NAME}}")


def _kafka_settings(value: object, key: str) -> dict[str, str | int | bool | Secret]:
    mapping = _expect_mapping(value, key)
    allowed = [
        *_KAFKA_STRING_KEYS,
        *_KAFKA_SECRET_KEYS,
        *_KAFKA_INT_KEYS,
        "ssl.endpoint.identification.algorithm",
    ]
    _check_keys(mapping, allowed, key)
    out: dict[str, str | int | bool | Secret] = {}
    for k, v in mapping.items():
        where = f"{key}.{k}"
        if k in _KAFKA_SECRET_KEYS:
            out[k] = resolve_secret(v, where)
        elif k in _KAFKA_INT_KEYS:
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{where}: expected a positive integer, got {v!r}")
            out[k] = v
        elif k == "ssl.endpoint.identification.algorithm":
            out[k] = "" if v is None else str(v)
        else:
            out[k] = _expect_str(v, where)
    if "bootstrap.servers" not in out:
        raise ConfigError(f"{key}.bootstrap.servers: required (e.g. 'broker1:9092,broker2:9092')")
    protocol = str(out.get("security.protocol", "PLAINTEXT")).upper()
    if protocol not in _SECURITY_PROTOCOLS:
        raise ConfigError(
            f"{key}.security.protocol: expected one of {', '.join(_SECURITY_PROTOCOLS)}, "
            f"got {protocol!r}"
        )
    if "security.protocol" in out:
        out["security.protocol"] = protocol
    mechanism = out.get("sasl.mechanism")
    if mechanism is not None and str(mechanism).upper() not in _SASL_MECHANISMS:
        raise ConfigError(
            f"{key}.sasl.mechanism: expected one of {', '.join(_SASL_MECHANISMS)}, "
            f"got {mechanism!r}"
        )
    if mechanism is not None:
        out["sasl.mechanism"] = str(mechanism).upper()
    return out


def _labels(value: object, key: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = _expect_mapping(value, key)
    out = {}
    for name, v in mapping.items():
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{key}.{name}: not a valid Prometheus label name")
        if name in RESERVED_LABELS:
            raise ConfigError(f"{key}.{name}: reserved, the exporter sets this label itself")
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise ConfigError(f"{key}.{name}: expected a string value, got {v!r}")
        out[name] = str(v)
    return out


_CLUSTER_KEYS = (
    "name",
    "kafka",
    "groups",
    "topics",
    "labels",
    "poll_interval",
    "poll_timeout",
    "include_internal_topics",
    "granularity",
)
_TOP_KEYS = (
    "clusters",
    "poll_interval",
    "poll_timeout",
    "max_staleness",
    "listen_address",
    "log_level",
    "log_format",
)
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("text", "json")


def _cluster(value: object, key: str, poll_interval: float, poll_timeout: float) -> ClusterConfig:
    mapping = _expect_mapping(value, key)
    _check_keys(mapping, _CLUSTER_KEYS, key)
    if "name" not in mapping:
        raise ConfigError(f"{key}.name: required, a short name used as the 'cluster' label")
    if "kafka" not in mapping:
        raise ConfigError(f"{key}.kafka: required, with at least bootstrap.servers")
    internal = mapping.get("include_internal_topics", False)
    if not isinstance(internal, bool):
        raise ConfigError(f"{key}.include_internal_topics: expected true or false")
    return ClusterConfig(
        name=_expect_str(mapping["name"], f"{key}.name"),
        kafka=_kafka_settings(mapping["kafka"], f"{key}.kafka"),
        groups=_name_filter(mapping.get("groups"), f"{key}.groups"),
        topics=_name_filter(mapping.get("topics"), f"{key}.topics"),
        labels=_labels(mapping.get("labels"), f"{key}.labels"),
        poll_interval=parse_duration(mapping["poll_interval"], f"{key}.poll_interval")
        if "poll_interval" in mapping
        else poll_interval,
        poll_timeout=parse_duration(mapping["poll_timeout"], f"{key}.poll_timeout")
        if "poll_timeout" in mapping
        else poll_timeout,
        include_internal_topics=internal,
        granularity=_choice(
            mapping.get("granularity", "partition"), GRANULARITIES, f"{key}.granularity"
        ),
    )


def _choice(value: object, choices: Sequence[str], key: str) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
    return value.lower()


@dataclass(frozen=True, slots=True)
class Overrides:
    """Settings given as flags or environment variables (None: not given)."""

    bootstrap_servers: str | None = None
    listen_address: str | None = None
    poll_interval: str | None = None
    log_level: str | None = None
    log_format: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Overrides:
        return cls(
            bootstrap_servers=env.get(ENV_BOOTSTRAP),
            listen_address=env.get(ENV_LISTEN),
            poll_interval=env.get(ENV_POLL_INTERVAL),
            log_level=env.get(ENV_LOG_LEVEL),
            log_format=env.get(ENV_LOG_FORMAT),
        )

    def over(self, lower: Overrides) -> Overrides:
        """These overrides, falling back to `lower` where not given."""
        return Overrides(
            *(
                mine if mine is not None else theirs
                for mine, theirs in zip(
                    (
                        self.bootstrap_servers,
                        self.listen_address,
                        self.poll_interval,
                        self.log_level,
                        self.log_format,
                    ),
                    (
                        lower.bootstrap_servers,
                        lower.listen_address,
                        lower.poll_interval,
                        lower.log_level,
                        lower.log_format,
                    ),
                    strict=True,
                )
            )
        )


def parse_settings(document: object, overrides: Overrides = Overrides()) -> Settings:
    """Validate a parsed YAML document (None for no file) plus overrides."""
    mapping = _expect_mapping(document, "config") if document is not None else {}
    _check_keys(mapping, _TOP_KEYS, "")
    poll_interval = (
        parse_duration(overrides.poll_interval, "--poll-interval")
        if overrides.poll_interval is not None
        else parse_duration(mapping.get("poll_interval", DEFAULT_POLL_INTERVAL), "poll_interval")
    )
    poll_timeout = parse_duration(mapping.get("poll_timeout", 30.0), "poll_timeout")
    max_staleness = parse_duration(mapping.get("max_staleness", 60.0), "max_staleness")

    listen = overrides.listen_address or mapping.get("listen_address", DEFAULT_LISTEN_ADDRESS)
    listen = _expect_str(listen, "listen_address")
    parse_listen_address(listen)

    raw_clusters = mapping.get("clusters")
    clusters: list[ClusterConfig] = []
    if raw_clusters is not None:
        if not isinstance(raw_clusters, list) or not raw_clusters:
            raise ConfigError("clusters: expected a non-empty list of clusters")
        for i, raw in enumerate(raw_clusters):
            clusters.append(_cluster(raw, f"clusters[{i}]", poll_interval, poll_timeout))
    if overrides.bootstrap_servers is not None:
        if clusters:
            raise ConfigError(
                "--bootstrap-servers: the config file already lists clusters; give one or the other"
            )
        kafka = _kafka_settings(
            {"bootstrap.servers": overrides.bootstrap_servers}, "--bootstrap-servers"
        )
        clusters.append(
            ClusterConfig("default", kafka, poll_interval=poll_interval, poll_timeout=poll_timeout)
        )
    if not clusters:
        kafka = _kafka_settings({"bootstrap.servers": DEFAULT_BOOTSTRAP}, "default")
        clusters.append(
            ClusterConfig("default", kafka, poll_interval=poll_interval, poll_timeout=poll_timeout)
        )
    names = [c.name for c in clusters]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"clusters: the name {name!r} is used twice; names must be unique")

    return Settings(
        clusters=tuple(clusters),
        listen_address=listen,
        max_staleness=max_staleness,
        log_level=_choice(
            overrides.log_level or mapping.get("log_level", "info"), _LOG_LEVELS, "log_level"
        ),
        log_format=_choice(
            overrides.log_format or mapping.get("log_format", "text"), _LOG_FORMATS, "log_format"
        ),
    )


def load_document(path: str | Path) -> object:
    """Read and parse a YAML file; errors name the file and the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p}: cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {p}:{where}: not valid YAML: {problem}") from None


def load_settings(path: str | Path | None, overrides: Overrides = Overrides()) -> Settings:
    document = load_document(path) if path is not None else None
    try:
        return parse_settings(document, overrides)
    except ConfigError as exc:
        if path is not None:
            raise ConfigError(f"{path}: {exc}") from None
        raise
