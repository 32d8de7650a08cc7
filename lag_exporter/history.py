"""Short, bounded histories per cluster: the only state that outlives a poll.

- Per partition: (time, log-end offset) points, shared by every group that
  reads the partition. Flat runs are kept as their first and last point, so
  an idle topic's history reaches far back without growing; at most
  `size` points are kept; offsets going backwards (topic re-created) reset it.
- Per group and partition: a time window of (time, committed, lag) samples,
  thinned to at most `samples` evenly spread points (a flat run as its first
  and last point), plus when the committed offset last moved and went back
  and since when the group has been behind without committing. Status and
  consumption rates are computed from these. A partition whose offsets go
  backwards drops every group's track on it.
- Per group member and topic: the member's commit progress while it had a
  backlog, over all its partitions of the topic together (BusyMeter), from
  which the partitioning insight measures consumer capacity.

Memory is bounded by partitions x size and pairs x samples, and entries of
partitions and pairs known to be gone are dropped at every poll that saw the
whole cluster; a poll that did not (Kafka unreachable) forgets nothing, so
values come back where they were. With `state_dir`, both kinds of history
are saved and read back at start, so a restart changes no status.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .model import TopicPartition

log = logging.getLogger(__name__)

# 2: commit tracks saved too; 1 (end-offset histories only) is still read.
FORMAT_VERSION = 2

# (group, topic, member id, the member's partitions of the topic): a new
# assignment starts a new measurement, since sums over other partitions jump.
MemberKey = tuple[str, str, str, tuple[int, ...]]


class EndHistory:
    """(time, log-end offset) points of one partition; times ascend, offsets never fall."""

    __slots__ = ("ends", "size", "times")

    def __init__(self, size: int) -> None:
        self.size = size
        self.times: array[float] = array("d")
        self.ends: array[int] = array("q")

    def add(self, t: float, end: int) -> bool:
        """Record a point; returns False when offsets went backwards and history restarted."""
        times, ends = self.times, self.ends
        if ends and (end < ends[-1] or t < times[-1]):
            del times[:], ends[:]
            times.append(t)
            ends.append(end)
            return False
        if len(ends) >= 2 and ends[-1] == end and ends[-2] == end:
            times[-1] = t  # extend a flat run instead of adding a point
            return True
        times.append(t)
        ends.append(end)
        if len(ends) > self.size:
            del times[0], ends[0]
        return True

    def rate(self, horizon: float) -> float | None:
        """Messages per second over the last `horizon` seconds (None: too few points)."""
        return _rate(self.times, self.ends, horizon)


def _rate(times: Sequence[float], values: Sequence[int], horizon: float) -> float | None:
    n = len(times)
    if n < 2:
        return None
    last_t = times[-1]
    k = 0
    while k < n - 2 and times[k + 1] <= last_t - horizon:
        k += 1
    dt = last_t - times[k]
    if dt <= 0:
        return None
    return max(0.0, (values[-1] - values[k]) / dt)


class BusyMeter:
    """Commit progress of one group on one partition while it had a backlog.

    Progress is measured from one observed change of the committed offset to
    the next (a consumer that commits every few seconds makes no progress
    between two polls, then a lot at once; only whole commit-to-commit spans
    give its rate). A span counts as busy when, at its end, the group still
    had not committed everything that was already in the log at its start:
    log-end(start) - committed(end) > allowed lag. Then the consumer never ran
    out of data during the span, so its rate there is what it can do, not what
    the producer gave it. A consumer that keeps up commits past the old
    log-end, however late it commits, and its spans are not counted.

    Busy spans are summed into at most `buckets` time buckets over `window`.
    The span still open counts with its time so far and no messages yet: left
    out, a consumer that commits in bursts would look faster than it is. It
    counts for at most as long as the last closed span lasted, so a consumer
    that stops does not drag its measured capacity towards zero.
    """

    __slots__ = ("at", "at_committed", "at_end", "buckets", "last_span", "moved", "open")

    def __init__(self) -> None:
        # Time, committed and log-end offset when the committed offset was last
        # seen to change, or first seen (None: nothing seen yet). Three fields
        # rather than a tuple, and the buckets in one array: there may be a
        # meter per group partition.
        self.at: float | None = None
        self.at_committed = 0
        self.at_end = 0
        # False until a change is seen: the first committed offset seen may be
        # arbitrarily old, so no span starts there.
        self.moved = False
        self.buckets: array[float] | None = None  # (time, busy seconds, messages) triples
        self.open = 0.0  # seconds of the open span, while it has a backlog
        self.last_span = 0.0  # seconds of the last busy span closed

    def start(self, t: float, committed: int, log_end: int) -> None:
        """Begin at a change of the committed offset, as after observing one."""
        self.at, self.at_committed, self.at_end = t, committed, log_end
        self.moved = True

    def observe(
        self,
        t: float,
        committed: int,
        log_end: int,
        allowed_lag: int,
        window: float,
        buckets: int = 12,
    ) -> None:
        """Record one poll's committed and log-end offsets."""
        start = self.at
        start_committed, start_end = self.at_committed, self.at_end
        if start is not None and committed == start_committed:
            busy = self.moved and start_end - committed > allowed_lag
            self.open = min(t - start, self.last_span) if busy else 0.0
            return
        self.at, self.at_committed, self.at_end = t, committed, log_end
        self.open = 0.0
        moved, self.moved = self.moved, start is not None
        if start is None or not moved or committed < start_committed or t <= start:
            return  # first sight, first change, or a rewind: measure from here
        if start_end - committed <= allowed_lag:
            return  # caught up with what was there at the start: not busy
        self.last_span = t - start
        spans = self.buckets
        if spans is None:
            spans = self.buckets = array("d")
        drop = 0
        while drop < len(spans) and spans[drop] < t - window:
            drop += 3
        if drop:
            del spans[:drop]
        if spans and t - spans[-3] < window / buckets:
            spans[-2] += t - start
            spans[-1] += committed - start_committed
        else:
            spans.extend((t, t - start, committed - start_committed))

    def totals(self, now: float, horizon: float) -> tuple[float, float]:
        """(busy seconds, messages committed while busy) over the last `horizon` seconds."""
        seconds, messages = self.open, 0.0
        spans = self.buckets
        if spans:
            since = now - horizon
            for i in range(0, len(spans), 3):
                if spans[i] >= since:
                    seconds += spans[i + 1]
                    messages += spans[i + 2]
        return seconds, messages


