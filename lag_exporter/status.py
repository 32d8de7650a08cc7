"""Consumer status per partition and group, Burrow's vocabulary without its false alarms. Pure.

A partition is judged from a time window of observations of its committed
offset and lag (sampled at every poll, so frequent commits neither shorten
the window nor hide a trend) and from when its committed offset last moved:

- OK: lag within `allowed_lag` (0 on an idle topic is OK, and so is the lag
  of 1-2 that transaction markers leave), or the consumer progresses;
- REWIND: the committed offset went backwards within the window (after its
  first observation);
- STOP / STALL: lag above `allowed_lag` and the committed offset has not
  moved for the stop threshold: STOP when no live member owns the partition
  (nothing is consuming), STALL when one does (a consumer is there but stuck);
- WARN: lag grew across the whole window: never back to where it started,
  and higher at the end, while the consumer still commits.

The stop threshold adapts to how often the consumer usually commits, so a
slow but steady committer is not called stopped: three times its median
interval between offset changes, never less than `stop_after` and never
more than `stop_after_max`. A partition that stops moving is therefore
STOP or STALL at most `stop_after_max` after its last commit (plus one
poll interval).

A group is ERR when any partition is STOP, STALL or REWIND, WARN when any is
WARN, OK otherwise.
"""

from __future__ import annotations

import itertools
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


def stop_threshold(change_times: Sequence[float], rules: StatusRules) -> float:
    """How long an unmoving offset is tolerated, adapted to the usual commit interval."""
    if len(change_times) < 3:
        return rules.stop_after
    gaps = sorted([b - a for a, b in itertools.pairwise(change_times)])
    mid = len(gaps) // 2
    usual = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2  # the median
    return min(rules.stop_after_max, max(rules.stop_after, 3 * usual))


def partition_status(
    samples: Sequence[float],
    change_times: Sequence[float],
    still_since: float,
    owned: bool,
    rules: StatusRules,
    rewound_at: float | None = None,
) -> Status | None:
    """Status of one partition; None when there is no lag to judge.

    `samples` are the window's observations as flat (time, committed offset,
    lag) triples, oldest first, the current one last (flat: one array per
    partition instead of a tuple per observation, see history.CommitTrack);
    `change_times` when the committed offset was seen to move; `still_since`
    since when it has not moved (or since it was first seen); `rewound_at`
    when it was last seen to go backwards; `owned` whether a live group
    member holds the partition.
    """
    n = len(samples)
    if n < 3:
        return None
    now, lag = samples[n - 3], samples[n - 1]
    if rewound_at is not None and rewound_at > samples[0]:
        return Status.REWIND
    if lag <= rules.allowed_lag:
        return Status.OK
    if now - still_since >= stop_threshold(change_times, rules):
        return Status.STALL if owned else Status.STOP
    if n >= 9 and now - samples[0] >= rules.window / 2:
        first_lag = samples[2]
        if lag > first_lag and min(samples[2::3]) >= first_lag:
            return Status.WARN
    return Status.OK


def group_status(statuses: Iterable[Status | None]) -> Status:
    seen = {s for s in statuses if s is not None}
    if seen & _ERROR_STATUSES:
        return Status.ERR
    if Status.WARN in seen:
        return Status.WARN
    return Status.OK
