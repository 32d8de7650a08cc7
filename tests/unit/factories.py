"""Plain values for the pure stages: a PollResult as a test wants to write it."""

from __future__ import annotations

from lag_exporter.config import NameFilter
from lag_exporter.health import next_health
from lag_exporter.model import (
    ClusterView,
    GroupDescription,
    Member,
    PartitionOffsets,
    PollError,
    PollResult,
    TopicPartition,
)
from lag_exporter.view import Derivation, build_view


def member(name: str, *assignment: TopicPartition) -> Member:
    return Member(f"{name}-id", name, "10.0.0.1", None, tuple(assignment))


def group(group_id: str, *members: Member, state: str = "Stable") -> GroupDescription:
    return GroupDescription(group_id, state, "consumer", "range", 1, tuple(members))


def poll(
    at: float,
    *,
    topics: dict[str, int] | None = None,
    ends: dict[TopicPartition, tuple[int, int]] | None = None,
    groups: list[GroupDescription] | None = None,
    committed: dict[str, dict[TopicPartition, int]] | None = None,
    failed_groups: set[str] | None = None,
    reached: bool = True,
    groups_complete: bool = True,
    errors: tuple[PollError, ...] = (),
) -> PollResult:
    return PollResult(
        cluster="c1",
        started_at=at,
        duration=0.01,
        reached=reached,
        brokers=1 if reached else 0,
        topics=topics or {} if reached else {},
        partition_offsets={
            tp: PartitionOffsets(start, end, at) for tp, (start, end) in (ends or {}).items()
        },
        groups={g.group_id: g for g in groups or []},
        committed=committed or {},
        failed_groups=frozenset(failed_groups or ()),
        failed_topics=frozenset(),
        topics_complete=reached,
        groups_complete=groups_complete and reached,
        errors=errors,
        requests={"Metadata": 1} if reached else {},
    )


def view_of(
    p: PollResult,
    previous: ClusterView | None = None,
    *,
    max_staleness: float = 60.0,
    topic_filter: NameFilter | None = None,
    derive: Derivation | None = None,
) -> ClusterView:
    health = next_health(previous.health if previous else None, p)
    view, _ = build_view(
        p,
        previous,
        labels={},
        topic_filter=topic_filter or NameFilter(),
        max_staleness=max_staleness,
        health=health,
        derive=derive,
    )
    return view