class CommitTrack:
    """Observations of one group's committed offset on one partition.

    There is one track per group partition (100,000 on a big cluster), so it
    is kept small: samples in one flat array of doubles (offsets up to 2**53
    are exact) instead of a tuple per sample, and the change times and busy
    meter only once the committed offset has moved (an idle pair never needs
    them).
    """

    __slots__ = (
        "busy",
        "changes",
        "last_committed",
        "past_end",
        "rewound_at",
        "samples",
        "seen",
        "stuck_since",
    )

    def __init__(self, t: float, committed: int) -> None:
        # (time, committed, lag) triples, oldest first, as status.partition_status reads them.
        self.samples: array[float] = array("d")
        self.changes: array[float] | None = None  # the last _CHANGES times the offset moved
        self.last_committed = committed
        # Since when the lag has been above the allowed lag without the committed
        # offset moving (None: it is not): the stop clock. It does not run while
        # the group is caught up, since then there is nothing to commit.
        self.stuck_since: float | None = None
        self.rewound_at: float | None = None  # when the offset was last seen to go back
        # The committed offset was past the log end at the last observation: a
        # move back from there is a realignment (topic re-created), not a rewind.
        self.past_end = False
        self.busy: BusyMeter | None = None
        self.seen = 0  # History.generation of the last poll that observed it

    def add(
        self,
        t: float,
        committed: int,
        lag: int,
        window: float,
        max_samples: int,
        log_end: int | None = None,
        allowed_lag: int = 0,
        capacity_window: float | None = None,
    ) -> None:
        """Record one poll; with `capacity_window`, the busy meter sees it too."""
        moved = committed != self.last_committed
        if moved:
            changes = self.changes
            if changes is None:
                changes = self.changes = array("d")
            changes.append(t)
            if len(changes) > _CHANGES:
                del changes[0]
            if committed < self.last_committed and not self.past_end:
                self.rewound_at = t
            self.last_committed = committed
        if moved or lag <= allowed_lag:
            self.stuck_since = None
        elif self.stuck_since is None:
            # The lag went above the allowed lag after the previous observation,
            # when the group was still caught up or committing: the clock starts
            # there, so STOP comes at most one poll after the threshold, not two.
            # Not across a gap (an outage, a restart after a long stop): when
            # the lag appeared in it is unknown, and the first sight is the start.
            samples = self.samples
            previous = samples[-3] if samples else t
            self.stuck_since = previous if t - previous <= _CONTIGUOUS else t
        self.past_end = log_end is not None and committed > log_end
        samples = self.samples
        horizon = t - window
        n = len(samples)
        drop = 0
        while drop < n and samples[drop] < horizon:
            drop += 3
        if drop:
            if drop < n and samples[drop - 2 : drop] == samples[drop + 1 : drop + 3]:
                # The offsets held from the last point dropped to the first kept:
                # keep that run's start, at the window's edge, so a flat run
                # stored as two points still spans the whole window.
                drop -= 3
                samples[drop] = horizon
            del samples[:drop]
            n -= drop
        if (
            n >= 6
            and samples[n - 1] == lag
            and samples[n - 2] == committed
            and samples[n - 4] == lag
            and samples[n - 5] == committed
        ):
            samples[n - 3] = t  # a flat run: its first and last point are enough
        elif n >= 6 and t - samples[n - 6] < window / max_samples:
            # Thin: keep points about window / max_samples apart.
            samples[n - 3] = t
            samples[n - 2] = committed
            samples[n - 1] = lag
        else:
            samples.extend((t, committed, lag))
        if capacity_window is not None and log_end is not None:
            busy = self.busy
            if busy is not None:
                busy.observe(t, committed, log_end, allowed_lag, capacity_window)
            elif moved:
                # What BusyMeter.observe would hold after its first change: no
                # span starts at the first offset seen, which may be ancient.
                busy = self.busy = BusyMeter()
                busy.start(t, committed, log_end)

    def lag_at(self, t: float) -> float:
        """The lag of the last sample at or before `t` (the first sample if none is)."""
        s = self.samples
        k = 0
        while k + 3 < len(s) and s[k + 3] <= t:
            k += 3
        return s[k + 2] if s else 0.0

    def rate(self, horizon: float) -> float | None:
        """Committed messages per second over the last `horizon` seconds."""
        s = self.samples
        n = len(s)
        if n < 6:
            return None
        last_t = s[n - 3]
        start = last_t - horizon
        k = 0
        while k < n - 6 and s[k + 3] <= start:
            k += 3
        t_k = s[k]
        if s[k + 1] == s[k + 4] and t_k < start:
            # The committed offset did not move until the next point (which is
            # inside the window): the window can start at its edge, as with
            # evenly spread points (a flat run is stored as two points).
            t_k = start
        dt = last_t - t_k
        if dt <= 0:
            return None
        rate = (s[n - 2] - s[k + 1]) / dt
        return rate if rate > 0.0 else 0.0


