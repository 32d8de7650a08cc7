"""Values that cross stage boundaries: what one poll read, and what it means.

Kafka -> PollResult (raw facts, with the errors met) -> ClusterView (lag per
group and partition, merged with the recent past) -> exposition and JSON.
All frozen: a stage never changes what an earlier stage handed over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from .status import Status

# (topic, partition): a plain tuple, because there are up to hundreds of
# thousands of them per poll and tuples are the cheapest hashable pair.
TopicPartition = tuple[str, int]


class ErrorKind(StrEnum):
    """What failed, as the `kind` label of lag_exporter_poll_errors_total."""

    CONNECTION = "connection"  # cannot reach the cluster at all
    AUTHENTICATION = "authentication"  # SASL: wrong credentials or mechanism
    TLS = "tls"  # TLS handshake: untrusted certificate, client certificate refused
    METADATA = "metadata"
    LIST_GROUPS = "list_groups"
    COORDINATOR = "coordinator"  # FindCoordinator, or a coordinator moving/loading
    DESCRIBE_GROUP = "describe_group"
    OFFSET_FETCH = "offset_fetch"
    AUTHORIZATION = "authorization"
    LIST_OFFSETS = "list_offsets"
    FETCH = "fetch"  # reading record timestamps for exact lag seconds
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
    # Topics the member subscribed to by name, where the group protocol says
    # (classic consumer groups and KIP-848 groups); empty when unknown.
    subscribed_topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    coordinator: int | None
    members: tuple[Member, ...]
    # False when only ListGroups knew the group (e.g. a group on the new
    # consumer protocol on a broker without ConsumerGroupDescribe): members unknown.
    described: bool = True
    # ListGroups' group type (v5+): "classic", "consumer" (KIP-848), "share"
    # (KIP-932), "streams"; empty when the broker does not tell.
    group_type: str = ""


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
    cluster_id: str | None = None
    # (topic, partition, offset) -> timestamp (seconds) of the record at that
    # offset, read for groups in exact lag-seconds mode.
    record_timestamps: dict[tuple[str, int, int], float] = field(default_factory=dict)


class PartitionLag(NamedTuple):
    """One group's lag on one partition.

    A named tuple, not a frozen dataclass like its neighbours: there is one
    per group partition per poll (10^5 on a big cluster), and a frozen
    dataclass with this many fields takes 2 us to build against 0.4 us.
    """

    topic: str
    partition: int
    committed: int | None
    log_start: int | None
    log_end: int | None
    lag: int | None  # None: no committed offset, or log-end unknown
    lost_to_retention: int  # messages deleted by retention before being consumed
    member: Member | None
    stale: bool  # carried over from an earlier poll
    lag_seconds: float | None = None
    # True: the committed offset is older than the history, lag_seconds is a minimum.
    lag_seconds_lower_bound: bool = False
    lag_seconds_exact: bool = False  # from the record's own timestamp
    status: Status | None = None
    consumption_rate: float | None = None  # committed messages per second

    @property
    def offset_past_log_end(self) -> int:
        """By how many offsets the committed offset exceeds the log end (0: it does not).

        The committed offset is read before the log end, and the log end never
        goes back on a healthy partition, so this is an anomaly, never a race:
        a topic deleted and re-created under the group, a log truncated by an
        unclean leader election, or an offset committed by hand.
        """
        committed, log_end = self.committed, self.log_end
        if committed is None or log_end is None or log_end < 0 or committed <= log_end:
            return 0
        return committed - log_end


@dataclass(frozen=True, slots=True)
class GroupTopicRates:
    consumption_rate: float | None  # messages per second, summed over partitions
    catchup_seconds: float | None  # None: not catching up, or unknown


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
    status: Status | None = None
    topic_rates: dict[str, GroupTopicRates] = field(default_factory=dict)
    group_type: str = ""

    @property
    def max_lag(self) -> int | None:
        lags = [p.lag for p in self.partitions if p.lag is not None]
        return max(lags) if lags else None

    @property
    def max_lag_seconds(self) -> float | None:
        values = [p.lag_seconds for p in self.partitions if p.lag_seconds is not None]
        return max(values) if values else None


@dataclass(frozen=True, slots=True)
class TopicView:
    topic: str
    partitions: int
    offsets: dict[int, PartitionOffsets]
    production_rate: float | None = None  # messages per second, all partitions
    partition_rates: dict[int, float] = field(default_factory=dict)


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


# --- partitioning insight ----------------------------------------------------


class Verdict(StrEnum):
    """What the measurements say about a group's partitions and consumers on a topic."""

    ENOUGH = "enough"  # partitions and consumers suffice for the production rate
    ADD_CONSUMERS = "add_consumers"  # partitions suffice, consumers do not
    ADD_PARTITIONS = "add_partitions"  # more partitions (and consumers) are needed
    # Enough on average, but one partition alone receives more than a consumer handles.
    HOT_PARTITION = "hot_partition"
    NEVER_SATURATED = "never_saturated"  # consumers kept up: their capacity is unknown
    NOT_CONSUMING = "not_consuming"  # no commits in the window to measure
    NOT_ENOUGH_DATA = "not_enough_data"  # too few polls for rates


