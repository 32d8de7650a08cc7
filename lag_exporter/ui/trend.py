"""A group's lag and lag in seconds over the recent past, from the history kept anyway. Pure.

The history (history.History) keeps, per group partition, the (time,
committed offset, lag) samples of the status window, and per partition the
(time, log-end offset) points behind lag in seconds. A group's trend is read
from those at `points` evenly spaced times: no extra storage. At each time a
partition counts with its last sample at or before it (the history stores a
flat run as its first and last point, so this is exact for flat runs).

Lag in seconds at a past time needs a search in the partition's log-end
history per sample, too costly for every partition of a big group at every
poll; it is computed for the group's `seconds_partitions` partitions
furthest behind now, which are the ones that make a group's maximum.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from operator import add

from ..history import CommitTrack, History
from ..model import PartitionLag
from ..timelag import time_lag

POINTS = 20
SECONDS_PARTITIONS = 5


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
        j = 0
        n = len(times)
        for k, g in enumerate(grid):
            while j < n and times[j] <= g:
                j += 1
            if j:
                lag[k] += int(lags[j - 1])

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
        times = s[0::3]
        for k, g in enumerate(grid):
            j = bisect_right(times, g)
            if not j:
                continue
            committed, behind = int(s[3 * j - 2]), s[3 * j - 1]
            if behind <= 0:
                value: float | None = 0.0
            else:
                found = time_lag(committed, g, ends.times, ends.ends)
                value = found.seconds if found is not None else None
            if value is not None:
                current = seconds[k]
                seconds[k] = value if current is None else max(current, value)
    return Trend(tuple(grid), tuple(lag), tuple(seconds))
