"""Settings: YAML file, environment variables and flags -> typed, validated values.

Every error names the key that is wrong and what would be right, because the
person reading it is usually editing a file under pressure.
Precedence, highest first: command-line flag, environment variable, file, default.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .redact import remember

if TYPE_CHECKING:
    from .alerts.rules import AlertingSettings

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
    {
        "cluster",
        "consumergroup",
        "topic",
        "partition",
        "state",
        "member_id",
        "client_id",
        "host",
        "main_topic",
        "method",
        "group_type",
    }
)


class ConfigError(Exception):
    """Invalid configuration. The message names the key and the fix; exit code 2."""


class Secret:
    """A string that never shows itself in logs, reprs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)  # kept out of logs and error texts from now on

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
class LagSecondsConfig:
    history_size: int = 240  # (time, log-end) points kept per partition
    # Groups whose lag in seconds is read from the record at the committed
    # offset rather than estimated; None: no group.
    exact_groups: NameFilter | None = None
    exact_max_fetches: int = 200  # record reads per poll, at most


@dataclass(frozen=True, slots=True)
class StatusConfig:
    allowed_lag: int = 2
    window: float = 600.0
    stop_after: float = 300.0
    stop_after_max: float = 1800.0


# Spring Kafka's retryable topics: `<topic>-retry`, `<topic>-retry-N` (one per
# attempt or per delay, e.g. `-retry-5000`), and the dead-letter topic
# `<topic>-dlt`; its DeadLetterPublishingRecoverer names it `<topic>.DLT`.
DEFAULT_RETRY_PATTERNS = (r"(?P<main>.+)-retry(?:-\d+)?",)
DEFAULT_DEAD_LETTER_PATTERNS = (r"(?P<main>.+)[-.](?:dlt|DLT)",)


