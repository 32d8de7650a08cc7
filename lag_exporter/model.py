"""Values that cross stage boundaries: what one poll read, and what it means.

Kafka -> PollResult (raw facts, with the errors met) -> ClusterView (lag per
group and partition, merged with the recent past) -> exposition and JSON.
All frozen: a stage never changes what an earlier stage handed over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# (topic, partition): a plain tuple, because there are up to hundreds of
# thousands of them per poll and tuples are the cheapest hashable pair.
TopicPartition = tuple[str, int]


class ErrorKind(StrEnum):
    """What failed, as the `kind` label of lag_exporter_poll_errors_total."""

    CONNECTION = "connection"  # cannot reach the cluster at all
    METADATA = "metadata"
    LIST_GROUPS = "list_groups"
    COORDINATOR = "coordinator"  # FindCoordinator, or a coordinator moving/loading
    DESCRIBE_GROUP = "describe_group"
    OFFSET_FETCH = "offset_fetch"
    AUTHORIZATION = "authorization"
    LIST_OFFSETS = "list_offsets"
    TIMEOUT = "timeout"
    TOPIC_DELETED = "topic_deleted"


@dataclass(frozen=True, slots=True)
class PollError:
    kind: ErrorKind
    message: str
    group: str | None = None
    topic: str | None = None
    broker: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    coordinator: int | None
    members: tuple[Member, ...]
    # False when only ListGroups knew the group (e.g. a group on the new
    # consumer protocol that DescribeGroups cannot see): members unknown.
    described: bool = True


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    log_start: int | None
    log_end: int | None
    read_at: float  # wall clock of the poll that read them


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll of one cluster read, and everything it could not."""

    cluster: str
    started_at: float  # wall clock, seconds
    duration: float
    reached: bool  # False: no broker answered (cluster down)
    brokers: int
    # topic -> number of partitions, for every topic in metadata that passes the filter
    topics: dict[str, int]
    partition_offsets: dict[TopicPartition, PartitionOffsets]
    groups: dict[str, GroupDescription]
    committed: dict[str, dict[TopicPartition, int]]
    # Groups whose committed offsets could not be read this poll.
    failed_groups: frozenset[str]
    # Topics whose metadata could not be read (their partitions are unknown).
    failed_topics: frozenset[str]
    # True when metadata was read, so a topic missing from `topics` is gone.
    topics_complete: bool
    # True when ListGroups answered on every broker, so a group missing from
    # `groups` is really gone rather than unseen.
    groups_complete: bool
    errors: tuple[PollError, ...]
    requests: dict[str, int]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_start: int | None
    log_end: int | None
    lag: int | None  # None: no committed offset, or log-end unknown
    lost_to_retention: int  # messages deleted by retention before being consumed
    member: Member | None
    stale: bool  # carried over from an earlier poll


@dataclass(frozen=True, slots=True)
class GroupView:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    coordinator: int | None
    members: tuple[Member, ...]
    members_known: bool
    partitions: tuple[PartitionLag, ...]
    uncommitted_partitions: int
    stale: bool
    read_at: float  # wall clock when its offsets were last read successfully

    @property
    def max_lag(self) -> int | None:
        lags = [p.lag for p in self.partitions if p.lag is not None]
        return max(lags) if lags else None


@dataclass(frozen=True, slots=True)
class TopicView:
    topic: str
    partitions: int
    offsets: dict[int, PartitionOffsets]


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    """The exporter's own view of how polling this cluster goes."""

    up: bool
    last_poll_duration: float | None
    last_poll_at: float | None
    last_success_at: float | None
    partial: bool
    polls_total: dict[str, int] = field(default_factory=dict)  # result -> count
    errors_total: dict[str, int] = field(default_factory=dict)  # kind -> count
    last_requests: dict[str, int] = field(default_factory=dict)  # api -> count
    requests_total: dict[str, int] = field(default_factory=dict)
    last_errors: tuple[PollError, ...] = ()
    # The previous poll end to end: Kafka, lag, rendering. Known only once
    # rendered, so it is published with the next poll.
    last_publish_duration: float | None = None


@dataclass(frozen=True, slots=True)
class ClusterView:
    cluster: str
    labels: dict[str, str]
    brokers: int
    topics: dict[str, TopicView]
    groups: dict[str, GroupView]
    health: ClusterHealth
