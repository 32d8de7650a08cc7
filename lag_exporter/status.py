"""Consumer status per partition and group, Burrow's vocabulary without its false alarms. Pure.

A partition is judged from a time window of observations of its committed
offset and lag (sampled at every poll, thinned to evenly spread points, so
frequent commits neither shorten the window nor hide a trend) and from when
it fell behind without committing (`stuck_since`, kept by history.CommitTrack):

- REWIND: the committed offset went backwards within the window (after its
  first observation), except from an offset that no longer existed (past
  the log end: topic re-created, log truncated; see history.CommitTrack);
- OK: lag within `allowed_lag` (0 on an idle topic, and the lag of 1-2 that
  transaction markers leave);
- STOP / STALL: lag above `allowed_lag` and no commit since the lag first
  went above it (counted from the last poll that saw the group caught up or
  committing), for the stop threshold: STOP when no live member owns the
  partition (nothing is consuming), STALL when one does (a consumer is there
  but stuck). The clock never runs while the consumer is caught up: on an
  idle topic there is nothing to commit, and a burst starts it afresh;
- WARN: the lag trends up over the window, beyond any sawtooth of a
  consumer that keeps up (`trending_up`);
- OK otherwise.

The stop threshold adapts to how often the consumer usually commits, so a
slow but steady committer is not called stopped: three times its median
interval between offset changes, never less than `stop_after` and never
more than `stop_after_max`. A partition that stops moving while it has lag
is therefore STOP or STALL at most `stop_after_max` plus one poll interval
after its lag went above `allowed_lag` (plus the jitter of when in a poll
its offsets are read), well within two poll intervals.

A group is ERR when any partition is STOP, STALL or REWIND, WARN when any is
WARN, OK otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"
    STOP = "STOP"
    STALL = "STALL"
    REWIND = "REWIND"


# Burrow's numeric codes, so dashboards and alerts can compare numbers.
STATUS_CODES = {
    Status.OK: 1,
    Status.WARN: 2,
    Status.ERR: 3,
    Status.STOP: 4,
    Status.STALL: 5,
    Status.REWIND: 6,
}
_ERROR_STATUSES = frozenset({Status.STOP, Status.STALL, Status.REWIND})


@dataclass(frozen=True, slots=True)
class StatusRules:
    allowed_lag: int = 2
    window: float = 600.0  # seconds of observations a partition is judged on
    stop_after: float = 300.0
    stop_after_max: float = 1800.0


def _usual_gap(change_times: Sequence[float]) -> float | None:
    """Median interval between observed offset changes (None: fewer than two changes)."""
    if len(change_times) < 2:
        return None
    gaps = sorted([b - a for a, b in itertools.pairwise(change_times)])
    mid = len(gaps) // 2
    return gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2


def stop_threshold(change_times: Sequence[float], rules: StatusRules) -> float:
    """How long an unmoving offset is tolerated, adapted to the usual commit interval."""
    if len(change_times) < 3:
        return rules.stop_after
    usual = _usual_gap(change_times) or 0.0
    return min(rules.stop_after_max, max(rules.stop_after, 3 * usual))


def trending_up(
    samples: Sequence[float], change_times: Sequence[float], rules: StatusRules
) -> bool:
    """Whether the lag grows over the window, beyond the sawtooth of a consumer that keeps up.

    A consumer that keeps up still has a sawtooth lag: it rises between
    commits and drops at each one. Sampled at a poll interval close to a
    multiple of the commit interval, the samples drift slowly along the teeth
    and look like a ramp as high as a tooth (aliasing), so no test on the
    shape of the samples alone can tell them from growth. A tooth is at most
    what is produced between two commits, production x commit interval;
    growth is only called growth once it is larger than that. All of:

    1. the samples span at least half the window, four samples or more;
    2. the committed offset moved forward across the window (a consumer
       that does not move is judged by the stop rule);
    3. split in thirds by time, the lowest lag of each third is above the
       lowest of the third before: by more than `allowed_lag` from the first
       to the second third, by more than `allowed_lag` plus a tooth from the
       second to the last, and by more than `allowed_lag` plus two teeth
       from the first to the last. A tooth is the production over the
       longest interval between the last observed commits (the longest, not
       the usual: commits seen at one poll or the next make the usual one
       shorter than a tooth really is). So the lag never came back down (a
       sawtooth around a stable mean returns to its troughs), it kept rising
       to the end (one step up and then a plateau is a new level, not a
       trend), and by more than any sawtooth sampled at unlucky moments.
    """
    n = len(samples)
    if n < 12:
        return False
    first_t, now = samples[0], samples[n - 3]
    span = now - first_t
    if span < rules.window / 2:
        return False
    if samples[n - 2] <= samples[1]:
        return False
    lows = [math.inf, math.inf, math.inf]  # lowest lag of each third of the span
    for i in range(0, n, 3):
        third = min(2, int(3 * (samples[i] - first_t) / span))
        if samples[i + 2] < lows[third]:
            lows[third] = samples[i + 2]
    if len(change_times) < 2:
        return False
    longest = max(b - a for a, b in itertools.pairwise(change_times))
    # Log-end offsets, from the committed offsets and lags of the samples.
    production = max(0.0, (samples[n - 2] + samples[n - 1] - samples[1] - samples[2]) / span)
    tooth = production * min(longest, span)
    allowed = rules.allowed_lag
    return (
        lows[0] + allowed < lows[1]
        and lows[1] + allowed + tooth < lows[2] < math.inf
        and lows[0] + allowed + 2 * tooth < lows[2]
    )


def partition_status(
    samples: Sequence[float],
    change_times: Sequence[float],
    stuck_since: float | None,
    owned: bool,
    rules: StatusRules,
    rewound_at: float | None = None,
) -> Status | None:
    """Status of one partition; None when there is no lag to judge.

    `samples` are the window's observations as flat (time, committed offset,
    lag) triples, oldest first, the current one last (flat: one array per
    partition instead of a tuple per observation, see history.CommitTrack);
    `change_times` when the committed offset was seen to move; `stuck_since`
    the first observation with lag above `allowed_lag` since the last commit
    (None: caught up); `rewound_at` when it was last seen to go backwards;
    `owned` whether a live group member holds the partition.
    """
    n = len(samples)
    if n < 3:
        return None
    now, lag = samples[n - 3], samples[n - 1]
    if rewound_at is not None and rewound_at > samples[0]:
        return Status.REWIND
    if lag <= rules.allowed_lag:
        return Status.OK
    if stuck_since is not None and now - stuck_since >= stop_threshold(change_times, rules):
        return Status.STALL if owned else Status.STOP
    if trending_up(samples, change_times, rules):
        return Status.WARN
    return Status.OK


def group_status(statuses: Iterable[Status | None]) -> Status:
    seen = {s for s in statuses if s is not None}
    if seen & _ERROR_STATUSES:
        return Status.ERR
    if Status.WARN in seen:
        return Status.WARN
    return Status.OK