@dataclass(frozen=True, slots=True)
class InsightConfig:
    """Partition advice, hot partitions and retry topics."""

    headroom: float = 1.2  # partitions needed = ceil(production x headroom / capacity)
    capacity_window: float = 3600.0  # how long busy periods count towards capacity
    min_busy_time: float = 30.0  # busy observation needed before capacity is trusted
    hot_factor: float = 2.0  # hot: above hot_factor x the mean of the other partitions
    hot_min_rate: float = 1.0  # messages/s: slower topics are not judged for hot partitions
    retry_patterns: tuple[re.Pattern[str], ...] = tuple(
        re.compile(p) for p in DEFAULT_RETRY_PATTERNS
    )
    dead_letter_patterns: tuple[re.Pattern[str], ...] = tuple(
        re.compile(p) for p in DEFAULT_DEAD_LETTER_PATTERNS
    )


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
    lag_seconds: LagSecondsConfig = field(default_factory=LagSecondsConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    rate_window: float = 300.0
    insight: InsightConfig = field(default_factory=InsightConfig)
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
                remember(options.get("password", ""))
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
    alerting: AlertingSettings | None = None  # None: no `alerting:` section
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    max_staleness: float = 60.0
    log_level: str = "info"
    log_format: str = "text"
    state_dir: Path | None = None
    state_interval: float = 60.0

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return parse_listen_address(self.listen_address)


# --- parsing helpers -------------------------------------------------------

# Longer than any sensible interval, and short enough for every timer API.
MAX_DURATION = 366 * 86400.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object, key: str) -> float:
    """'500ms', '15s', '2m', '1h' or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like '15s', got {_short(value)}")
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        else:
            raise ConfigError(
                f"{key}: expected a duration like '15s', '500ms' or '2m', got {_short(value)}"
            )
    except OverflowError:
        seconds = math.inf
    if not seconds > 0:  # also NaN
        raise ConfigError(f"{key}: must be greater than zero, got {_short(value)}")
    if seconds > MAX_DURATION:
        raise ConfigError(f"{key}: at most {MAX_DURATION / 86400:.0f} days, got {_short(value)}")
    return seconds


# Below this a poll cannot finish before the next is due on any real cluster, and
# the exporter would only load Kafka.
MIN_POLL_INTERVAL = 0.1


def parse_poll_interval(value: object, key: str) -> float:
    """A poll interval: a duration of at least 100 ms."""
    seconds = parse_duration(value, key)
    if seconds < MIN_POLL_INTERVAL:
        raise ConfigError(f"{key}: at least 100ms, got {_short(value)}")
    return seconds


def _short(value: object, limit: int = 80) -> str:
    """repr() of a user's value, cut so that an error message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_listen_address(value: str, key: str = "listen_address") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if (
        not sep
        or not port.isascii()
        or not port.isdigit()
        or len(port) > 5
        or not 0 <= int(port) <= 65535
        or "\0" in host
    ):
        raise ConfigError(f"{key}: expected HOST:PORT such as '0.0.0.0:9308', got {_short(value)}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _expect_mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            raise ConfigError(f"{key}: keys must be strings, got {_short(k)}")
    return value


def _check_keys(value: Mapping[str, Any], allowed: Sequence[str], key: str) -> None:
    for k in value:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(f"{where}: unknown key; expected one of: {', '.join(allowed)}")


def _expect_str(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {_short(value)}")
    return value


def _compile_patterns(value: object, key: str) -> tuple[re.Pattern[str], ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list of regular expressions, got {_short(value)}")
    out = []
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str):
            raise ConfigError(
                f"{key}[{i}]: expected a regular expression string, got {_short(pattern)}"
            )
        try:
            out.append(re.compile(pattern))
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(
                f"{key}[{i}]: invalid regular expression {_short(pattern)}: {exc}"
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
            except UnicodeDecodeError:
                raise ConfigError(f"{key}.file: {path} is not UTF-8 text") from None
            except ValueError:  # e.g. a NUL in the path
                raise ConfigError(f"{key}.file: not a valid file path") from None
        if "env" in value:
            name = _expect_str(value["env"], f"{key}.env")
            if "\0" in name or "=" in name:
                raise ConfigError(f"{key}.env: not a valid environment variable name")
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
                raise ConfigError(f"{where}: expected a positive integer, got {_short(v)}")
            out[k] = v
        elif k == "ssl.endpoint.identification.algorithm":
            out[k] = "" if v is None else str(v)
        elif k == "bootstrap.servers":
            out[k] = _bootstrap_servers(v, where)
        else:
            out[k] = _expect_str(v, where)
    if "bootstrap.servers" not in out:
        raise ConfigError(f"{key}.bootstrap.servers: required (e.g. 'broker1:9092,broker2:9092')")
    protocol = str(out.get("security.protocol", "PLAINTEXT")).upper()
    if protocol not in _SECURITY_PROTOCOLS:
        raise ConfigError(
            f"{key}.security.protocol: expected one of {', '.join(_SECURITY_PROTOCOLS)}, "
            f"got {_short(protocol)}"
        )
    if "security.protocol" in out:
        out["security.protocol"] = protocol
    mechanism = out.get("sasl.mechanism")
    if mechanism is not None and str(mechanism).upper() not in _SASL_MECHANISMS:
        raise ConfigError(
            f"{key}.sasl.mechanism: expected one of {', '.join(_SASL_MECHANISMS)}, "
            f"got {_short(mechanism)}"
        )
    if mechanism is not None:
        out["sasl.mechanism"] = str(mechanism).upper()
    return out


_BOOTSTRAP_ENTRY = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _bootstrap_servers(value: object, key: str) -> str:
    """'host:port,host:port' checked entry by entry, so a typo fails here and not
    as a connection error after the first poll timeout."""
    text = _expect_str(value, key)
    if not text:
        raise ConfigError(f"{key}: empty; expected 'host:port[,host:port...]'")
    if any(c.isspace() for c in text):
        raise ConfigError(
            f"{key}: contains spaces; expected 'host:port[,host:port...]' without spaces, "
            f"got {_short(text)}"
        )
    for entry in text.split(","):
        m = _BOOTSTRAP_ENTRY.match(entry)
        if m is None or not 0 < int(m.group(1)) < 65536:
            raise ConfigError(
                f"{key}: {_short(entry)} is not host:port with a port from 1 to 65535 "
                f"(e.g. 'broker1:9092,broker2:9092', '[::1]:9092')"
            )
    return text


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
        # Numbers are refused rather than converted: YAML reads `version: 1.10`
        # as 1.1, and a label value should be what the user wrote.
        if not isinstance(v, str):
            raise ConfigError(
                f'{key}.{name}: expected a string value (quote it: {name}: "{v}"), got {_short(v)}'
            )
        out[name] = v
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
    "lag_seconds",
    "status",
    "rate_window",
    "insight",
    "granularity",
)
_TOP_KEYS = (
    "clusters",
    "alerting",
    "poll_interval",
    "poll_timeout",
    "max_staleness",
    "listen_address",
    "log_level",
    "log_format",
    "state_dir",
    "state_interval",
)
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("text", "json")


def _positive_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: expected a positive integer, got {_short(value)}")
    return value


# Lag in seconds interpolates between kept (time, log-end) points: fewer than
# this cover only the last few polls, and most values would be lower bounds.
MIN_HISTORY_SIZE = 10


def _history_size(value: object, key: str) -> int:
    size = _positive_int(value, key)
    if size < MIN_HISTORY_SIZE:
        raise ConfigError(
            f"{key}: at least {MIN_HISTORY_SIZE} (lag in seconds is interpolated between "
            f"the kept points), got {_short(value)}"
        )
    return size


def _lag_seconds(value: object, key: str) -> LagSecondsConfig:
    if value is None:
        return LagSecondsConfig()
    mapping = _expect_mapping(value, key)
    _check_keys(mapping, ("history_size", "exact", "exact_max_fetches"), key)
    exact = mapping.get("exact", False)
    exact_groups: NameFilter | None
    if exact is False:
        exact_groups = None
    elif exact is True:
        exact_groups = NameFilter()
    else:
        exact_groups = NameFilter(allow=_compile_patterns(exact, f"{key}.exact"))
    return LagSecondsConfig(
        history_size=_history_size(mapping.get("history_size", 240), f"{key}.history_size"),
        exact_groups=exact_groups,
        exact_max_fetches=_positive_int(
            mapping.get("exact_max_fetches", 200), f"{key}.exact_max_fetches"
        ),
    )


def _status(value: object, key: str) -> StatusConfig:
    if value is None:
        return StatusConfig()
    mapping = _expect_mapping(value, key)
    _check_keys(mapping, ("allowed_lag", "window", "stop_after", "stop_after_max"), key)
    allowed = mapping.get("allowed_lag", 2)
    if isinstance(allowed, bool) or not isinstance(allowed, int) or allowed < 0:
        raise ConfigError(
            f"{key}.allowed_lag: expected a non-negative integer, got {_short(allowed)}"
        )
    config = StatusConfig(
        allowed_lag=allowed,
        window=parse_duration(mapping.get("window", 600), f"{key}.window"),
        stop_after=parse_duration(mapping.get("stop_after", 300), f"{key}.stop_after"),
        stop_after_max=parse_duration(mapping.get("stop_after_max", 1800), f"{key}.stop_after_max"),
    )
    if config.stop_after_max < config.stop_after:
        raise ConfigError(f"{key}.stop_after_max: must not be less than stop_after")
    return config


def _positive_number(value: object, key: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
        raise ConfigError(f"{key}: expected a number greater than {minimum:g}, got {value!r}")
    return float(value)


def _topic_patterns(value: object, key: str) -> tuple[re.Pattern[str], ...]:
    patterns = _compile_patterns(value, key)
    for i, pattern in enumerate(patterns):
        if "main" not in pattern.groupindex:
            raise ConfigError(
                f"{key}[{i}]: {pattern.pattern!r} needs a named group (?P<main>...) "
                "that matches the main topic's name"
            )
    return patterns


def _insight(value: object, key: str) -> InsightConfig:
    if value is None:
        return InsightConfig()
    mapping = _expect_mapping(value, key)
    _check_keys(
        mapping,
        (
            "headroom",
            "capacity_window",
            "min_busy_time",
            "hot_factor",
            "hot_min_rate",
            "retry_topics",
            "dead_letter_topics",
        ),
        key,
    )
    default = InsightConfig()
    return InsightConfig(
        headroom=_positive_number(mapping.get("headroom", default.headroom), f"{key}.headroom"),
        capacity_window=parse_duration(
            mapping.get("capacity_window", default.capacity_window), f"{key}.capacity_window"
        ),
        min_busy_time=parse_duration(
            mapping.get("min_busy_time", default.min_busy_time), f"{key}.min_busy_time"
        ),
        hot_factor=_positive_number(
            mapping.get("hot_factor", default.hot_factor), f"{key}.hot_factor", minimum=1.0
        ),
        hot_min_rate=_positive_number(
            mapping.get("hot_min_rate", default.hot_min_rate), f"{key}.hot_min_rate"
        ),
        retry_patterns=_topic_patterns(mapping["retry_topics"], f"{key}.retry_topics")
        if "retry_topics" in mapping
        else default.retry_patterns,
        dead_letter_patterns=_topic_patterns(
            mapping["dead_letter_topics"], f"{key}.dead_letter_topics"
        )
        if "dead_letter_topics" in mapping
        else default.dead_letter_patterns,
    )


def _cluster(
    value: object,
    key: str,
    poll_interval: float,
    poll_timeout: float,
    interval_overridden: bool = False,
) -> ClusterConfig:
    """One entry of `clusters`; `interval_overridden`: a flag or the environment set the
    poll interval, which then beats the file's, per cluster too."""
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
        poll_interval=parse_poll_interval(mapping["poll_interval"], f"{key}.poll_interval")
        if "poll_interval" in mapping and not interval_overridden
        else poll_interval,
        poll_timeout=parse_duration(mapping["poll_timeout"], f"{key}.poll_timeout")
        if "poll_timeout" in mapping
        else poll_timeout,
        include_internal_topics=internal,
        lag_seconds=_lag_seconds(mapping.get("lag_seconds"), f"{key}.lag_seconds"),
        status=_status(mapping.get("status"), f"{key}.status"),
        rate_window=parse_duration(mapping.get("rate_window", 300), f"{key}.rate_window"),
        insight=_insight(mapping.get("insight"), f"{key}.insight"),
        granularity=_choice(
            mapping.get("granularity", "partition"), GRANULARITIES, f"{key}.granularity"
        ),
    )


def _directory(value: object, key: str) -> Path:
    text = _expect_str(value, key)
    if "\0" in text:
        raise ConfigError(f"{key}: not a valid directory path")
    return Path(text)


def _choice(value: object, choices: Sequence[str], key: str) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {_short(value)}")
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
        parse_poll_interval(overrides.poll_interval, "--poll-interval")
        if overrides.poll_interval is not None
        else parse_poll_interval(
            mapping.get("poll_interval", DEFAULT_POLL_INTERVAL), "poll_interval"
        )
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
            clusters.append(
                _cluster(
                    raw,
                    f"clusters[{i}]",
                    poll_interval,
                    poll_timeout,
                    interval_overridden=overrides.poll_interval is not None,
                )
            )
    if overrides.bootstrap_servers is not None:
        if clusters:
            raise ConfigError(
                "--bootstrap-servers: the config file already lists clusters; give one or the other"
            )
        servers = _bootstrap_servers(overrides.bootstrap_servers, "--bootstrap-servers")
        kafka = _kafka_settings({"bootstrap.servers": servers}, "--bootstrap-servers")
        clusters.append(
            ClusterConfig("default", kafka, poll_interval=poll_interval, poll_timeout=poll_timeout)
        )
    if not clusters:
        kafka = _kafka_settings({"bootstrap.servers": DEFAULT_BOOTSTRAP}, "default")
        clusters.append(
            ClusterConfig("default", kafka, poll_interval=poll_interval, poll_timeout=poll_timeout)
        )
    alerting = None
    if "alerting" in mapping:
        # Imported here: the alerts package builds on this module's helpers.
        from .alerts.rules import parse_alerting

        alerting = parse_alerting(
            mapping["alerting"],
            cluster_names=[c.name for c in clusters],
            cluster_label_names={label for c in clusters for label in c.labels},
        )

    names = [c.name for c in clusters]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(
                f"clusters: the name {_short(name)} is used twice; names must be unique"
            )

    state_dir = mapping.get("state_dir")
    return Settings(
        clusters=tuple(clusters),
        alerting=alerting,
        listen_address=listen,
        max_staleness=max_staleness,
        state_dir=_directory(state_dir, "state_dir") if state_dir is not None else None,
        state_interval=parse_duration(mapping.get("state_interval", 60), "state_interval"),
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
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"config file {p}: cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {p}:{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"config file {p}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"config file {p}: not valid YAML: {_short(str(exc), 200)}") from None


def load_settings(path: str | Path | None, overrides: Overrides = Overrides()) -> Settings:
    document = load_document(path) if path is not None else None
    try:
        return parse_settings(document, overrides)
    except ConfigError as exc:
        if path is not None:
            raise ConfigError(f"{path}: {exc}") from None
        raise
