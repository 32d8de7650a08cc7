"""Numbers as a person reads them: 1,204 messages, 6 min, 12.5 msg/s. Pure.

The script (static/ui.js) formats the same way when it refreshes a page, so
a value reads the same before and after a refresh.
"""

from __future__ import annotations

import math
import time

NONE = "\u2013"  # an en dash: no value


def count(value: int | float | None) -> str:
    if value is None:
        return NONE
    return f"{round(value):,}"


def duration(seconds: float | None) -> str:
    """Seconds as the two largest units: 42 s, 6 min, 1 h 5 min, 3 d 2 h."""
    if seconds is None or math.isnan(seconds):
        return NONE
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min" if m >= 10 or not r else f"{m} min {r} s"
    if s < 86400:
        h, r = divmod(s, 3600)
        return f"{h} h {r // 60} min" if r >= 60 else f"{h} h"
    d, r = divmod(s, 86400)
    return f"{d} d {r // 3600} h" if r >= 3600 else f"{d} d"


def rate(value: float | None) -> str:
    if value is None:
        return NONE
    if value >= 100:
        return f"{value:,.0f} msg/s"
    return f"{value:.1f} msg/s"


def clock(at: float | None) -> str:
    """A wall-clock time in UTC, as the time axis and 'last poll' show it."""
    if at is None:
        return "never"
    return time.strftime("%H:%M:%S", time.gmtime(at)) + " UTC"
