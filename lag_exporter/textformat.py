"""Metric families -> Prometheus text format (0.0.4), fast enough for 10^5-10^6 samples.

prometheus_client's generate_latest builds a Sample with a label dict for
every series and formats each one through several layers of calls: about
10 us a sample, two seconds for the 200,000 series of 100,000 group
partitions, all of it holding the GIL. `Family` has the same add_metric()
as prometheus_client's GaugeMetricFamily and CounterMetricFamily but formats
each sample straight into its line; lines are joined and compressed in
pieces small enough that an HTTP thread waiting for the GIL is never held
up for long, and the document is served gzipped (gzipjoin). The text is
byte for byte what generate_latest writes for the same families (labels
in name order, the same escaping and the same float formatting);
tests/unit/test_textformat.py checks it on generated input.
Other prometheus_client metric objects may be mixed in; they are rendered by
generate_latest itself.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .gzipjoin import Part, PartWriter, join, part

# Joining and encoding this many lines at once holds the GIL for about 0.5 ms.
_CHUNK_LINES = 4096
# Integers in this range print as repr(float(i)) == f"{i}.0"; larger positive
# ones switch to Go's exponent form (floatToGoString), beyond 2**53 floats round.
_PLAIN_MIN = -(2**53)
_PLAIN_MAX = 1_000_000
_EXACT_MAX = 2**53


def escape_label_value(value: str) -> str:
    """Backslash, double quote and newline escaped, as the text format wants."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as prometheus_client prints it: 42 -> '42.0', 1234567 -> '1.234567e+06'."""
    if type(value) is float and -math.inf < value < _PLAIN_MAX:
        return repr(value)  # what floatToGoString gives finite floats below 1e6, faster
    if type(value) is int:
        if _PLAIN_MIN <= value < _PLAIN_MAX:
            return f"{value}.0"
        if _PLAIN_MAX <= value < _EXACT_MAX:
            digits = str(value)
            mantissa = f"{digits[0]}.{digits[1:]}".rstrip("0.")
            return f"{mantissa}e+{len(digits) - 1:02d}"
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@functools.lru_cache(maxsize=1024)
def _labels_function(sample: str, label_names: tuple[str, ...]) -> Callable[..., str]:
    """`body(*label_values) -> 'a="..",b=".."'`, labels sorted by name.

    Generated as one f-string, as namedtuple and dataclasses generate their
    methods: three times faster than %-formatting a template, which matters
    at a few hundred thousand lines per poll. Names are checked first, so the
    generated source holds nothing but [a-zA-Z0-9_] from them.
    """
    if not _METRIC_NAME.fullmatch(sample):
        raise ValueError(f"not a valid metric name: {sample!r}")
    for name in label_names:
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"{sample}: not a valid label name: {name!r}")
    params = [f"v{i}" for i in range(len(label_names))]
    order = sorted(range(len(label_names)), key=label_names.__getitem__)
    pairs = ",".join(f'{label_names[i]}="{{v{i}}}"' for i in order)
    source = f"def body({', '.join(params)}):\n    return f'{pairs}'\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    body: Callable[..., str] = namespace["body"]
    return body


class LabelRows:
    """Label values of many series that several families share.

    The series of one group's partitions (lag, committed offset, lag
    seconds, ...) have the same labels in every family: a Family formats and
    escapes them once, and families with the same label names reuse that.
    """

    __slots__ = ("_bodies", "_names", "rows")

    def __init__(self, rows: list[Sequence[str]]) -> None:
        self.rows = rows
        self._names: tuple[str, ...] | None = None
        self._bodies: list[str] = []

    def bodies(self, family: str, names: tuple[str, ...], body: Callable[..., str]) -> list[str]:
        if names != self._names:
            try:
                if _needs_escaping("".join(itertools.chain.from_iterable(self.rows))):
                    self._bodies = [body(*_escaped(row)) for row in self.rows]
                else:
                    self._bodies = [body(*row) for row in self.rows]
            except TypeError:  # a row with too few or too many values
                raise ValueError(f"{family}: label values do not match labels {names}") from None
            self._names = names
        return self._bodies


def _needs_escaping(text: str) -> bool:
    return "\\" in text or '"' in text or "\n" in text