_CHANGES = 8
# Two observations at most this far apart are taken as consecutive polls (the
# longest retry backoff is a minute); farther apart, something was missed.
_CONTIGUOUS = 60.0


class History:
    """All histories of one cluster."""

    def __init__(self, size: int = 240, window: float = 600.0, samples: int = 12) -> None:
        self.size = size
        self.window = window
        self.max_samples = samples
        self.ends: dict[TopicPartition, EndHistory] = {}
        self.commits: dict[tuple[str, TopicPartition], CommitTrack] = {}
        self.cluster_id: str | None = None
        self.resets: list[TopicPartition] = []  # partitions whose offsets went back, last poll
        self.members: dict[MemberKey, BusyMeter] = {}
        self.generation = 0  # polls begun; see begin_poll and retain

    def add_end(self, tp: TopicPartition, t: float, end: int) -> None:
        h = self.ends.get(tp)
        if h is None:
            h = self.ends[tp] = EndHistory(self.size)
        if not h.add(t, end):
            self.resets.append(tp)

    def track(
        self,
        group: str,
        tp: TopicPartition,
        t: float,
        committed: int,
        lag: int,
        log_end: int | None = None,
        allowed_lag: int = 0,
        capacity_window: float | None = None,
    ) -> CommitTrack:
        key = (group, tp)
        track = self.commits.get(key)
        if track is None:
            track = self.commits[key] = CommitTrack(t, committed)
        track.seen = self.generation
        track.add(
            t, committed, lag, self.window, self.max_samples, log_end, allowed_lag, capacity_window
        )
        return track

    def member(self, key: MemberKey) -> BusyMeter:
        """The busy meter of one member's partitions of one topic."""
        meter = self.members.get(key)
        if meter is None:
            meter = self.members[key] = BusyMeter()
        return meter

    def retain_members(self, keys: Iterable[MemberKey]) -> None:
        """Forget the meters of members (or assignments) not seen in the last poll."""
        keep = set(keys)
        for key in [key for key in self.members if key not in keep]:
            del self.members[key]

    def forget_pairs_on(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop every group's commit track on these partitions (their offsets restarted).

        A re-created topic starts again from offset 0: the old committed offsets
        mean nothing there, and a consumer moving to the new ones is not rewinding.
        """
        gone = set(partitions)
        if gone:
            for key in [key for key in self.commits if key[1] in gone]:
                del self.commits[key]

    def begin_poll(self) -> None:
        """Start a poll: tracks not observed (`track`) from now on are forgotten by `retain`."""
        self.generation += 1
        self.resets.clear()

    def retain(
        self,
        partitions: Iterable[TopicPartition],
        pairs: Iterable[tuple[str, TopicPartition]] = (),
    ) -> None:
        """Forget partitions not in `partitions`, and pairs neither observed since
        `begin_poll` nor in `pairs` (still reported, not re-read): memory stays flat.

        A generation mark rather than a set of every pair: at 10^5 pairs
        building that set cost more than the rest of the bookkeeping.
        """
        keep_p = set(partitions)
        for tp in [tp for tp in self.ends if tp not in keep_p]:
            del self.ends[tp]
        keep_pairs = set(pairs)
        generation = self.generation
        for key in [
            key
            for key, track in self.commits.items()
            if track.seen != generation and key not in keep_pairs
        ]:
            del self.commits[key]

    # --- persistence -----------------------------------------------------

    def to_document(self, cluster: str) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "cluster": cluster,
            "cluster_id": self.cluster_id,
            "size": self.size,
            "partitions": [
                [topic, partition, list(h.times), list(h.ends)]
                for (topic, partition), h in self.ends.items()
            ],
            "commits": [
                [
                    group,
                    topic,
                    partition,
                    list(track.samples),
                    list(track.changes) if track.changes is not None else None,
                    track.last_committed,
                    track.stuck_since,
                    track.rewound_at,
                    track.past_end,
                ]
                for (group, (topic, partition)), track in self.commits.items()
            ],
        }

    def load_document(self, doc: Any, cluster: str) -> None:
        """Restore the histories; raises ValueError when the document does not fit.

        Nothing is changed unless the whole document is read: a half-read file
        would leave some tracks restored and others not.
        """
        if not isinstance(doc, dict) or doc.get("version") not in (1, FORMAT_VERSION):
            raise ValueError("unknown format")
        if doc.get("cluster") != cluster:
            raise ValueError(f"written for cluster {doc.get('cluster')!r}")
        ends: dict[TopicPartition, EndHistory] = {}
        for topic, partition, times, offsets in doc["partitions"]:
            if not (isinstance(topic, str) and isinstance(partition, int)):
                raise ValueError("bad partition entry")
            if len(times) != len(offsets):
                raise ValueError("bad partition entry")
            h = EndHistory(self.size)
            for t, e in zip(times, offsets, strict=True):
                h.add(float(t), int(e))
            ends[(topic, partition)] = h
        commits: dict[tuple[str, TopicPartition], CommitTrack] = {}
        for entry in doc.get("commits", ()):
            group, topic, partition, samples, changes, last, stuck, rewound, past_end = entry
            if not (isinstance(group, str) and isinstance(topic, str)):
                raise ValueError("bad commit track entry")
            if not isinstance(partition, int) or len(samples) % 3:
                raise ValueError("bad commit track entry")
            track = CommitTrack(0.0, int(last))
            track.samples = array("d", (float(x) for x in samples))
            track.changes = array("d", (float(x) for x in changes)) if changes else None
            track.stuck_since = float(stuck) if stuck is not None else None
            track.rewound_at = float(rewound) if rewound is not None else None
            track.past_end = bool(past_end)
            commits[(group, (topic, partition))] = track
        self.ends = ends
        self.commits = commits
        self.cluster_id = doc.get("cluster_id")


def state_path(state_dir: Path, cluster: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    return state_dir / f"history-{safe}.json"


def save(history: History, cluster: str, path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(history.to_document(cluster), f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(history: History, cluster: str, path: Path) -> bool:
    """Read a saved history; a missing, corrupt or foreign file is ignored with a warning."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cluster %s: cannot read history %s: %s", cluster, path, exc)
        return False
    try:
        history.load_document(json.loads(text), cluster)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        log.warning("cluster %s: ignoring history file %s: %s", cluster, path, exc)
        return False
    log.info(
        "cluster %s: restored lag history of %d partitions and %d group partitions from %s",
        cluster,
        len(history.ends),
        len(history.commits),
        path,
    )
    return True
