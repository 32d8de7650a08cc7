"""Offset lag of one partition, with every edge case decided in one place."""

from __future__ import annotations

# (lag, lost to retention): lag None when there is nothing to report (no
# commit, or log-end unknown); lost: messages deleted before the group
# consumed them. A plain tuple: it is made once per group partition and poll.
Lag = tuple[int | None, int]


def partition_lag(committed: int | None, log_start: int | None, log_end: int | None) -> Lag:
    """(lag, lost): lag = log_end - committed, never negative, counting only what still exists.

    - no committed offset (None or Kafka's -1): no lag at all, not -1 and not
      the whole log, because the group's position is unknown until it commits;
    - committed above log-end: nothing is left to read, lag 0; the committed
      offset is read first and the log end never goes back on a healthy
      partition, so this is an anomaly (topic re-created, log truncated,
      offset set by hand), reported apart as PartitionLag.offset_past_log_end;
    - committed below log-start: retention deleted messages before the group
      read them; they can never be consumed, so they are reported apart as
      lost, and lag counts what is still in the log.
    """
    if committed is None or committed < 0 or log_end is None or log_end < 0:
        return None, 0
    if committed >= log_end:
        return 0, 0
    if log_start is not None and 0 <= log_start <= log_end and committed < log_start:
        return log_end - log_start, log_start - committed
    return log_end - committed, 0