class CapacityMethod(StrEnum):
    MEMBER = "member"  # busy throughput of each member, over all its partitions of the topic
    PARTITION = "partition"  # busy throughput of each partition (members unknown)


@dataclass(frozen=True, slots=True)
class TopicInsight:
    """How a topic's production spreads over its partitions."""

    topic: str
    partitions: int
    production_rate: float | None  # messages per second
    shares: dict[int, float]  # partition -> share of the topic's production, 0..1
    skew: float | None  # busiest partition's rate / mean rate (1: even); None: unknown
    hot_partitions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PartitionAdvice:
    """Partitions and consumers one group needs on one topic, from measured rates."""

    group_id: str
    topic: str
    partitions: int  # the topic's partitions now
    consumers: int | None  # members owning partitions of the topic now; None: unknown
    production_rate: float | None  # messages per second into the topic
    consumption_rate: float | None  # messages per second the group commits on it
    lag: int
    headroom: float
    method: CapacityMethod
    # Messages per second one partition's consumer handles while it has a
    # backlog (busy), averaged over the members or partitions measured.
    capacity: float | None
    capacity_measured: int  # members or partitions whose busy rate was measured
    busy_seconds: float  # observation time behind `capacity`
    # Without a busy period: the most one consumer was seen to do, a lower bound.
    capacity_at_least: float | None
    partitions_needed: int | None
    consumers_needed: int | None
    # Partitions whose own production exceeds one consumer's capacity: more
    # partitions cannot help them, since one key always goes to one partition.
    overloaded_partitions: tuple[int, ...]
    lag_skew: float | None  # largest partition lag / mean lag; None without lag
    hot_lag_partitions: tuple[int, ...]
    verdict: Verdict
    reason: str  # one sentence a person can act on


@dataclass(frozen=True, slots=True)
class GroupInsight:
    group_id: str
    members: int | None  # None: members unknown
    idle_members: tuple[Member, ...]  # members without any partition
    unowned: dict[str, tuple[int, ...]]  # topic -> subscribed partitions no member owns
    topics: dict[str, PartitionAdvice]


@dataclass(frozen=True, slots=True)
class RetryTopics:
    """Retry and dead-letter topics of one main topic (Spring Kafka naming, or configured)."""

    main_topic: str
    main_exists: bool
    retry_topics: tuple[str, ...]
    dead_letter_topics: tuple[str, ...]
    messages_in: dict[str, float]  # topic -> messages per second produced into it
    messages: dict[str, int]  # topic -> messages in it (log-end - log-start, summed)
    retry_lag: dict[tuple[str, str], int]  # (group, retry topic) -> the group's lag on it

    @property
    def dead_letter_rate(self) -> float | None:
        rates = [self.messages_in[t] for t in self.dead_letter_topics if t in self.messages_in]
        return sum(rates) if rates else None

    @property
    def dead_letter_messages(self) -> int:
        return sum(self.messages.get(t, 0) for t in self.dead_letter_topics)

    @property
    def retry_rate(self) -> float | None:
        rates = [self.messages_in[t] for t in self.retry_topics if t in self.messages_in]
        return sum(rates) if rates else None

    @property
    def retry_backlog(self) -> int:
        return sum(self.retry_lag.values())


@dataclass(frozen=True, slots=True)
class ClusterInsight:
    topics: dict[str, TopicInsight]
    groups: dict[str, GroupInsight]
    retries: dict[str, RetryTopics]  # main topic -> its retry and dead-letter topics
    headroom: float


@dataclass(frozen=True, slots=True)
class ClusterView:
    cluster: str
    labels: dict[str, str]
    brokers: int
    topics: dict[str, TopicView]
    groups: dict[str, GroupView]
    health: ClusterHealth
    insight: ClusterInsight | None = None
