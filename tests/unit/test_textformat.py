"""The fast text renderer writes exactly what prometheus_client's generate_latest writes."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from lag_exporter.metrics import Sink, families, render
from lag_exporter.model import ClusterView
from lag_exporter.textformat import Family, LabelRows, format_value, render_text

from .factories import group, member, poll, view_of


class _Registry(Collector):
    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def prometheus_family(name: str, doc: str, labels: Sequence[str], kind: str) -> Sink:
    cls = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
    return cls(name, doc, labels=list(labels))


def reference(metrics: Sequence[Sink]) -> bytes:
    assert all(isinstance(m, Metric) for m in metrics)
    return generate_latest(_Registry([m for m in metrics if isinstance(m, Metric)]))


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not n.startswith("__")
)
# Any text, with the characters the format escapes made likely.
label_values = st.text(
    alphabet=st.one_of(st.sampled_from('\\"\n{},= '), st.characters(codec="utf-8")), max_size=12
)
values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 999_999, 1_000_000, 1_234_567, 10**15, 2**53 - 1, 2**53, 2**53 + 1]),
)


@st.composite
def family_specs(draw: st.DrawFn) -> tuple[str, str, str, list[str], list[tuple[list[str], float]]]:
    name = draw(st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", fullmatch=True))
    kind = draw(st.sampled_from(["gauge", "counter"]))
    if kind == "counter":
        name = name.removesuffix("_total") or "c"
    doc = draw(
        st.text(
            alphabet=st.one_of(st.sampled_from("\\\n\"'"), st.characters(codec="utf-8")),
            max_size=20,
        )
    )
    names = draw(st.lists(label_names, max_size=5, unique=True))
    samples = draw(
        st.lists(
            st.tuples(st.lists(label_values, min_size=len(names), max_size=len(names)), values),
            max_size=6,
        )
    )
    return name, kind, doc, names, samples


@settings(max_examples=300, deadline=None)
@given(st.lists(family_specs(), max_size=4))
def test_same_bytes_as_generate_latest(specs: list[Any]) -> None:
    ours: list[Family] = []
    theirs: list[Sink] = []
    seen: set[str] = set()
    for name, kind, doc, names, samples in specs:
        if name in seen:
            continue
        seen.add(name)
        mine = Family(name, doc, names, kind)
        ref = prometheus_family(name, doc, names, kind)
        for labels, value in samples:
            mine.add_metric(labels, value)
            ref.add_metric(labels, value)
        ours.append(mine)
        theirs.append(ref)
    assert render_text(ours) == reference(theirs)


@settings(max_examples=200, deadline=None)
@given(family_specs(), st.data())
def test_columns_give_the_same_bytes_as_generate_latest(spec: Any, data: st.DataObject) -> None:
    name, kind, doc, names, samples = spec
    mine = Family(name, doc, names, kind)
    ref = prometheus_family(name, doc, names, kind)
    # Some values missing: no series for them.
    present = [data.draw(st.booleans()) for _ in samples]
    column = [value if keep else None for (_, value), keep in zip(samples, present, strict=True)]
    shared = LabelRows([labels for labels, _ in samples])
    mine.add_column(shared, column)
    mine.add_column(shared, column)  # the same labels again: formatted once, reused
    for _ in range(2):
        for (labels, value), keep in zip(samples, present, strict=True):
            if keep:
                ref.add_metric(labels, value)
    assert render_text([mine]) == reference([ref])


@given(values)
def test_values_formatted_like_prometheus_client(value: float) -> None:
    assert format_value(value) == floatToGoString(value)


def test_format_value_examples() -> None:
    assert format_value(42) == "42.0"
    assert format_value(-3) == "-3.0"
    assert format_value(1_234_567) == "1.234567e+06"
    assert format_value(10_000_000) == "1e+07"
    assert format_value(0.25) == "0.25"
    assert format_value(True) == "1.0"
    assert format_value(math.inf) == "+Inf"
    assert format_value(math.nan) == "NaN"


def test_escaping() -> None:
    f = Family("x", 'a \\ b\nc "d"', ["l", "a"])
    f.add_metric(['q"\\\n', "plain"], 1)
    assert render_text([f]) == (
        b'# HELP x a \\\\ b\\nc "d"\n# TYPE x gauge\nx{a="plain",l="q\\"\\\\\\n"} 1.0\n'
    )


def test_wrong_number_of_label_values_is_an_error() -> None:
    f = Family("x", "doc", ["a", "b"])
    with pytest.raises(ValueError, match="x: 1 label values"):
        f.add_metric(["only-one"], 1)


def test_other_metric_types_are_rendered_by_prometheus_client() -> None:
    info = Metric("build", "Build.", "info")
    info.add_sample("build_info", {"version": "1"}, 1)
    gauge = Family("g", "G.", [])
    gauge.add_metric([], 2)
    assert render_text([gauge, info]) == (
        b"# HELP g G.\n# TYPE g gauge\ng 2.0\n" + generate_latest(_Registry([info]))
    )


def _views() -> list[ClusterView]:
    c1 = member("consumer-1", ("orders", 0), ("orders", 1))
    c2 = member('odd "client"\\', ("orders", 2))
    ends = {("orders", 0): (0, 100), ("orders", 1): (20, 5_000_000), ("orders", 2): (0, 7)}
    first = view_of(
        poll(
            1_700_000_000.0,
            topics={"orders": 3},
            ends=ends,
            groups=[group("g", c1, c2), group("idle", state="Empty")],
            committed={"g": {("orders", 0): 60, ("orders", 2): 7}, "idle": {("orders", 1): 3}},
        )
    )
    second = ClusterView("c2", {"env": "prod\n"}, 1, first.topics, first.groups, first.health)
    return [first, second]


def test_whole_exposition_is_what_generate_latest_writes() -> None:
    views = _views()
    assert render(views).text == reference(list(families(views, make=prometheus_family)))