def _escaped(labels: Sequence[str]) -> Sequence[str]:
    if _needs_escaping("".join(labels)):
        return [escape_label_value(v) for v in labels]
    return labels


class Family:
    """A gauge or counter family whose samples are formatted as they are added.

    Drop-in for GaugeMetricFamily / CounterMetricFamily as the exporter uses
    them: `add_metric(label_values, value)`, label values in the order of the
    label names given here.
    """

    __slots__ = (
        "_body",
        "_lines",
        "_open",
        "_writer",
        "documentation",
        "label_names",
        "name",
        "type",
    )

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], type: str = "gauge"
    ) -> None:
        if type not in ("gauge", "counter"):
            raise ValueError(f"{name}: unsupported family type {type!r}")
        if type == "counter":
            name = name.removesuffix("_total")
        self.name = name
        self.documentation = documentation
        self.type = type
        self.label_names = tuple(labels)
        # Lines are compressed in pieces as they come (gzipjoin): the family
        # holds a 25th of its text, which would otherwise all be held until
        # the document is written (60 MB at 10^5 group partitions).
        self._lines: list[str] = []
        self._writer: PartWriter | None = None  # from the first full piece
        sample = f"{name}_total" if type == "counter" else name
        self._body = _labels_function(sample, self.label_names)
        self._open = f"{sample}{{" if self.label_names else sample

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        names = self.label_names
        if len(labels) != len(names):
            raise ValueError(f"{self.name}: {len(labels)} label values for labels {names}")
        body = self._body(*_escaped(labels))
        if type(value) is int and _PLAIN_MIN <= value < _PLAIN_MAX:
            text = f"{value}.0"  # format_value's common case, without the call
        else:
            text = format_value(value)
        lines = self._lines
        lines.append(f"{self._open}{body}}} {text}\n" if names else f"{self._open} {text}\n")
        if len(lines) >= _CHUNK_LINES:
            self._flush()

    def add_column(self, labels: LabelRows, values: Sequence[float | None]) -> None:
        """One series per row of `labels` whose value is not None: add_metric
        for many series at once, about four times faster."""
        names = self.label_names
        bodies = labels.bodies(self.name, names, self._body)
        o = self._open
        c = "}" if names else ""
        lines = self._lines
        low, high, no_floor = _PLAIN_MIN, _PLAIN_MAX, -math.inf
        # format_value's common cases inline: ints as "42.0", finite floats
        # below 10^6 as their repr; the rest through it.
        lines.extend(
            [
                f"{o}{b}{c} {v}.0\n"
                if type(v) is int and low <= v < high
                else f"{o}{b}{c} {v!r}\n"
                if type(v) is float and no_floor < v < high
                else f"{o}{b}{c} {format_value(v)}\n"
                for b, v in zip(bodies, values, strict=True)
                if v is not None
            ]
        )
        if len(lines) >= _CHUNK_LINES:
            self._flush()

    def _flush(self) -> None:
        writer = self._writer
        if writer is None:
            writer = self._writer = PartWriter()
            writer.write(self.header().encode())
        writer.write("".join(self._lines).encode())
        self._lines.clear()

    def header(self) -> str:
        name = f"{self.name}_total" if self.type == "counter" else self.name
        return f"# HELP {name} {escape_help(self.documentation)}\n# TYPE {name} {self.type}\n"

    def part(self) -> Part:
        """The family's part of the exposition, compressed; the family is emptied."""
        writer, self._writer = self._writer, None
        tail, self._lines = self._lines, []
        if writer is None:
            return part((self.header() + "".join(tail)).encode())
        writer.write("".join(tail).encode())
        return writer.close()


class _One(Collector):
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterator[Metric]:
        yield self.metric


def render_gzip(families: list[Family | Metric]) -> tuple[bytes, int]:
    """The exposition of `families` in their order, gzipped, and its size.

    Families are taken off the list as they are written, so each is freed
    as soon as its part is in the document.
    """
    families.reverse()

    def parts() -> Iterator[Part]:
        while families:
            family = families.pop()
            if isinstance(family, Family):
                yield family.part()
            else:
                yield part(generate_latest(_One(family)))

    return join(parts())


def render_text(families: Iterable[Family | Metric]) -> bytes:
    """The text exposition of `families`, in their order."""
    return zlib.decompress(render_gzip(list(families))[0], wbits=31)
