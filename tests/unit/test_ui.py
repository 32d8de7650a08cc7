"""The web UI's pure parts: trends from the history, reasons in words, filters,
pages (escaping of every name that comes from Kafka) and the documents."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lag_exporter.alerts.delivery import NotifierStats
from lag_exporter.alerts.engine import Alert, Phase
from lag_exporter.alerts.publish import AlertsSnapshot
from lag_exporter.config import ClusterConfig
from lag_exporter.model import ClusterView, Member
from lag_exporter.status import Status
from lag_exporter.ui.documents import Overview, Query, select
from lag_exporter.ui.routes import answer
from lag_exporter.ui.snapshot import cluster_ui
from lag_exporter.ui.text import count, duration, rate
from lag_exporter.view import Derivation

from .factories import group, poll, view_of

EVIL_GROUP = '<script>alert("g")</script>&"\''
EVIL_TOPIC = '"><img src=x onerror=alert(1)>'
EVIL_CLIENT = "</td><script>alert('c')</script>"
INTERVAL = 15.0
T0 = 1_700_000_000.0


def _scenario(polls: int = 25) -> tuple[ClusterView, Derivation]:
    """Production of 100 messages per poll on two partitions; `stuck` stops at 0 on
    partition 0 (no member), `good` (one member with a hostile client id) keeps up."""
    derive = Derivation.for_cluster(ClusterConfig(name="c1", kafka={}))
    previous: ClusterView | None = None
    p0, p1 = (EVIL_TOPIC, 0), (EVIL_TOPIC, 1)
    for i in range(polls):
        end = 100 * (i + 1)
        previous = view_of(
            poll(
                T0 + INTERVAL * i,
                topics={EVIL_TOPIC: 2},
                ends={p0: (0, end), p1: (0, end)},
                groups=[
                    group(EVIL_GROUP, state="Empty"),
                    group("good", Member("m1", EVIL_CLIENT, "/10.0.0.1", None, (p0, p1))),
                ],
                committed={
                    EVIL_GROUP: {p0: 0, p1: end},
                    "good": {p0: end, p1: end},
                },
            ),
            previous,
            derive=derive,
        )
    assert previous is not None
    return previous, derive


def _overview(polls: int = 25) -> Overview:
    view, derive = _scenario(polls)
    ui = cluster_ui(view, derive.history, poll_interval=INTERVAL, rules=derive.status_rules)
    return Overview.build([ui], None)


def test_trend_sums_lag_at_each_time_and_has_real_times() -> None:
    overview = _overview()
    stuck = overview.find("c1", EVIL_GROUP)
    assert stuck is not None
    trend = stuck[1].trend
    assert trend is not None
    # The last point is the last poll; the lag there is the group's lag now.
    assert trend.times[-1] == T0 + INTERVAL * 24
    assert trend.lag[-1] == 2500 == stuck[1].total_lag
    # Lag only grows for a group stuck at offset 0 while production goes on.
    assert list(trend.lag) == sorted(trend.lag)
    assert trend.lag[0] < trend.lag[-1]
    # Lag seconds grow with it (the stuck partition's oldest message ages).
    seconds = [s for s in trend.lag_seconds if s is not None]
    assert seconds and seconds[-1] > seconds[0]
    assert seconds[-1] == pytest.approx(stuck[1].max_lag_seconds, abs=INTERVAL)


def test_stopped_partition_has_its_reason_in_words() -> None:
    overview = _overview()
    found = overview.find("c1", EVIL_GROUP)
    assert found is not None
    summary = found[1]
    assert summary.status is Status.ERR
    reason = summary.reasons[(EVIL_TOPIC, 0)]
    assert reason == "no commit for 6 min while 2,500 behind; no member owns it"


def test_worst_group_first_and_filters() -> None:
    overview = _overview()
    assert [g.group for g in overview.groups] == [EVIL_GROUP, "good"]
    assert [g.growing for g in overview.groups] == [True, False]
    assert [g.group for g in select(overview, Query.parse("group=GOO")).groups] == ["good"]
    assert [g.group for g in select(overview, Query.parse("status=err")).groups] == [EVIL_GROUP]
    assert select(overview, Query.parse("topic=onerror")).matched == 2
    assert select(overview, Query.parse("topic=nothing")).matched == 0
    assert select(overview, Query.parse("cluster=other")).matched == 0
    paged = select(overview, Query.parse("limit=1&page=2"))
    assert (paged.page, paged.pages, [g.group for g in paged.groups]) == (2, 2, ["good"])


class _Collect(HTMLParser):
    """Every element and every text node: injected markup would show up as elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(v or "" for _, v in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/", ""),
        ("/", "group=%3Cscript"),
        ("/group", "cluster=c1&group=" + re.sub(r"(.)", lambda m: f"%{ord(m[1]):02X}", EVIL_GROUP)),
        ("/group", "cluster=c1&group=good"),
        ("/group", "cluster=c1&group=%3Cu%3Emissing"),
    ],
)
def test_pages_escape_every_name_from_kafka(path: str, query: str) -> None:
    found = answer(path, query, _overview())
    assert found is not None
    page = found.body.decode()
    parsed = _Collect()
    parsed.feed(page)
    # The only scripts are the page's own; no injected element exists.
    assert parsed.tags.count("script") == 1
    assert "img" not in parsed.tags and "u" not in parsed.tags
    text = "".join(parsed.text)
    attrs = " ".join(parsed.attrs)
    if path == "/" and not query:
        assert EVIL_GROUP in text and EVIL_TOPIC in text
    if "group=good" in query:
        assert EVIL_CLIENT not in page  # its raw form never appears...
        assert EVIL_CLIENT in text  # ...but its text is shown
    if query.startswith("cluster=c1&group=%3C%73"):
        assert found.status == 200 and EVIL_GROUP in text
        assert "no commit for 6 min while 2,500 behind" in text
    if "missing" in query:
        assert found.status == 404 and "<u>missing" in text
    assert "<script>alert" not in attrs


