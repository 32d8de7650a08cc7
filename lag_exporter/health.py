"""The exporter's running account of how polling a cluster goes. Pure."""

from __future__ import annotations

from collections import Counter

from .model import ClusterHealth, ErrorKind, PollResult


def poll_outcome(poll: PollResult) -> str:
    """success: everything read; partial: reached but something failed; failure: unreached."""
    if not poll.reached:
        return "failure"
    return "partial" if poll.errors else "success"


def next_health(previous: ClusterHealth | None, poll: PollResult) -> ClusterHealth:
    prev = previous or ClusterHealth(
        up=False, last_poll_duration=None, last_poll_at=None, last_success_at=None, partial=False
    )
    outcome = poll_outcome(poll)
    polls = Counter(prev.polls_total)
    polls[outcome] += 1
    # Every kind starts at 0, so rate() and alerts see a series before the first error.
    errors = Counter({str(kind): 0 for kind in ErrorKind} | prev.errors_total)
    errors.update(str(e.kind) for e in poll.errors)
    requests = Counter(prev.requests_total)
    requests.update(poll.requests)
    return ClusterHealth(
        up=poll.reached,
        last_poll_duration=poll.duration,
        last_poll_at=poll.started_at,
        last_success_at=poll.started_at if poll.reached else prev.last_success_at,
        partial=outcome == "partial",
        polls_total=dict(polls),
        errors_total=dict(errors),
        last_requests=dict(poll.requests),
        requests_total=dict(requests),
        last_errors=poll.errors,
    )
