"""The outbox of one notifier: notifications not yet accepted by its receiver. Pure.

A transition (firing, resolved, repeat) is done only when the receiver
answered 2xx. Until then it stays here, retried with exponential backoff
(capped at `max_backoff`) until `horizon` seconds after it was queued; then
it is dropped, counted as `dropped_after_horizon`. An answer that says the
request itself is wrong (4xx other than 429, a redirect) is final: `failed`.

The outbox keeps at most what the receiver still needs to learn, so a long
outage neither floods the receiver with copies when it returns nor loses
a change:

- a firing (first or repeat) for an alert whose firing is already queued
  replaces that one's content (newest value), keeping `repeat` false if the
  queued one was the first announcement: one firing, never two (and none
  while one is being sent);
- a resolved removes the alert's queued repeats (the receiver knew it
  fired), and a first firing whose attempt timed out (the receiver may
  well have it, and may never answer in time); a first firing that surely
  did not arrive (connection refused, an error status) stays, so the
  receiver sees firing then resolved, in that order.

Entries of one alert go out in order (a resolved never overtakes its
firing), but entries of different alerts do not wait for each other: a
failed attempt schedules that entry's retry and the next due entry goes
next, so one alert's retries delay another only by the length of one
attempt. The caller (delivery.Deliverer) guards an outbox with a lock and
marks the entry it is sending `in_flight`; supersession never touches an
entry in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from .engine import AlertKey, Notification

# Results, as the `result` label of lag_exporter_notifications_total.
DELIVERED = "delivered"
RETRIED = "retried"  # an attempt failed and the notification stays queued
FAILED = "failed"  # rejected by the receiver (final answer), or pushed out of a full outbox
DROPPED_AFTER_HORIZON = "dropped_after_horizon"
RESULTS = (DELIVERED, RETRIED, FAILED, DROPPED_AFTER_HORIZON)


@dataclass(slots=True)
class Entry:
    seq: int  # order of queueing, unique within the outbox
    notification: Notification
    queued_at: float  # when this alert's undelivered notification was first queued
    next_at: float  # not attempted before this time
    attempts: int = 0
    last_error: str | None = None
    in_flight: bool = False
    # An attempt timed out after the request was sent: the receiver may have it.
    maybe_received: bool = False

    @property
    def key(self) -> AlertKey:
        return self.notification.alert.key

    @property
    def is_resolved(self) -> bool:
        return self.notification.status == "resolved"


@dataclass(frozen=True, slots=True)
class Policy:
    backoff: float  # wait before the second attempt, doubled each time
    max_backoff: float  # never more than this between attempts
    horizon: float  # given up this long after being queued
    max_attempts: int | None = None  # None: only the horizon ends retries
    capacity: int = 1000  # entries held; the oldest is pushed out beyond it

    def delay(self, attempts: int) -> float:
        """Wait after the `attempts`-th failed attempt."""
        exponent = min(attempts - 1, 60)  # 2**60 s is beyond any cap
        return float(min(self.max_backoff, self.backoff * 2**exponent))


class Outbox:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._entries: list[Entry] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def oldest_queued_at(self) -> float | None:
        return min((e.queued_at for e in self._entries), default=None)

    def add(self, n: Notification, now: float) -> list[Entry]:
        """Queue `n`, superseding what it makes pointless; returns entries pushed
        out because the outbox is full (the caller counts them as failed)."""
        key = n.alert.key
        alerts = [e for e in self._entries if e.key == key]
        mine = [e for e in alerts if not e.in_flight]
        if n.status == "firing":
            last = alerts[-1] if alerts else None
            if last is not None and not last.is_resolved:
                if last.in_flight:
                    # Being sent right now: it says the alert fires (and stays
                    # queued if the attempt fails).
                    return []
                # One firing per alert in the outbox: the newest content, but a
                # first announcement stays a first announcement.
                last.notification = replace(n, repeat=last.notification.repeat and n.repeat)
                return []
        else:
            for e in mine:
                if not e.is_resolved and (e.notification.repeat or e.maybe_received):
                    self._entries.remove(e)
        return self._append(Entry(self._next_seq(), n, now, now))

    def restore(self, entry: Entry) -> list[Entry]:
        """Put back an entry saved before a restart (attempted again at once)."""
        entry.seq = self._next_seq()
        entry.in_flight = False
        return self._append(entry)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _append(self, entry: Entry) -> list[Entry]:
        self._entries.append(entry)
        pushed_out: list[Entry] = []
        while len(self._entries) > self.policy.capacity:
            victim = next((e for e in self._entries if not e.in_flight), None)
            if victim is None:
                break
            self._entries.remove(victim)
            pushed_out.append(victim)
        return pushed_out

    def _heads(self) -> Iterator[Entry]:
        """The first entry of each alert, in queue order: the only ones that may go."""
        seen: set[AlertKey] = set()
        for e in self._entries:
            if e.key not in seen:
                seen.add(e.key)
                yield e

    def next_due(self, now: float) -> Entry | None:
        """The entry to attempt now (oldest first), marked in flight; None if none is due."""
        for e in self._heads():
            if not e.in_flight and e.next_at <= now:
                e.in_flight = True
                return e
        return None

    def next_wake(self) -> float | None:
        """When the next entry becomes due (None: nothing waits)."""
        return min((e.next_at for e in self._heads() if not e.in_flight), default=None)

    def _resolved_after(self, entry: Entry) -> bool:
        at = self._entries.index(entry)
        return any(e.key == entry.key and e.is_resolved for e in self._entries[at + 1 :])

    def delivered(self, entry: Entry) -> None:
        self._entries.remove(entry)

    def failed(
        self, entry: Entry, now: float, error: str, retry: bool, maybe_received: bool = False
    ) -> str:
        """Record a failed attempt; returns the result: retried, failed or dropped_after_horizon."""
        entry.in_flight = False
        entry.attempts += 1
        entry.last_error = error
        entry.maybe_received = entry.maybe_received or maybe_received
        if not retry:
            self._entries.remove(entry)
            return FAILED
        if entry.maybe_received and not entry.is_resolved and self._resolved_after(entry):
            # Superseded while in flight by its own resolve, which goes next.
            self._entries.remove(entry)
            return RETRIED
        next_at = now + self.policy.delay(entry.attempts)
        out_of_attempts = (
            self.policy.max_attempts is not None and entry.attempts >= self.policy.max_attempts
        )
        if out_of_attempts or next_at > entry.queued_at + self.policy.horizon:
            self._entries.remove(entry)
            return DROPPED_AFTER_HORIZON
        entry.next_at = next_at
        return RETRIED

    def expired(self, now: float) -> list[Entry]:
        """Remove and return entries past the horizon that are not in flight (e.g.
        restored from a state file written long ago)."""
        gone = [
            e for e in self._entries if not e.in_flight and now > e.queued_at + self.policy.horizon
        ]
        for e in gone:
            self._entries.remove(e)
        return gone