def test_group_page_owner_and_chart() -> None:
    view, derive = _scenario()
    ui = cluster_ui(view, derive.history, poll_interval=INTERVAL, rules=derive.status_rules)
    overview = Overview.build([ui], None)
    found = answer("/group", "cluster=c1&group=good", overview)
    assert found is not None and found.status == 200
    page = found.body.decode()
    assert 'class="chart"' in page and "<polyline" in page


def test_overview_document_matches_the_page() -> None:
    overview = _overview()
    found = answer("/api/v1/overview", "limit=1", overview)
    assert found is not None and found.content_type == "application/json"
    doc = json.loads(found.body)
    assert doc["matched"] == 2 and doc["pages"] == 2
    assert doc["counts"]["by_status"] == {"ERR": 1, "WARN": 0, "OK": 1, "unknown": 0}
    (first,) = doc["groups"]
    assert first["group"] == EVIL_GROUP and first["status"] == "ERR"
    assert first["total_lag"] == 2500 and first["growing"] is True
    assert doc["groups"] == [first]
    assert len(first["trend"]["times"]) == len(first["trend"]["lag"]) == 20
    assert doc["clusters"][0]["cluster"] == "c1" and doc["refresh_seconds"] == INTERVAL


def test_group_document_has_reasons_owners_and_advice() -> None:
    overview = _overview()
    found = answer("/api/v1/group", "cluster=c1&group=good", overview)
    assert found is not None and found.status == 200
    doc = json.loads(found.body)
    assert {p["reason"] for p in doc["partitions"]} == {"caught up"}
    assert {p["client_id"] for p in doc["partitions"]} == {EVIL_CLIENT}
    missing = answer("/api/v1/group", "cluster=c1&group=nope", overview)
    assert missing is not None and missing.status == 404


def test_unknown_paths_are_not_the_uis() -> None:
    assert answer("/nope", "", Overview()) is None
    empty = answer("/", "", Overview())
    assert empty is not None and b"No consumer group matches" in empty.body


def test_static_files_are_shipped() -> None:
    css = answer("/static/ui.css", "", Overview())
    js = answer("/static/ui.js", "", Overview())
    assert css is not None and b"prefers-color-scheme: dark" in css.body
    assert js is not None and b"textContent" in js.body and b"innerHTML" not in js.body


def test_text_formats() -> None:
    assert count(1204) == "1,204"
    assert duration(360) == "6 min"
    assert duration(42) == "42 s"
    assert duration(65) == "1 min 5 s"
    assert duration(3900) == "1 h 5 min"
    assert duration(90000) == "1 d 1 h"
    assert rate(12.345) == "12.3 msg/s"
    assert rate(1234.0) == "1,234 msg/s"


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0, max_value=1e9))
def test_duration_is_ordered_by_its_largest_unit(a: float, b: float) -> None:
    units = {"s": 1, "min": 60, "h": 3600, "d": 86400}

    def seconds(text: str) -> int:
        parts = text.split()
        return sum(int(n) * units[u] for n, u in zip(parts[::2], parts[1::2], strict=True))

    lo, hi = sorted((a, b))
    assert seconds(duration(lo)) <= seconds(duration(hi))
    assert abs(seconds(duration(hi)) - hi) <= max(1.0, hi * 0.02)


