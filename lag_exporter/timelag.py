"""Lag in seconds from a partition's history of (time, log-end offset). Pure.

The oldest message a group has not consumed is the one at its committed
offset c. It was produced after the last moment the log-end offset was still
c, and by the first moment it was above c. Between those two polls the
producer is assumed to write at a steady rate, so the time is interpolated
linearly; the answer is therefore accurate to one poll interval.

Where other tools go wrong, this one answers:
- caught up (c >= log-end): 0, whatever the history; never NaN or ±Inf;
- fewer than two points: no value, rather than a guess;
- c older than the whole history: the age of the oldest point, flagged as a
  lower bound, never an extrapolation;
- history never goes backwards: the caller resets it when offsets do.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple


class TimeLag(NamedTuple):
    seconds: float
    lower_bound: bool  # True: the committed offset is older than the whole history


def produced_at(committed: int, times: Sequence[float], ends: Sequence[int]) -> tuple[float, bool]:
    """When the message at `committed` was produced, estimated from the history.

    `times` ascend and `ends` never decrease; `committed` < ends[-1]. Returns
    the time and whether it is only a bound (older than the history).
    """
    # First point at which the message existed: log-end > committed.
    i = bisect_right(ends, committed)
    if i == 0:
        return times[0], True
    t0, e0 = times[i - 1], ends[i - 1]
    t1, e1 = times[i], ends[i]
    # e0 <= committed < e1, so e1 > e0 and the division is safe; the result
    # lies in [t0, t1) by construction.
    return t0 + (t1 - t0) * (committed - e0) / (e1 - e0), False


def time_lag(
    committed: int | None, now: float, times: Sequence[float], ends: Sequence[int]
) -> TimeLag | None:
    """Seconds between `now` and the production of the oldest unconsumed message."""
    if committed is None or committed < 0 or not ends:
        return None
    if committed >= ends[-1]:
        return TimeLag(0.0, False)
    if len(ends) < 2:
        return None
    at, bound = produced_at(committed, times, ends)
    return TimeLag(max(0.0, now - at), bound)
