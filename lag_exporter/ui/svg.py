"""Inline SVG sparklines and the group page's chart: no image files, no script needed. Pure.

Only numbers go into the SVG (never a name from Kafka), and labels are escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .text import clock, count, duration

# The smallest top of a scale: a wobble of a few messages or seconds (transaction
# markers, a commit interval) must not fill a sparkline's height like a backlog.
FLOOR = 10.0


def _points(
    times: Sequence[float], values: Sequence[float | None], w: float, h: float, pad: float = 1.0
) -> str:
    known = [v for v in values if v is not None]
    if len(times) < 2 or not known:
        return ""
    t0, t1 = times[0], times[-1]
    top = max(max(known), FLOOR)
    span = (t1 - t0) or 1.0
    out = []
    for t, v in zip(times, values, strict=True):
        if v is None:
            continue
        x = (t - t0) / span * (w - 2 * pad) + pad
        y = h - pad - (v / top) * (h - 2 * pad)
        out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


def sparkline(times: Sequence[float], values: Sequence[float | None], kind: str, label: str) -> str:
    """A 100x24 line of `values` over `times`; `kind` is its CSS class (lag, secs)."""
    points = _points(times, values, 100, 24)
    if not points:
        return '<span class="muted" title="no history yet">&ndash;</span>'
    return (
        f'<svg class="spark {kind}" viewBox="0 0 100 24" width="100" height="24" '
        f'role="img" aria-label="{html.escape(label)}" preserveAspectRatio="none">'
        f'<polyline points="{points}"/></svg>'
    )


def chart(times: Sequence[float], lag: Sequence[float], seconds: Sequence[float | None]) -> str:
    """Lag (messages, left scale) and lag seconds (right scale) over time, with a time axis."""
    if len(times) < 2:
        return '<p class="muted">No history yet: the chart starts after two polls.</p>'
    w, h = 600.0, 160.0
    lag_points = _points(times, lag, w, h, 4)
    secs_points = _points(times, seconds, w, h, 4)
    top_lag = max(lag) if lag else 0
    known = [s for s in seconds if s is not None]
    top_secs = max(known) if known else None
    ticks = []
    for i in range(5):
        t = times[0] + (times[-1] - times[0]) * i / 4
        x = 4 + (w - 8) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        ticks.append(
            f'<text x="{x:.0f}" y="{h + 14:.0f}" text-anchor="{anchor}">'
            f"{html.escape(clock(t).removesuffix(' UTC'))}</text>"
            f'<line x1="{x:.0f}" x2="{x:.0f}" y1="0" y2="{h:.0f}" class="grid"/>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {w:.0f} {h + 18:.0f}" role="img" '
        'aria-label="lag and lag seconds over time">'
        + "".join(ticks)
        + f'<polyline class="lag" points="{lag_points}"/>'
        + (f'<polyline class="secs" points="{secs_points}"/>' if secs_points else "")
        + f'<text x="6" y="12" class="lag-label">lag max {html.escape(count(top_lag))}</text>'
        + (
            f'<text x="{w - 6:.0f}" y="12" text-anchor="end" class="secs-label">'
            f"lag seconds max {html.escape(duration(top_secs))}</text>"
            if top_secs is not None
            else ""
        )
        + "</svg>"
    )