def test_alerts_on_the_overview_and_the_group_page_with_their_delivery() -> None:
    view, derive = _scenario()
    ui = cluster_ui(view, derive.history, poll_interval=INTERVAL, rules=derive.status_rules)
    identity = (("cluster", "c1"), ("consumergroup", EVIL_GROUP))
    fired = Alert(
        rule="Behind",
        identity=identity,
        labels=identity,
        annotations=(),
        phase=Phase.FIRING,
        active_since=T0,
        fired_at=T0 + 60,
        value=2500,
        evaluated_at=T0 + 360,
        metric="max_lag",
        op=">",
        threshold=100,
        sent={"pager": T0 + 61},
    )
    stats = {
        "pager": NotifierStats(results={"delivered": 1}, told={fired.key: T0 + 61}),
        "chat": NotifierStats(
            results={"retried": 2},
            queued=1,
            failing=True,
            pending={fired.key: ("firing", T0 + 60, 2)},
        ),
    }
    overview = Overview.build([ui], AlertsSnapshot((fired,), ("Behind",), stats))
    assert overview.firing == {("c1", EVIL_GROUP): 1}
    doc = json.loads(answer("/api/v1/overview", "", overview).body)  # type: ignore[union-attr]
    assert doc["counts"]["firing_alerts"] == 1
    assert [g["firing_alerts"] for g in doc["groups"]] == [1, 0]
    query = "cluster=c1&group=" + EVIL_GROUP.replace("&", "%26")
    page = answer("/group", query, overview)
    assert page is not None and page.status == 200
    parsed = _Collect()
    parsed.feed(page.body.decode())
    text = "".join(parsed.text)
    assert "Behind" in text and "pager: sent 22:14:21 UTC" in text
    assert "chat: firing queued since 22:14:20 UTC, 2 attempts (failing)" in text
    group = json.loads(answer("/api/v1/group", query, overview).body)  # type: ignore[union-attr]
    (alert,) = group["alerts"]
    assert alert["state"] == "firing"
    assert {d["notifier"]: d["sent_at"] for d in alert["delivery"]} == {
        "chat": None,
        "pager": T0 + 61,
    }
    (chat,) = [d for d in alert["delivery"] if d["notifier"] == "chat"]
    assert chat["pending"] == {"state": "firing", "queued_at": T0 + 60, "attempts": 2}
    assert chat["failing"] is True
    assert alert["pending_notifications"]["chat"]["attempts"] == 2


def test_reasons_of_stall_rewind_and_warn() -> None:
    derive = Derivation.for_cluster(ClusterConfig(name="c1", kafka={}))
    previous: ClusterView | None = None
    tp = ("t", 0)
    owner = Member("m-1", "billing-7", "/10.0.0.9", None, (tp,))
    for i in range(25):
        end = 1000 * (i + 1)
        previous = view_of(
            poll(
                T0 + INTERVAL * i,
                topics={"t": 1},
                ends={tp: (0, end)},
                groups=[
                    group("stuck", owner),
                    group("rewinder", state="Empty"),
                    group("slower", state="Empty"),
                ],
                committed={
                    "stuck": {tp: 10},
                    # Follows the log, then goes back at the last poll.
                    "rewinder": {tp: end if i < 24 else 5},
                    # Commits, but falls further behind every poll.
                    "slower": {tp: end - 600 * (i + 1)},
                },
            ),
            previous,
            derive=derive,
        )
    assert previous is not None
    ui = cluster_ui(previous, derive.history, poll_interval=INTERVAL, rules=derive.status_rules)
    reasons = {g.group: g.reasons.get(tp) for g in ui.groups}
    assert reasons["stuck"] == "no commit for 6 min while 24,990 behind; owned by billing-7, stuck"
    assert reasons["rewinder"] == "committed offset went back 0 s ago"
    assert reasons["slower"] is not None
    assert re.fullmatch(r"lag grew from [\d,]+ to 15,000 over \d+ min( \d+ s)?", reasons["slower"])


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 60)),
        min_size=2,
        max_size=40,
    )
)
@settings(max_examples=60, deadline=None)
def test_trend_ends_at_the_lag_shown_and_stays_within_what_was_seen(
    steps: list[tuple[int, int, int]],
) -> None:
    """Whatever the traffic and commits (thinned, flat runs, catching up), the trend's
    last point is the group's lag now and no point exceeds the largest lag observed."""
    derive = Derivation.for_cluster(ClusterConfig(name="c1", kafka={}))
    previous: ClusterView | None = None
    p0, p1 = ("t", 0), ("t", 1)
    end0 = end1 = committed0 = committed1 = 0
    seen = 0
    for i, (produced, consumed, gap) in enumerate(steps):
        end0 += produced
        end1 += produced // 2
        committed0 = min(end0, committed0 + consumed)
        committed1 = min(end1, committed1 + consumed // 3)
        seen = max(seen, end0 - committed0 + end1 - committed1)
        previous = view_of(
            poll(
                T0 + INTERVAL * i + gap / 10,
                topics={"t": 2},
                ends={p0: (0, end0), p1: (0, end1)},
                groups=[group("g", state="Empty")],
                committed={"g": {p0: committed0, p1: committed1}},
            ),
            previous,
            derive=derive,
        )
    assert previous is not None
    ui = cluster_ui(previous, derive.history, poll_interval=INTERVAL, rules=derive.status_rules)
    (summary,) = ui.groups
    trend = summary.trend
    assert trend is not None
    assert trend.lag[-1] == summary.total_lag == end0 - committed0 + end1 - committed1
    assert all(0 <= lag <= seen for lag in trend.lag)
    assert list(trend.times) == sorted(trend.times)
    assert all(s is None or s >= 0 for s in trend.lag_seconds)
