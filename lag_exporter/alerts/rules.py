"""The `alerting:` section of the configuration -> typed, validated rules and notifiers.

Called from config.parse_settings, so every mistake is a ConfigError (exit
code 2) whose message names the rule and the field: `lag-exporter
validate-config` finds a bad rule before it silently never fires.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import (
    ConfigError,
    Secret,
    _check_keys,
    _expect_mapping,
    _expect_str,
    parse_duration,
    resolve_secret,
)
from .measures import MEASURES, Value
from .template import Template, TemplateError, parse_template

NOTIFIER_TYPES = ("webhook", "alertmanager", "slack")
WEBHOOK_FORMATS = ("native", "alertmanager")
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
# Defaults of `for` and `keep_firing_for` for rules on status words (status,
# group_status): a rebalance moves partitions through STALL or STOP for
# seconds to a minute or two; and after a restart or an outage without saved
# history a status is OK until it has seen `stop_after` (5 minutes) again.
DEFAULT_STATUS_FOR = 120.0
DEFAULT_STATUS_KEEP_FIRING_FOR = 600.0
# A notification is retried for a day: long enough to outlast a receiver's
# outage over a night or a weekend's first day, short enough that a page
# arriving later than that is more confusing than useful.
DEFAULT_RETRY_FOR = 24 * 3600.0
# Between attempts at most a minute, so a receiver that comes back gets its
# notifications within a minute.
DEFAULT_MAX_BACKOFF = 60.0
# Alertmanager resolves an alert by itself when it is not re-sent before its
# endsAt; Prometheus re-sends every minute, and so does this notifier.
DEFAULT_ALERTMANAGER_REPEAT_INTERVAL = 60.0

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# Labels every alert gets from the exporter; a rule's own labels may not replace them.
RESERVED_ALERT_LABELS = frozenset({"alertname", "severity", "cluster"})
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Characters that never occur in a topic name and hardly ever in a group id:
# a plain string containing one was almost certainly meant as a regex.
_REGEX_HINT = re.compile(r"[*+?^$()\[\]{}|\\]")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True, slots=True)
class NameSelector:
    """Exact names and full-match regexes to include and exclude.
    Nothing included means everything; exclusion wins."""

    include_names: frozenset[str] = frozenset()
    include_patterns: tuple[re.Pattern[str], ...] = ()
    exclude_names: frozenset[str] = frozenset()
    exclude_patterns: tuple[re.Pattern[str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.include_names
            or self.include_patterns
            or self.exclude_names
            or self.exclude_patterns
        )

    def matches(self, name: str) -> bool:
        if name in self.exclude_names or any(p.fullmatch(name) for p in self.exclude_patterns):
            return False
        if not self.include_names and not self.include_patterns:
            return True
        return name in self.include_names or any(p.fullmatch(name) for p in self.include_patterns)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    metric: str
    op: str
    threshold: Value
    for_seconds: float
    severity: str = "warning"
    keep_firing_for: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, Template] = field(default_factory=dict)
    notifiers: tuple[str, ...] = ()
    clusters: NameSelector = NameSelector()
    groups: NameSelector = NameSelector()
    topics: NameSelector = NameSelector()

    def holds(self, value: Value) -> bool:
        """Whether the rule's condition is true for this value."""
        return OPERATORS[self.op](value, self.threshold)

    def render_annotations(self, labels: Mapping[str, str], value: Value | None) -> dict[str, str]:
        return {k: t.render(labels, value, self.threshold) for k, t in self.annotations.items()}


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    name: str
    type: str  # webhook | alertmanager | slack
    url: Secret  # a Slack webhook URL is itself a credential
    format: str = "native"  # webhook only: native | alertmanager
    headers: Mapping[str, Secret] = field(default_factory=dict)
    basic_auth: tuple[str, Secret] | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    timeout: float = 10.0
    max_attempts: int | None = None  # None: retried until `retry_for` has passed
    backoff: float = 1.0
    max_backoff: float = DEFAULT_MAX_BACKOFF
    retry_for: float = DEFAULT_RETRY_FOR
    queue_size: int = 1000
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    channel: str | None = None  # slack only
    username: str | None = None  # slack only


@dataclass(frozen=True, slots=True)
class AlertingSettings:
    rules: tuple[Rule, ...] = ()
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=dict)
    state_file: str | None = None
    instance: str | None = None  # default: host name and port of the exporter
    external_url: str | None = None  # default: http://<host name>:<port>

    @property
    def repeat_intervals(self) -> dict[str, float]:
        return {name: n.repeat_interval for name, n in self.notifiers.items()}


