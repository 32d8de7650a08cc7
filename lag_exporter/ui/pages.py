"""The HTML of the overview and the group page, rendered on request from the published
snapshot. Pure.

Every value that comes from Kafka (cluster labels aside, group, topic,
client and host names are chosen by whoever runs a client) goes through
`esc`, in text and in attributes alike. The pages are complete without
JavaScript; static/ui.js only refreshes them from /api/v1/... every poll.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from .. import __version__
from ..alerts.engine import Phase
from ..model import PartitionLag
from .documents import (
    Overview,
    Query,
    Selection,
    advice_document,
    counts,
    delivery,
    group_url,
    ordered_partitions,
    reason,
    select,
)
from .snapshot import ClusterUi, GroupSummary
from .svg import chart, sparkline
from .text import clock, count, duration, rate

_LINKS = (
    ("/metrics", "Prometheus metrics"),
    ("/api/v1/overview", "this overview (JSON)"),
    ("/api/v1/groups", "groups, partitions and lag (JSON)"),
    ("/api/v1/alerts", "alerts (JSON)"),
    ("/healthz", "liveness"),
    ("/readyz", "readiness"),
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _layout(title: str, body: str, *, data: dict[str, str]) -> bytes:
    attrs = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
    links = " · ".join(f'<a href="{href}">{esc(href)}</a>' for href, _ in _LINKS)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        # No icon: without this line every page view asks for /favicon.ico.
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title>"
        '<link rel="stylesheet" href="/static/ui.css">'
        '<script src="/static/ui.js" defer></script>'
        f"</head><body{attrs}>"
        '<header><a class="home" href="/">Kafka lag</a>'
        f'<span class="muted">lag-exporter {esc(__version__)}</span>'
        '<span id="live" class="muted" aria-live="polite"></span></header>'
        f"<main>{body}</main>"
        f'<footer class="muted">{links}</footer>'
        "</body></html>"
    ).encode()


def badge(status: object) -> str:
    text = "none" if status is None else str(status)
    return f'<span class="badge s-{esc(text)}">{esc(text)}</span>'


def _lag_seconds(value: float | None, lower_bound: bool) -> str:
    if value is None:
        return '<span class="muted">&ndash;</span>'
    if lower_bound:
        return (
            '<span title="at least: the committed offset is older than the kept history">'
            f"≥ {esc(duration(value))}</span>"
        )
    return esc(duration(value))


def _counts(overview: Overview) -> str:
    c = counts(overview)
    s = c["by_status"]
    return (
        '<section class="counts" id="counts">'
        f'<div><b data-k="clusters_up">{c["clusters_up"]}/{c["clusters"]}</b> clusters up</div>'
        f'<div><b data-k="groups">{count(c["groups"])}</b> groups</div>'
        f'<div class="c-ERR"><b data-k="ERR">{count(s["ERR"])}</b> ERR</div>'
        f'<div class="c-WARN"><b data-k="WARN">{count(s["WARN"])}</b> WARN</div>'
        f'<div class="c-OK"><b data-k="OK">{count(s["OK"])}</b> OK</div>'
        f'<div><b data-k="group_partitions">{count(c["group_partitions"])}</b> partitions</div>'
        f'<div><b data-k="firing_alerts">{count(c["firing_alerts"])}</b> alerts firing</div>'
        "</section>"
    )


def _clusters(overview: Overview) -> str:
    rows = []
    for c in overview.clusters:
        h = c.view.health
        up = "up" if h.up else "down"
        if h.up and h.partial:
            up = "partial"
        rows.append(
            f'<tr><td><a href="/?{esc(Query(cluster=c.cluster).with_page(1))}">'
            f"{esc(c.cluster)}</a></td>"
            f'<td><span class="badge u-{up}">{up}</span></td>'
            f"<td>{esc(clock(h.last_poll_at))}</td><td>{c.view.brokers}</td>"
            f"<td>{count(len(c.groups))}</td></tr>"
        )
    return (
        '<table class="clusters" id="clusters"><thead><tr><th>cluster</th><th>state</th>'
        "<th>last poll</th><th>brokers</th><th>groups</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _filter_form(q: Query, overview: Overview) -> str:
    options = ['<option value="">all clusters</option>'] + [
        f'<option value="{esc(c.cluster)}"{" selected" if c.cluster == q.cluster else ""}>'
        f"{esc(c.cluster)}</option>"
        for c in overview.clusters
    ]
    statuses = ['<option value="">any status</option>'] + [
        f"<option{' selected' if s == q.status else ''}>{s}</option>" for s in ("ERR", "WARN", "OK")
    ]
    return (
        '<form class="filter" method="get" action="/" id="filter">'
        f'<select name="cluster" aria-label="cluster">{"".join(options)}</select>'
        f'<input name="group" placeholder="group" value="{esc(q.group)}" aria-label="group">'
        f'<input name="topic" placeholder="topic" value="{esc(q.topic)}" aria-label="topic">'
        f'<select name="status" aria-label="status">{"".join(statuses)}</select>'
        '<button type="submit">Filter</button></form>'
    )


def _growing(growing: bool) -> str:
    if not growing:
        return ""
    return '<span class="up" title="lag grew over the sparkline\'s span">&#9650; </span>'


def group_row(g: GroupSummary, firing: int) -> str:
    t = g.trend
    lag_spark = sparkline(t.times, t.lag, "lag", "lag") if t else sparkline((), (), "lag", "")
    secs_spark = (
        sparkline(t.times, t.lag_seconds, "secs", "lag seconds")
        if t
        else sparkline((), (), "secs", "")
    )
    members = "?" if g.members is None else str(g.members)
    members_class = ' class="bad"' if g.members == 0 and g.total_lag > 0 else ""
    return (
        f'<tr class="row s-{esc(g.status or "none")}">'
        f"<td>{badge(g.status)}</td>"
        f'<td class="name"><a href="{esc(group_url(g.cluster, g.group))}">{esc(g.group)}</a>'
        f'<div class="muted small">{esc(g.cluster)} · {esc(", ".join(g.topics[:3]))}'
        f"{' …' if len(g.topics) > 3 else ''}</div></td>"
        f'<td class="num">{_growing(g.growing)}{esc(count(g.total_lag))}</td>'
        f"<td>{lag_spark}</td>"
        f'<td class="num">{_lag_seconds(g.max_lag_seconds, g.lag_seconds_lower_bound)}</td>'
        f"<td>{secs_spark}</td>"
        f'<td class="num hide-s">{esc(rate(g.consumption_rate))} / '
        f"{esc(rate(g.production_rate))}</td>"
        f'<td class="num hide-s"><span{members_class}>{esc(members)}</span></td>'
        f'<td class="num">{firing or ""}</td></tr>'
    )


def _pager(q: Query, sel: Selection) -> str:
    if sel.pages <= 1:
        return ""
    prev = f'<a href="/?{esc(q.with_page(sel.page - 1))}">← previous</a>' if sel.page > 1 else ""
    nxt = f'<a href="/?{esc(q.with_page(sel.page + 1))}">next →</a>' if sel.page < sel.pages else ""
    return f'<nav class="pager">{prev} page {sel.page} of {sel.pages} {nxt}</nav>'


GROUP_HEAD = (
    "<thead><tr><th>status</th><th>group</th><th>lag</th><th></th>"
    "<th>lag seconds</th><th></th>"
    '<th class="hide-s">consumed / produced</th><th class="hide-s">members</th>'
    "<th>alerts</th></tr></thead>"
)


def overview_page(overview: Overview, q: Query) -> bytes:
    sel = select(overview, q)
    rows = "".join(group_row(g, overview.firing.get((g.cluster, g.group), 0)) for g in sel.groups)
    if not rows:
        rows = '<tr><td colspan="9" class="muted">No consumer group matches.</td></tr>'
    body = (
        _counts(overview)
        + _clusters(overview)
        + _filter_form(q, overview)
        + f'<p class="muted" id="matched">{count(sel.matched)} groups, worst first</p>'
        + '<div class="scroll"><table class="groups" id="groups">'
        + GROUP_HEAD
        + f"<tbody>{rows}</tbody></table></div>"
        + _pager(q, sel)
    )
    api = "/api/v1/overview?" + q.with_page(sel.page)
    return _layout(
        "Kafka lag",
        body,
        data={"page": "overview", "api": api, "refresh": str(overview.refresh_seconds)},
    )


def _owner(row: PartitionLag) -> str:
    m = row.member
    if m is None:
        return '<span class="muted">none</span>'
    return (
        f"<span>{esc(m.client_id)}</span>"
        f'<div class="muted small">{esc(m.host)}</div>'
        f'<div class="muted small member">{esc(m.member_id)}</div>'
    )


def partition_row(c: ClusterUi, g: GroupSummary, r: PartitionLag) -> str:
    why = esc(reason(c, g, r))
    return (
        f'<tr class="row s-{esc(r.status or "none")}">'
        f'<td class="name">{esc(r.topic)}</td><td class=num>{r.partition}</td>'
        f'<td class="num hide-s">{esc(count(r.committed))}</td>'
        f'<td class="num hide-s">{esc(count(r.log_end))}</td>'
        f'<td class="num">{esc(count(r.lag))}</td>'
        f'<td class="num">{_lag_seconds(r.lag_seconds, r.lag_seconds_lower_bound)}</td>'
        # On a phone the reason goes under the status (its own column is hidden).
        f'<td>{badge(r.status)}<div class="why-s small">{why}</div></td>'
        f'<td class="reason hide-s">{why}</td>'
        f"<td>{_owner(r)}</td></tr>"
    )


PARTITION_HEAD = (
    "<thead><tr><th>topic</th><th>partition</th>"
    '<th class="hide-s">committed</th><th class="hide-s">log end</th>'
    "<th>lag</th><th>lag seconds</th><th>status</th><th class=hide-s>why</th><th>owner</th>"
    "</tr></thead>"
)


def _topics(c: ClusterUi, g: GroupSummary) -> str:
    advice = advice_document(c, g)
    lags: dict[str, int] = {}
    for p in g.view.partitions:
        lags[p.topic] = lags.get(p.topic, 0) + (p.lag or 0)
    rows = []
    for topic in g.topics:
        r = g.view.topic_rates.get(topic)
        lag = lags.get(topic, 0)
        a = advice.get(topic)
        catchup = r.catchup_seconds if r is not None else None
        rows.append(
            f'<tr><td class="name">{esc(topic)}</td><td class=num>{esc(count(lag))}</td>'
            f"<td class=num>{esc(rate(r.consumption_rate if r else None))}</td>"
            f"<td class=num>{esc(duration(catchup) if catchup is not None else 'not catching up')}"
            "</td>"
            + (
                f'<td><span class="badge">{esc(a["verdict"])}</span> {esc(a["reason"])}</td>'
                if a
                else '<td class="muted">no advice (insight off or too few polls)</td>'
            )
            + "</tr>"
        )
    return (
        '<div class="scroll"><table class="topics" id="topics">'
        "<thead><tr><th>topic</th><th>lag</th>"
        "<th>consumed</th><th>catch-up</th><th>partitioning (plan)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _alerts(overview: Overview, g: GroupSummary) -> str:
    alerts = overview.group_alerts(g.cluster, g.group)
    if not alerts:
        return '<p class="muted" id="alerts">No pending or firing alerts for this group.</p>'
    rows = []
    for a in alerts:
        deliveries = []
        for d in delivery(a, overview.alerts):
            sent, pending = d["sent_at"], d["pending"]
            if pending is not None:
                tries = pending["attempts"]
                state = (
                    f"{esc(pending['state'])} queued since {esc(clock(pending['queued_at']))}, "
                    f"{tries} attempt{'' if tries == 1 else 's'}"
                )
            else:
                state = f"sent {esc(clock(sent))}" if sent else "not sent"
            deliveries.append(
                f"{esc(d['notifier'])}: {state}"
                + (' <span class="bad">(failing)</span>' if d["failing"] else "")
            )
        since = a.fired_at if a.phase is Phase.FIRING else a.active_since
        rows.append(
            f"<tr><td>{esc(a.rule)}</td><td>{badge(a.phase)}</td>"
            f"<td>{esc(clock(since))}</td><td>{esc(a.label('topic') or '')}</td>"
            f"<td>{esc(a.value)}</td><td>{'<br>'.join(deliveries) or '&ndash;'}</td></tr>"
        )
    return (
        '<div class="scroll"><table id="alerts"><thead><tr><th>rule</th><th>state</th>'
        "<th>since</th><th>topic</th>"
        "<th>value</th><th>delivery</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _members(g: GroupSummary) -> str:
    if not g.view.members_known:
        return '<p class="muted">Members unknown (the broker cannot describe this group).</p>'
    if not g.view.members:
        return '<p class="bad">No members: nothing consumes this group.</p>'
    items: Iterable[str] = (
        f"<li>{esc(m.client_id)} <span class='muted'>{esc(m.host)} · {len(m.assignment)} "
        f"partitions · {esc(m.member_id)}</span></li>"
        for m in g.view.members
    )
    return f'<ul class="members">{"".join(items)}</ul>'


def group_page(overview: Overview, c: ClusterUi, g: GroupSummary) -> bytes:
    rows = ordered_partitions(g)
    t = g.trend
    shown = (
        f'<p class="muted">The {len(rows):,} worst of {len(g.view.partitions):,} partitions.</p>'
        if len(rows) < len(g.view.partitions)
        else ""
    )
    members = "?" if g.members is None else str(g.members)
    body = (
        f'<p><a href="/?{esc(Query(cluster=g.cluster).with_page(1))}">← {esc(g.cluster)}</a></p>'
        f'<h1><span id="g-status">{badge(g.status)}</span> {esc(g.group)}</h1>'
        '<section class="counts" id="summary">'
        f'<div><b data-k="total_lag">{esc(count(g.total_lag))}</b> messages behind</div>'
        f'<div><b data-k="max_lag_seconds">'
        f"{_lag_seconds(g.max_lag_seconds, g.lag_seconds_lower_bound)}</b> behind</div>"
        f'<div><b data-k="rates">{esc(rate(g.consumption_rate))}</b> consumed, '
        f"{esc(rate(g.production_rate))} produced</div>"
        f'<div><b data-k="members">{esc(members)}</b> members · {esc(g.view.state)}</div>'
        f'<div><b data-k="last_poll">{esc(clock(c.view.health.last_poll_at))}</b> last poll</div>'
        "</section>"
        '<figure id="chart">'
        + (
            chart(t.times, t.lag, t.lag_seconds)
            if t
            else '<p class="muted">No history yet: the chart starts after two polls.</p>'
        )
        + '<figcaption class="muted"><span class="key lag"></span> lag (messages) '
        '<span class="key secs"></span> lag seconds, times UTC</figcaption></figure>'
        "<h2>Topics</h2>"
        + _topics(c, g)
        + "<h2>Partitions</h2>"
        + shown
        + '<div class="scroll"><table class="partitions" id="partitions">'
        + PARTITION_HEAD
        + f"<tbody>{''.join(partition_row(c, g, r) for r in rows)}</tbody></table></div>"
        + "<h2>Alerts</h2>"
        + _alerts(overview, g)
        + "<h2>Members</h2>"
        + _members(g)
    )
    api = "/api/v1/group?" + group_url(g.cluster, g.group).split("?", 1)[1]
    return _layout(
        f"{g.group} · Kafka lag",
        body,
        data={"page": "group", "api": api, "refresh": str(c.poll_interval)},
    )


def not_found_page(cluster: str, group: str) -> bytes:
    body = (
        f"<h1>No group {esc(group)} in cluster {esc(cluster)}</h1>"
        '<p>It may have gone since the last poll. <a href="/">All groups</a></p>'
    )
    return _layout("not found · Kafka lag", body, data={"page": "missing"})
