"""Annotation templates: `{{ $labels.NAME }}`, `{{ $value }}` and `{{ $threshold }}`.

The same spelling as Prometheus alerting rules, so annotations can be copied
between the two, but only these three forms: a template is checked when the
configuration is read, and every variable it names must be one the rule's
alerts will have. A typo is a configuration error, never an empty string in
a message sent at three in the morning.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LABEL = re.compile(r"^\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)$")


class TemplateError(ValueError):
    """The template names something that does not exist; the message says what."""


def format_value(value: object) -> str:
    """A value as people read it: 1200 rather than 1200.0, 1.5 rather than 1.5000001."""
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def humanize_seconds(seconds: float) -> str:
    """100 -> '1m 40s', 7500 -> '2h 5m', 0.25 -> '0.25s'."""
    if seconds < 60:
        return f"{round(seconds, 2):g}s"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts[:2])  # '3d 4h', not '3d 4h 12m 9s': a page is read at a glance


def humanize(value: object, unit: str) -> str:
    """A value for people, in the unit of its measure: '14,018 messages', '1m 40s'."""
    if value is None:
        return ""
    if isinstance(value, str | bool) or not isinstance(value, int | float):
        return str(value)
    if unit == "seconds":
        return humanize_seconds(float(value))
    if unit == "up":
        return "up" if value else "down"
    if unit == "failing":
        return "failing" if value else "delivering"
    if unit == "messages/s":
        return f"{_count(float(value))} messages/s"
    if unit == "messages":
        return f"{_count(float(value))} message{'' if value == 1 else 's'}"
    return format_value(value)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text alternating with variables."""

    source: str
    # ("text", s) or ("label", name) or ("value", "") or ("threshold", "")
    parts: tuple[tuple[str, str], ...]

    @property
    def labels_used(self) -> frozenset[str]:
        return frozenset(name for kind, name in self.parts if kind == "label")

    def render(self, labels: Mapping[str, str], value: object, threshold: object) -> str:
        out = []
        for kind, text in self.parts:
            if kind == "text":
                out.append(text)
            elif kind == "label":
                out.append(labels.get(text, ""))
            elif kind == "value":
                out.append(format_value(value))
            else:
                out.append(format_value(threshold))
        return "".join(out)


def parse_template(source: str, available_labels: Collection[str]) -> Template:
    """Parse `source`; raises TemplateError for an unknown variable or a label
    that alerts of this rule never carry."""
    parts: list[tuple[str, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(source):
        if match.start() > position:
            parts.append(("text", source[position : match.start()]))
        expression = match.group(1).strip()
        if expression == "$value":
            parts.append(("value", ""))
        elif expression == "$threshold":
            parts.append(("threshold", ""))
        elif label := _LABEL.match(expression):
            name = label.group(1)
            if name not in available_labels:
                raise TemplateError(
                    f"{{{{ {expression} }}}}: alerts of this rule have no label {name!r}; "
                    f"labels available: {', '.join(sorted(available_labels))}"
                )
            parts.append(("label", name))
        else:
            raise TemplateError(
                f"{{{{ {expression} }}}}: unknown template variable; "
                "use $labels.NAME, $value or $threshold"
            )
        position = match.end()
    rest = source[position:]
    if "{{" in rest:
        raise TemplateError("'{{' without a closing '}}'")
    if rest:
        parts.append(("text", rest))
    return Template(source, tuple(parts))