_ALERTING_KEYS = ("rules", "notifiers", "state_file", "instance", "external_url")
_RULE_KEYS = (
    "name",
    "metric",
    "op",
    "threshold",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "annotations",
    "notifiers",
    "clusters",
    "groups",
    "topics",
)
_COMMON_NOTIFIER_KEYS = (
    "type",
    "url",
    "headers",
    "basic_auth",
    "tls",
    "timeout",
    "max_attempts",
    "backoff",
    "max_backoff",
    "retry_for",
    "queue_size",
    "repeat_interval",
)
_NOTIFIER_KEYS = {
    "webhook": (*_COMMON_NOTIFIER_KEYS, "format"),
    "alertmanager": _COMMON_NOTIFIER_KEYS,
    "slack": (*_COMMON_NOTIFIER_KEYS, "channel", "username"),
}


def parse_alerting(
    value: object,
    *,
    cluster_names: Collection[str],
    cluster_label_names: Collection[str],
    key: str = "alerting",
) -> AlertingSettings:
    """Validate the `alerting:` mapping. Cluster names and constant label names
    are needed to check selectors and templates against what really exists."""
    mapping = _expect_mapping(value if value is not None else {}, key)
    _check_keys(mapping, _ALERTING_KEYS, key)

    raw_notifiers = mapping.get("notifiers") or {}
    notifiers: dict[str, NotifierConfig] = {}
    for name, raw in _expect_mapping(raw_notifiers, f"{key}.notifiers").items():
        notifiers[name] = _notifier(name, raw, f"{key}.notifiers.{name}")

    raw_rules = mapping.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{key}.rules: expected a list of rules")
    rules: list[Rule] = []
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, f"{key}.rules[{i}]", notifiers, cluster_names, cluster_label_names)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(
                f"{key}.rules[{i}].name: {rule.name!r} is used twice; rule names must be unique"
            )
        rules.append(rule)

    state_file = mapping.get("state_file")
    if state_file is not None:
        state_file = _expect_str(state_file, f"{key}.state_file")
    instance = mapping.get("instance")
    if instance is not None:
        instance = _expect_str(instance, f"{key}.instance")
    external_url = mapping.get("external_url")
    if external_url is not None:
        external_url = _http_url(
            _expect_str(external_url, f"{key}.external_url"), f"{key}.external_url"
        ).rstrip("/")
    return AlertingSettings(
        rules=tuple(rules),
        notifiers=notifiers,
        state_file=state_file,
        instance=instance,
        external_url=external_url,
    )


def _http_url(url: str, key: str, show: bool = True) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = f", got {url!r}" if show else ""
        raise ConfigError(f"{key}: expected an http:// or https:// URL{shown}")
    return url


