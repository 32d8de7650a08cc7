"""A group's lag and lag in seconds over the recent past, from the history kept anyway. Pure.

The history (history.History) keeps, per group partition, the (time,
committed offset, lag) samples of the status window, and per partition the
(time, log-end offset) points behind lag in seconds. A group's trend is read
from those at `points` evenly spaced times: no extra storage. At each time a
partition counts with its samples interpolated on a straight line (the
history stores a flat run as its first and last point, so this is exact for
flat runs) and with its last sample after it.

Lag in seconds at a past time needs a search in the partition's log-end
history per sample, too costly for every partition of a big group at every
poll; it is computed for the group's `seconds_partitions` partitions
furthest behind now, which are the ones that make a group's maximum.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from operator import add

from ..history import CommitTrack, History
from ..model import PartitionLag
from ..timelag import time_lag

POINTS = 20
SECONDS_PARTITIONS = 5


def _interpolate(
    times: Sequence[float], values: Sequence[float], grid: Sequence[float]
) -> list[float | None]:
    """`values` at each time of `grid`: None before the first sample, the last after
    the last, and on a straight line between two samples (the history thins samples
    to a few per window, and a step would draw a staircase of its own making)."""
    out: list[float | None] = []
    n = len(times)
    j = 0  # samples at or before g
    for g in grid:
        while j < n and times[j] <= g:
            j += 1
        if j == 0:
            out.append(None)
        elif j == n:
            out.append(values[-1])
        else:
            t0, t1 = times[j - 1], times[j]
            v0, v1 = values[j - 1], values[j]
            out.append(v0 + (v1 - v0) * (g - t0) / (t1 - t0) if t1 > t0 else v0)
    return out


@dataclass(frozen=True, slots=True)
class Trend:
    times: tuple[float, ...]  # wall clock, ascending
    lag: tuple[int, ...]  # summed over the group's partitions
    lag_seconds: tuple[float | None, ...]  # the largest; None: unknown at that time


def group_trend(
    group_id: str,
    rows: Sequence[PartitionLag],
    history: History,
    now: float,
    points: int = POINTS,
    seconds_partitions: int = SECONDS_PARTITIONS,
) -> Trend | None:
    """The trend of one group; None while its history has fewer than two samples."""
    commits = history.commits
    tracks: list[tuple[PartitionLag, CommitTrack]] = []
    for r in rows:
        track = commits.get((group_id, (r.topic, r.partition)))
        if track is not None and len(track.samples) >= 3:
            tracks.append((r, track))
    if not tracks:
        return None
    start = min(track.samples[0] for _, track in tracks)
    # Offsets are read a moment after the poll starts: the last point is the
    # latest sample, so that the trend ends at the lag the page shows.
    now = max(now, max(track.samples[-3] for _, track in tracks))
    if now - start <= 0 or all(len(t.samples) < 6 for _, t in tracks):
        return None
    step = (now - start) / (points - 1)
    grid = [start + k * step for k in range(points - 1)] + [now]
    # Partitions polled together share their sample times (all of them, or
    # the two ends of a flat run): their lags are summed per distinct time
    # pattern first, and each pattern is walked along the grid once.
    patterns: dict[bytes, tuple[array[float], list[float]]] = {}
    for _, track in tracks:
        s = track.samples
        times = s[0::3]
        key = times.tobytes()
        known = patterns.get(key)
        if known is None:
            patterns[key] = (times, s[2::3].tolist())
        else:
            patterns[key] = (times, list(map(add, known[1], s[2::3])))
    lag = [0] * points
    for times, lags in patterns.values():
        for k, summed in enumerate(_interpolate(times, lags, grid)):
            if summed is not None:
                lag[k] += round(summed)

    seconds: list[float | None] = [None] * points
    worst = heapq.nlargest(
        seconds_partitions,
        tracks,
        key=lambda rt: rt[0].lag_seconds if rt[0].lag_seconds is not None else -1.0,
    )
    for row, track in worst:
        ends = history.ends.get((row.topic, row.partition))
        if ends is None:
            continue
        s = track.samples
        committed = _interpolate(s[0::3], s[1::3], grid)
        behind = _interpolate(s[0::3], s[2::3], grid)
        for k, g in enumerate(grid):
            c, b = committed[k], behind[k]
            if c is None or b is None:
                continue
            if b <= 0:
                value: float | None = 0.0
            else:
                found = time_lag(int(c), g, ends.times, ends.ends)
                value = found.seconds if found is not None else None
            if value is not None:
                current = seconds[k]
                seconds[k] = value if current is None else max(current, value)
    return Trend(tuple(grid), tuple(lag), tuple(seconds))