def _duration_or_zero(value: object, key: str) -> float:
    """Like parse_duration, but 0 is allowed (`for: 0s` fires at once)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    if isinstance(value, str) and value.strip().startswith("-"):
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    if isinstance(value, str) and (m := _DURATION.match(value)) and float(m.group(1)) == 0:
        return 0.0
    return parse_duration(value, key)


def _positive_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _notifier(name: str, value: object, key: str) -> NotifierConfig:
    mapping = _expect_mapping(value, key)
    kind = mapping.get("type")
    if kind not in NOTIFIER_TYPES:
        raise ConfigError(f"{key}.type: expected one of {', '.join(NOTIFIER_TYPES)}, got {kind!r}")
    _check_keys(mapping, _NOTIFIER_KEYS[kind], key)
    if "url" not in mapping:
        example = "http://alertmanager:9093" if kind == "alertmanager" else "https://..."
        raise ConfigError(f"{key}.url: required (e.g. {example})")
    url = resolve_secret(mapping["url"], f"{key}.url")
    # Never echo the URL: for Slack it is the credential.
    _http_url(url.reveal(), f"{key}.url", show=False)

    headers: dict[str, Secret] = {}
    for header, v in _expect_mapping(mapping.get("headers") or {}, f"{key}.headers").items():
        if not _HEADER_NAME.match(header):
            raise ConfigError(f"{key}.headers.{header}: not a valid HTTP header name")
        headers[header] = resolve_secret(
            str(v) if isinstance(v, int) else v, f"{key}.headers.{header}"
        )

    basic_auth = None
    if mapping.get("basic_auth") is not None:
        auth = _expect_mapping(mapping["basic_auth"], f"{key}.basic_auth")
        _check_keys(auth, ("username", "password"), f"{key}.basic_auth")
        if "username" not in auth or "password" not in auth:
            raise ConfigError(f"{key}.basic_auth: needs both username and password")
        basic_auth = (
            _expect_str(auth["username"], f"{key}.basic_auth.username"),
            resolve_secret(auth["password"], f"{key}.basic_auth.password"),
        )

    ca_file = None
    insecure = False
    if mapping.get("tls") is not None:
        tls = _expect_mapping(mapping["tls"], f"{key}.tls")
        _check_keys(tls, ("ca_file", "insecure_skip_verify"), f"{key}.tls")
        if tls.get("ca_file") is not None:
            ca_file = _expect_str(tls["ca_file"], f"{key}.tls.ca_file")
            if not Path(ca_file).is_file():
                raise ConfigError(f"{key}.tls.ca_file: {ca_file} is not a readable file")
        insecure = tls.get("insecure_skip_verify", False)
        if not isinstance(insecure, bool):
            raise ConfigError(f"{key}.tls.insecure_skip_verify: expected true or false")

    fmt = mapping.get("format", "native")
    if fmt not in WEBHOOK_FORMATS:
        raise ConfigError(
            f"{key}.format: expected one of {', '.join(WEBHOOK_FORMATS)}, got {fmt!r}"
        )
    default_repeat = (
        DEFAULT_ALERTMANAGER_REPEAT_INTERVAL if kind == "alertmanager" else DEFAULT_REPEAT_INTERVAL
    )
    optional = {
        k: _expect_str(mapping[k], f"{key}.{k}") if mapping.get(k) is not None else None
        for k in ("channel", "username")
    }
    return NotifierConfig(
        name=name,
        type=kind,
        url=url,
        format=fmt,
        headers=headers,
        basic_auth=basic_auth,
        ca_file=ca_file,
        insecure_skip_verify=insecure,
        timeout=parse_duration(mapping.get("timeout", 10.0), f"{key}.timeout"),
        max_attempts=(
            _positive_int(mapping["max_attempts"], f"{key}.max_attempts")
            if mapping.get("max_attempts") is not None
            else None
        ),
        backoff=parse_duration(mapping.get("backoff", 1.0), f"{key}.backoff"),
        max_backoff=parse_duration(
            mapping.get("max_backoff", DEFAULT_MAX_BACKOFF), f"{key}.max_backoff"
        ),
        retry_for=parse_duration(mapping.get("retry_for", DEFAULT_RETRY_FOR), f"{key}.retry_for"),
        queue_size=_positive_int(mapping.get("queue_size", 1000), f"{key}.queue_size"),
        repeat_interval=parse_duration(
            mapping.get("repeat_interval", default_repeat), f"{key}.repeat_interval"
        ),
        channel=optional["channel"],
        username=optional["username"],
    )


def _selector_items(value: object, key: str) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    if value is None:
        return frozenset(), ()
    items = [value] if isinstance(value, str | Mapping) else value
    if not isinstance(items, list):
        raise ConfigError(f"{key}: expected a list of names and {{regex: ...}} entries")
    names: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            if _REGEX_HINT.search(item):
                raise ConfigError(
                    f"{where}: {item!r} looks like a regular expression, but plain strings are "
                    f"exact names; write {{regex: {item!r}}}"
                )
            names.add(item)
        elif isinstance(item, Mapping) and set(item) == {"regex"}:
            pattern = _expect_str(item["regex"], f"{where}.regex")
            try:
                patterns.append(re.compile(pattern))
            except re.error as exc:
                raise ConfigError(
                    f"{where}.regex: invalid regular expression {pattern!r}: {exc}"
                ) from None
        else:
            raise ConfigError(
                f"{where}: expected an exact name or {{regex: PATTERN}}, got {item!r}"
            )
    return frozenset(names), tuple(patterns)


def _selector(value: object, key: str) -> NameSelector:
    """A name, a list (of names to include), or {include: [...], exclude: [...]}."""
    if value is None:
        return NameSelector()
    if isinstance(value, Mapping) and set(value) != {"regex"}:
        mapping = _expect_mapping(value, key)
        _check_keys(mapping, ("include", "exclude"), key)
        include = _selector_items(mapping.get("include"), f"{key}.include")
        exclude = _selector_items(mapping.get("exclude"), f"{key}.exclude")
    else:
        include = _selector_items(value, key)
        exclude = (frozenset(), ())
    return NameSelector(include[0], include[1], exclude[0], exclude[1])


def _rule(
    value: object,
    key: str,
    notifiers: Mapping[str, NotifierConfig],
    cluster_names: Collection[str],
    cluster_label_names: Collection[str],
) -> Rule:
    mapping = _expect_mapping(value, key)
    if "name" not in mapping:
        raise ConfigError(f"{key}.name: required, the alert's name (its `alertname` label)")
    name = _expect_str(mapping["name"], f"{key}.name")
    key = f"{key} ({name})"  # from here on, errors name the rule as the user wrote it
    _check_keys(mapping, _RULE_KEYS, key)

    metric = mapping.get("metric")
    if metric not in MEASURES:
        raise ConfigError(
            f"{key}.metric: unknown metric {metric!r}; expected one of {', '.join(MEASURES)}"
        )
    measure = MEASURES[metric]

    op = mapping.get("op", ">")
    if op not in OPERATORS:
        raise ConfigError(f"{key}.op: expected one of {' '.join(OPERATORS)}, got {op!r}")
    if "threshold" not in mapping:
        raise ConfigError(f"{key}.threshold: required, the value the metric is compared with")
    threshold = mapping["threshold"]
    if measure.numeric:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"{key}.threshold: expected a number, got {threshold!r}")
    else:
        if op not in ("==", "!="):
            raise ConfigError(f"{key}.op: metric {metric} is compared with == or != only")
        threshold = _expect_str(threshold, f"{key}.threshold")

    # Status words come from a window of observations and can pass through
    # STALL or STOP while a group rebalances: by default a status rule waits
    # before paging and before calling an incident over (README, "Hysteresis").
    status_rule = not measure.numeric
    for_seconds = _duration_or_zero(
        mapping.get("for", DEFAULT_STATUS_FOR if status_rule else 0), f"{key}.for"
    )
    keep_firing_for = _duration_or_zero(
        mapping.get("keep_firing_for", DEFAULT_STATUS_KEEP_FIRING_FOR if status_rule else 0),
        f"{key}.keep_firing_for",
    )
    severity = _expect_str(mapping.get("severity", "warning"), f"{key}.severity")

    labels: dict[str, str] = {}
    for label, v in _expect_mapping(mapping.get("labels") or {}, f"{key}.labels").items():
        if not _LABEL_NAME.match(label) or label.startswith("__"):
            raise ConfigError(f"{key}.labels.{label}: not a valid Prometheus label name")
        if label in RESERVED_ALERT_LABELS or label in measure.labels:
            raise ConfigError(f"{key}.labels.{label}: reserved, the exporter sets this label")
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise ConfigError(f"{key}.labels.{label}: expected a string value, got {v!r}")
        labels[label] = str(v)

    available = {
        *RESERVED_ALERT_LABELS,
        *measure.labels,
        *labels,
        *cluster_label_names,
    }
    if not measure.per_cluster:
        # About the exporter itself: no cluster, and no cluster's constant labels.
        available -= {"cluster", *cluster_label_names}
        if mapping.get("clusters") is not None:
            raise ConfigError(
                f"{key}.clusters: metric {metric} is about the exporter, not a cluster"
            )
    annotations: dict[str, Template] = {}
    raw_annotations = _expect_mapping(mapping.get("annotations") or {}, f"{key}.annotations")
    for annotation, text in raw_annotations.items():
        where = f"{key}.annotations.{annotation}"
        try:
            annotations[annotation] = parse_template(_expect_str(text, where), available)
        except TemplateError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if "summary" not in annotations:
        default = _default_summary(metric, measure.labels, measure.per_cluster)
        annotations["summary"] = parse_template(default, available)

    if "notifiers" in mapping:
        raw = mapping["notifiers"]
        if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
            raise ConfigError(f"{key}.notifiers: expected a list of notifier names")
        for i, notifier in enumerate(raw):
            if notifier not in notifiers:
                configured = ", ".join(notifiers) or "none"
                raise ConfigError(
                    f"{key}.notifiers[{i}]: unknown notifier {notifier!r}; configured: {configured}"
                )
        rule_notifiers = tuple(dict.fromkeys(raw))
    else:
        rule_notifiers = tuple(notifiers)  # omitted: every configured notifier

    clusters = _selector(mapping.get("clusters"), f"{key}.clusters")
    for exact in clusters.include_names | clusters.exclude_names:
        if exact not in cluster_names:
            raise ConfigError(
                f"{key}.clusters: no cluster is named {exact!r}; clusters: "
                f"{', '.join(cluster_names)}"
            )
    groups_selector = _selector(mapping.get("groups"), f"{key}.groups")
    if "consumergroup" not in measure.labels and not groups_selector.is_empty:
        raise ConfigError(
            f"{key}.groups: metric {metric} is not per group, a group selector cannot apply"
        )
    topics = _selector(mapping.get("topics"), f"{key}.topics")
    if "topic" not in measure.labels and not topics.is_empty:
        raise ConfigError(
            f"{key}.topics: metric {metric} is per group, a topic selector cannot apply; "
            "use lag or lag_sum to select topics"
        )
    return Rule(
        name=name,
        metric=metric,
        op=op,
        threshold=threshold,
        for_seconds=for_seconds,
        severity=severity,
        keep_firing_for=keep_firing_for,
        labels=labels,
        annotations=annotations,
        notifiers=rule_notifiers,
        clusters=clusters,
        groups=_selector(mapping.get("groups"), f"{key}.groups"),
        topics=topics,
    )


def _default_summary(metric: str, labels: Sequence[str], per_cluster: bool = True) -> str:
    names = ("cluster", *labels) if per_cluster else tuple(labels)
    where = " ".join(f"{name}={{{{ $labels.{name} }}}}" for name in names)
    return f"{metric} is {{{{ $value }}}} (threshold {{{{ $threshold }}}}): {where}"
