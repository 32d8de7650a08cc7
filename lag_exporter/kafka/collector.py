"""One poll of one cluster -> PollResult. The only code that speaks to Kafka.

Requests per poll do not grow with the number of groups or partitions:

    Metadata          1
    ListGroups        1 per broker
    FindCoordinator   1 (batched, KIP-699; per group only on brokers < 3.0)
    DescribeGroups    1 per coordinator (classic groups)
    ConsumerGroupDescribe
                      1 per coordinator (groups on the KIP-848 consumer protocol,
                      on brokers that have the API)
    OffsetFetch       1 per coordinator (batched, KIP-709; per group on brokers < 3.0)
    ListOffsets       2 per partition leader (latest and earliest)
    Fetch             1 per partition leader, only for groups in exact lag-seconds
                      mode, for at most `exact_max_fetches` new committed offsets

Requests to different brokers run concurrently on kafka-python's I/O thread.
Committed offsets are read before log-end offsets, as Kafka's own
kafka-consumer-groups does, so a race can only make lag look smaller by what
was produced in between, never negative.

kafka-python's high-level admin calls raise for a whole batch when one group
or partition fails and cache coordinators forever; this module sends the same
protocol requests itself and keeps each error to the group, topic or
partition it belongs to. Coordinators are looked up afresh every poll, so a
moved coordinator costs at most one poll of that group.

ListGroups (v5+) tells each group's type. Classic groups are described with
DescribeGroups; groups on the new consumer protocol (KIP-848, the default of
Java clients against Kafka 4 brokers) with ConsumerGroupDescribe, which
kafka-python lacks (see protocol.py); on brokers without it they are
reported from their listing, members unknown. Share groups (KIP-932) have no
committed offsets to fetch: they are listed with their state only.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import kafka.errors as Errors
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.consumer import FetchRequest, ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from kafka.protocol.metadata import FindCoordinatorRequest, MetadataRequest
from kafka.record import MemoryRecords

from ..config import ClusterConfig
from ..model import (
    ErrorKind,
    GroupDescription,
    Member,
    PartitionOffsets,
    PollError,
    PollResult,
    TopicPartition,
)
from ..redact import redact
from .connection import BootstrapError, KafkaConnection
from .protocol import ConsumerGroupDescribeRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

_LATEST = -1
_EARLIEST = -2
# Bytes asked per partition when reading the record at a committed offset;
# the broker still returns one whole batch if it is larger (KIP-74).
_RECORD_PEEK_BYTES = 4096
_TIMESTAMP_CACHE_SIZE = 50_000
# Internal topics are not consumer traffic; hidden unless asked for.
_INTERNAL_PREFIX = "__"
# ListGroups group types (KIP-848). Brokers before 3.7 leave the type empty.
_CONSUMER_TYPE = "consumer"  # the new consumer group protocol
_SHARE_TYPE = "share"  # share groups (KIP-932): no committed offsets
# Types DescribeGroups cannot describe (it answers GROUP_ID_NOT_FOUND).
_NOT_CLASSIC = frozenset({_CONSUMER_TYPE, _SHARE_TYPE, "streams"})


# Appended to the log line when a cluster cannot be reached, for the kinds
# where the fix is on the user's side.
_HINTS = {
    ErrorKind.AUTHENTICATION: " (check sasl.mechanism, sasl.username and sasl.password)",
    ErrorKind.TLS: (
        " (check ssl.ca.location, ssl.certificate.location and ssl.key.location"
        " against the broker's certificate and its client authentication)"
    ),
}


# Python 3.13 verifies certificates strictly (VERIFY_X509_STRICT): a private CA
# made without these extensions is refused although older Pythons accepted it.
_STRICT_X509_FAILURES = (
    "Missing Authority Key Identifier",
    "Missing Subject Key Identifier",
    "Basic Constraints of CA cert not marked critical",
    "CA cert does not include key usage extension",
)
_STRICT_X509_HINT = (
    " (this Python verifies certificates strictly: re-issue the broker's certificate"
    " and its CA with subject and authority key identifiers and a critical"
    " basicConstraints extension on the CA)"
)


def _hint(kind: ErrorKind, text: str) -> str:
    """What the user can do about an error of this kind, for the log."""
    if kind is ErrorKind.TLS and any(f in text for f in _STRICT_X509_FAILURES):
        return _STRICT_X509_HINT
    return _HINTS.get(kind, "")


class PollTimeout(Exception):
    """The poll ran out of its time budget."""


_AUTHENTICATION_ERRORS = (
    Errors.SaslAuthenticationFailedError,
    Errors.UnsupportedSaslMechanismError,
    Errors.IllegalSaslStateError,
)


def _is_tls_failure(exc: BaseException) -> bool:
    """A TLS handshake or certificate failure; kafka-python passes them on as text."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError) or "[SSL" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _error_kind(exc: BaseException, default: ErrorKind) -> ErrorKind:
    if isinstance(exc, BootstrapError):
        return _error_kind(exc.cause, ErrorKind.CONNECTION) if exc.cause else ErrorKind.CONNECTION
    if isinstance(exc, _AUTHENTICATION_ERRORS):
        return ErrorKind.AUTHENTICATION
    if _is_tls_failure(exc):
        return ErrorKind.TLS
    if isinstance(exc, Errors.AuthorizationError):
        return ErrorKind.AUTHORIZATION
    if isinstance(exc, Errors.KafkaTimeoutError | Errors.RequestTimedOutError | PollTimeout):
        return ErrorKind.TIMEOUT
    if isinstance(
        exc,
        Errors.NotCoordinatorError
        | Errors.CoordinatorNotAvailableError
        | Errors.CoordinatorLoadInProgressError,
    ):
        return ErrorKind.COORDINATOR
    if isinstance(exc, Errors.KafkaConnectionError | Errors.NodeNotReadyError):
        return ErrorKind.CONNECTION
    return default


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    if not text or text == name:
        return name
    # kafka-python's errors already start with their name.
    return text if text.startswith(name) else f"{name}: {text}"


class Poll:
    """State of one poll in progress: its deadline, request counts and errors."""

    def __init__(self, connection: KafkaConnection, timeout: float) -> None:
        self.connection = connection
        self.deadline = time.monotonic() + timeout
        self.requests: Counter[str] = Counter()
        self.errors: list[PollError] = []

    def error(self, kind: ErrorKind, exc: BaseException | str, **where: Any) -> None:
        message = exc if isinstance(exc, str) else _describe(exc)
        self.errors.append(PollError(kind, redact(message), **where))

    async def send(self, request: Any, node_id: int | None = None) -> Any:
        """Send one request, counted by API, bounded by the poll's deadline."""
        remaining_ms = int((self.deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise PollTimeout("poll timeout reached before the request was sent")
        api = type(request).__name__.removesuffix("Request")
        self.requests[api] += 1
        manager = self.connection.manager
        future = manager.send(request, node_id=node_id, request_timeout_ms=remaining_ms)
        return await manager.wait_for(future, remaining_ms)

    async def gather(self, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
        """Run coroutines concurrently on the I/O loop; exceptions are returned, not raised."""
        futures = [self.connection.manager.call_soon(call) for call in calls]
        results: list[T | BaseException] = []
        for future in futures:
            try:
                results.append(await future)
            except Exception as exc:  # one failure must not lose the others
                results.append(exc)
        return results


class Collector:
    """Polls one cluster. Not thread-safe: one poller thread owns it."""

    def __init__(self, cluster: ClusterConfig) -> None:
        self.cluster = cluster
        self.connection = KafkaConnection(cluster)
        # (topic, partition, offset) -> record timestamp. A record's timestamp
        # never changes, so each committed offset is read once.
        self._timestamps: dict[tuple[str, int, int], float] = {}

    def close(self) -> None:
        self.connection.close()

    def poll(self) -> PollResult:
        started_at = time.time()
        started = time.monotonic()
        try:
            self.connection.ensure_connected(self.cluster.poll_timeout)
        except Exception as exc:
            kind = _error_kind(exc, ErrorKind.CONNECTION)
            log.warning(
                "cluster %s: cannot connect: %s%s",
                self.cluster.name,
                _describe(exc),
                _hint(kind, _describe(exc)),
            )
            return _unreached(
                self.cluster.name,
                started_at,
                time.monotonic() - started,
                PollError(kind, redact(_describe(exc))),
            )
        poll = Poll(self.connection, self.cluster.poll_timeout)
        try:
            result: PollResult = self.connection.run(self._poll, poll, started_at, started)
        except Exception as exc:  # the client's I/O loop itself failed
            log.exception("cluster %s: poll failed", self.cluster.name)
            result = _unreached(
                self.cluster.name,
                started_at,
                time.monotonic() - started,
                PollError(_error_kind(exc, ErrorKind.CONNECTION), _describe(exc)),
                requests=dict(poll.requests),
            )
        if not result.reached:
            # Start from bootstrap next time: the brokers we knew may be gone.
            self.connection.close()
        elif any(e.kind in (ErrorKind.AUTHENTICATION, ErrorKind.TLS) for e in result.errors):
            # kafka-python remembers an authentication failure per broker and
            # never tries that broker again; the next poll should, since the
            # broker side may have been put right meanwhile.
            self.connection.forget_auth_failures()
        return result

    # --- the poll, on kafka-python's I/O thread -----------------------------

    async def _poll(self, poll: Poll, started_at: float, started: float) -> PollResult:
        try:
            metadata = await poll.send(
                MetadataRequest(topics=None, allow_auto_topic_creation=False)
            )
        except Exception as exc:
            return _unreached(
                self.cluster.name,
                started_at,
                time.monotonic() - started,
                PollError(_error_kind(exc, ErrorKind.METADATA), _describe(exc)),
                requests=dict(poll.requests),
            )
        self.connection.learn_brokers(metadata)
        brokers = [b.node_id for b in metadata.brokers]
        topics, leaders, failed_topics = self._read_metadata(poll, metadata)

        groups, groups_complete = await self._list_groups(poll, brokers)
        coordinators = await self._find_coordinators(poll, sorted(groups))
        descriptions, committed, failed_groups = await self._read_groups(poll, groups, coordinators)
        offsets = await self._list_offsets(poll, leaders)
        stamps = await self._record_timestamps(poll, committed, offsets, leaders)

        return PollResult(
            cluster=self.cluster.name,
            started_at=started_at,
            duration=time.monotonic() - started,
            reached=True,
            brokers=len(brokers),
            topics=topics,
            partition_offsets=offsets,
            groups=descriptions,
            committed=committed,
            failed_groups=frozenset(failed_groups),
            failed_topics=frozenset(failed_topics),
            topics_complete=True,
            groups_complete=groups_complete,
            errors=tuple(poll.errors),
            requests=dict(poll.requests),
            cluster_id=getattr(metadata, "cluster_id", None),
            record_timestamps=stamps,
        )

    def _read_metadata(
        self, poll: Poll, metadata: Any
    ) -> tuple[dict[str, int], dict[int, list[TopicPartition]], set[str]]:
        topics: dict[str, int] = {}
        leaders: dict[int, list[TopicPartition]] = defaultdict(list)
        failed: set[str] = set()
        accepts = self.cluster.topics.accepts
        for topic in metadata.topics:
            name = topic.name
            internal = topic.is_internal or name.startswith(_INTERNAL_PREFIX)
            if internal and not self.cluster.include_internal_topics:
                continue
            if not accepts(name):
                continue
            error = Errors.for_code(topic.error_code)
            if error is not Errors.NoError:
                # Authorization or a topic being created/deleted: only this topic is unknown.
                failed.add(name)
                poll.error(_error_kind(error(), ErrorKind.METADATA), error(), topic=name)
                continue
            topics[name] = len(topic.partitions)
            for p in topic.partitions:
                if p.leader_id is None or p.leader_id < 0:
                    # Leaderless partition: its offsets stay unknown, its topic does not.
                    poll.error(
                        ErrorKind.LIST_OFFSETS,
                        f"partition {name}-{p.partition_index} has no leader",
                        topic=name,
                    )
                    continue
                leaders[p.leader_id].append((name, p.partition_index))
        return topics, leaders, failed

    async def _list_groups(self, poll: Poll, brokers: list[int]) -> tuple[dict[str, Any], bool]:
        """Group id -> its ListGroups entry, de-duplicated across brokers."""

        def list_on(node: int) -> Callable[[], Awaitable[Any]]:
            return lambda: poll.send(ListGroupsRequest(), node_id=node)

        responses = await poll.gather(list_on(b) for b in brokers)
        listings: list[list[Any]] = []
        complete = True
        if not brokers:
            # A broker that was fenced (e.g. frozen past its session) answers
            # metadata without brokers for a moment: the groups are unseen, not gone.
            complete = False
            poll.error(ErrorKind.LIST_GROUPS, "metadata lists no brokers")
        for node, response in zip(brokers, responses, strict=True):
            if isinstance(response, BaseException):
                complete = False
                poll.error(_error_kind(response, ErrorKind.LIST_GROUPS), response, broker=node)
                continue
            error = Errors.for_code(response.error_code)
            if error is not Errors.NoError:
                complete = False
                poll.error(_error_kind(error(), ErrorKind.LIST_GROUPS), error(), broker=node)
                continue
            listings.append(list(response.groups))
        return merge_listings(listings, self.cluster.groups.accepts), complete

    async def _find_coordinators(self, poll: Poll, group_ids: list[str]) -> dict[str, int]:
        if not group_ids:
            return {}
        manager = self.connection.manager
        out: dict[str, int] = {}
        if manager.broker_version_data.api_version(FindCoordinatorRequest) >= 4:
            try:
                response = await poll.send(
                    FindCoordinatorRequest(key_type=0, coordinator_keys=group_ids, min_version=4)
                )
            except Exception as exc:
                for group_id in group_ids:
                    poll.error(_error_kind(exc, ErrorKind.COORDINATOR), exc, group=group_id)
                return out
            rows = [(c.key, c.error_code, c.node_id) for c in response.coordinators]
        else:

            def find(group_id: str) -> Callable[[], Awaitable[Any]]:
                return lambda: poll.send(
                    FindCoordinatorRequest(key=group_id, key_type=0, max_version=3)
                )

            responses = await poll.gather(find(g) for g in group_ids)
            rows = []
            for group_id, response in zip(group_ids, responses, strict=True):
                if isinstance(response, BaseException):
                    poll.error(
                        _error_kind(response, ErrorKind.COORDINATOR), response, group=group_id
                    )
                    continue
                rows.append((group_id, response.error_code, response.node_id))
        for key, error_code, node_id in rows:
            error = Errors.for_code(error_code)
            if error is not Errors.NoError:
                poll.error(_error_kind(error(), ErrorKind.COORDINATOR), error(), group=key)
                continue
            out[key] = node_id
        return out

    async def _read_groups(
        self, poll: Poll, listed: dict[str, Any], coordinators: dict[str, int]
    ) -> tuple[dict[str, GroupDescription], dict[str, dict[TopicPartition, int]], set[str]]:
        by_coordinator: dict[int, list[str]] = defaultdict(list)
        for group_id, node in coordinators.items():
            by_coordinator[node].append(group_id)
        failed: set[str] = set(listed) - set(coordinators)
        describe_consumer_groups = self._supports(ConsumerGroupDescribeRequest)

        # One describe of each kind and one OffsetFetch per coordinator, all at once.
        tasks: list[tuple[str, list[str]]] = []
        calls: list[Callable[[], Awaitable[Any]]] = []
        for node, group_ids in by_coordinator.items():
            types = {g: _group_type(listed[g]) for g in group_ids}
            classic = [g for g in group_ids if types[g] not in _NOT_CLASSIC]
            consumer = [g for g in group_ids if types[g] == _CONSUMER_TYPE]
            with_offsets = [g for g in group_ids if types[g] != _SHARE_TYPE]
            if classic:
                tasks.append(("describe", classic))
                calls.append(_bind(self._describe, poll, node, classic))
            if consumer and describe_consumer_groups:
                tasks.append(("describe", consumer))
                calls.append(_bind(self._describe_consumer_groups, poll, node, consumer))
            if with_offsets:
                tasks.append(("offsets", with_offsets))
                calls.append(_bind(self._fetch_offsets, poll, node, with_offsets))
        results = await poll.gather(calls)

        described: dict[str, GroupDescription] = {}
        committed: dict[str, dict[TopicPartition, int]] = {}
        for (task, group_ids), result in zip(tasks, results, strict=True):
            if task == "describe":
                if isinstance(result, BaseException):
                    for group_id in group_ids:
                        poll.error(
                            _error_kind(result, ErrorKind.DESCRIBE_GROUP), result, group=group_id
                        )
                else:
                    described.update(result)
            elif isinstance(result, BaseException):
                failed.update(group_ids)
                for group_id in group_ids:
                    poll.error(_error_kind(result, ErrorKind.OFFSET_FETCH), result, group=group_id)
            else:
                group_offsets, group_failures = result
                committed.update(group_offsets)
                failed.update(group_failures)

        descriptions = {
            group_id: described.get(group_id) or _from_listing(entry, coordinators.get(group_id))
            for group_id, entry in listed.items()
        }
        return descriptions, committed, failed

    def _supports(self, request_class: Any) -> bool:
        """Whether the brokers (as the bootstrap broker tells) know this API at all."""
        versions = self.connection.manager.broker_version_data
        try:
            versions.api_version(request_class)
        except Errors.IncompatibleBrokerVersion:
            return False
        return True

    async def _describe(
        self, poll: Poll, node: int, group_ids: list[str]
    ) -> dict[str, GroupDescription]:
        response = await poll.send(DescribeGroupsRequest(groups=group_ids), node_id=node)
        out: dict[str, GroupDescription] = {}
        for group in response.groups:
            error = Errors.for_code(group.error_code)
            if error is not Errors.NoError:
                # Kafka 4 answers GROUP_ID_NOT_FOUND for groups on the new
                # consumer protocol; the ListGroups entry stands in for them.
                if error is not Errors.GroupIdNotFoundError:
                    poll.error(
                        _error_kind(error(), ErrorKind.DESCRIBE_GROUP),
                        error(),
                        group=group.group_id,
                    )
                continue
            out[group.group_id] = GroupDescription(
                group_id=group.group_id,
                state=group.group_state,
                protocol_type=group.protocol_type or "",
                protocol=group.protocol_data or "",
                coordinator=node,
                members=tuple(
                    _member(m, consumer=group.protocol_type == "consumer") for m in group.members
                ),
                group_type="classic",
            )
        return out

    async def _describe_consumer_groups(
        self, poll: Poll, node: int, group_ids: list[str]
    ) -> dict[str, GroupDescription]:
        """Members and assignments of groups on the new consumer protocol (KIP-848)."""
        request = ConsumerGroupDescribeRequest(
            group_ids=group_ids, include_authorized_operations=False
        )
        response = await poll.send(request, node_id=node)
        out: dict[str, GroupDescription] = {}
        for group in response.groups:
            error = Errors.for_code(group.error_code)
            if error is not Errors.NoError:
                # Not found: the group went away, or changed type, since it was listed.
                if error is not Errors.GroupIdNotFoundError:
                    poll.error(
                        _error_kind(error(), ErrorKind.DESCRIBE_GROUP),
                        group.error_message or error(),
                        group=group.group_id,
                    )
                continue
            out[group.group_id] = consumer_group_description(group, node)
        return out

    async def _fetch_offsets(
        self, poll: Poll, node: int, group_ids: list[str]
    ) -> tuple[dict[str, dict[TopicPartition, int]], set[str]]:
        manager = self.connection.manager
        offsets: dict[str, dict[TopicPartition, int]] = {}
        failed: set[str] = set()
        if manager.broker_version_data.api_version(OffsetFetchRequest) >= 8:
            group_cls = OffsetFetchRequest.OffsetFetchRequestGroup
            request = OffsetFetchRequest(
                groups=[group_cls(group_id=g, topics=None) for g in group_ids],
                require_stable=False,
                min_version=8,
                max_version=8,
            )
            response = await poll.send(request, node_id=node)
            for group in response.groups:
                parsed = _parse_offsets(poll, group.group_id, group.error_code, group.topics)
                if parsed is None:
                    failed.add(group.group_id)
                else:
                    offsets[group.group_id] = parsed
            return offsets, failed

        # Brokers before 3.0: one request per group, at most a few in flight
        # per connection (kafka-python fails requests beyond its in-flight cap).
        for start in range(0, len(group_ids), 4):
            chunk = group_ids[start : start + 4]

            def fetch(group_id: str) -> Callable[[], Awaitable[Any]]:
                return lambda: poll.send(
                    OffsetFetchRequest(
                        group_id=group_id, topics=None, min_version=2, max_version=7
                    ),
                    node_id=node,
                )

            responses = await poll.gather(fetch(g) for g in chunk)
            for group_id, response in zip(chunk, responses, strict=True):
                if isinstance(response, BaseException):
                    failed.add(group_id)
                    poll.error(
                        _error_kind(response, ErrorKind.OFFSET_FETCH), response, group=group_id
                    )
                    continue
                parsed = _parse_offsets(poll, group_id, response.error_code, response.topics)
                if parsed is None:
                    failed.add(group_id)
                else:
                    offsets[group_id] = parsed
        return offsets, failed

    async def _list_offsets(
        self, poll: Poll, leaders: dict[int, list[TopicPartition]]
    ) -> dict[TopicPartition, PartitionOffsets]:
        calls: list[Callable[[], Awaitable[Any]]] = []
        nodes = sorted(leaders)
        for node in nodes:
            calls.append(_bind(self._list_offsets_on, poll, node, leaders[node], _LATEST))
            calls.append(_bind(self._list_offsets_on, poll, node, leaders[node], _EARLIEST))
        results = await poll.gather(calls)
        read_at = time.time()
        out: dict[TopicPartition, PartitionOffsets] = {}
        for node, latest, earliest in zip(nodes, results[0::2], results[1::2], strict=True):
            for result in (latest, earliest):
                if isinstance(result, BaseException):
                    poll.error(_error_kind(result, ErrorKind.LIST_OFFSETS), result, broker=node)
            if isinstance(latest, BaseException):
                continue  # without the log-end offset there is no lag to tell
            starts = {} if isinstance(earliest, BaseException) else earliest
            for tp, end in latest.items():
                out[tp] = PartitionOffsets(starts.get(tp), end, read_at)
        return out

    async def _record_timestamps(
        self,
        poll: Poll,
        committed: dict[str, dict[TopicPartition, int]],
        offsets: dict[TopicPartition, PartitionOffsets],
        leaders: dict[int, list[TopicPartition]],
    ) -> dict[tuple[str, int, int], float]:
        """Timestamps of the records at lagging groups' committed offsets (exact mode)."""
        exact = self.cluster.lag_seconds.exact_groups
        if exact is None:
            return {}
        cache = self._timestamps
        wanted: dict[TopicPartition, int] = {}  # one offset per partition per poll
        found: dict[tuple[str, int, int], float] = {}
        for group_id, group_offsets in committed.items():
            if not exact.accepts(group_id):
                continue
            for tp, position in group_offsets.items():
                read = offsets.get(tp)
                if read is None or read.log_end is None or not 0 <= position < read.log_end:
                    continue
                key = (tp[0], tp[1], position)
                if key in cache:
                    found[key] = cache[key]
                elif len(wanted) < self.cluster.lag_seconds.exact_max_fetches:
                    wanted.setdefault(tp, position)
        if not wanted:
            return found
        leader_of = {tp: node for node, tps in leaders.items() for tp in tps}
        by_leader: dict[int, dict[TopicPartition, int]] = defaultdict(dict)
        for tp, position in wanted.items():
            if tp in leader_of:
                by_leader[leader_of[tp]][tp] = position
        nodes = sorted(by_leader)
        results = await poll.gather(
            _bind(self._fetch_first_records, poll, node, by_leader[node]) for node in nodes
        )
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                # The estimate stands in; the next poll tries again.
                poll.error(_error_kind(result, ErrorKind.FETCH), result, broker=node)
                continue
            for key, stamp in result.items():
                if len(cache) >= _TIMESTAMP_CACHE_SIZE:
                    cache.pop(next(iter(cache)))
                cache[key] = stamp
                found[key] = stamp
        return found

    async def _fetch_first_records(
        self, poll: Poll, node: int, positions: dict[TopicPartition, int]
    ) -> dict[tuple[str, int, int], float]:
        topic_cls = FetchRequest.FetchTopic
        partition_cls = topic_cls.FetchPartition
        by_topic: dict[str, list[Any]] = defaultdict(list)
        for (topic, partition), position in positions.items():
            by_topic[topic].append(
                partition_cls(
                    partition=partition,
                    current_leader_epoch=-1,
                    fetch_offset=position,
                    last_fetched_epoch=-1,
                    log_start_offset=-1,
                    partition_max_bytes=_RECORD_PEEK_BYTES,
                )
            )
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=0,
            max_bytes=_RECORD_PEEK_BYTES * max(1, len(positions)),
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=[topic_cls(topic=t, partitions=ps) for t, ps in by_topic.items()],
            forgotten_topics_data=[],
            rack_id="",
            max_version=12,  # names, not topic ids
        )
        response = await poll.send(request, node_id=node)
        out: dict[tuple[str, int, int], float] = {}
        for topic in response.responses:
            for p in topic.partitions:
                if p.error_code:
                    continue  # e.g. offset out of range: the record is gone
                wanted = positions.get((topic.topic, p.partition_index))
                if wanted is None:
                    continue
                stamp = _first_timestamp(p.records, wanted)
                if stamp is not None:
                    out[(topic.topic, p.partition_index, wanted)] = stamp
        return out

    async def _list_offsets_on(
        self, poll: Poll, node: int, partitions: list[TopicPartition], spec: int
    ) -> dict[TopicPartition, int]:
        topic_cls = ListOffsetsRequest.ListOffsetsTopic
        partition_cls = topic_cls.ListOffsetsPartition
        by_topic: dict[str, list[Any]] = defaultdict(list)
        for topic, partition in partitions:
            by_topic[topic].append(partition_cls(partition_index=partition, timestamp=spec))
        request = ListOffsetsRequest(
            replica_id=-1,
            isolation_level=0,  # read_uncommitted: the high watermark, as Kafka's tool shows
            topics=[topic_cls(name=t, partitions=ps) for t, ps in by_topic.items()],
            min_version=1,
        )
        response = await poll.send(request, node_id=node)
        out: dict[TopicPartition, int] = {}
        for topic in response.topics:
            for p in topic.partitions:
                error = Errors.for_code(p.error_code)
                if error is not Errors.NoError:
                    # Leader moved or topic deleted mid-poll: this partition only.
                    if spec == _LATEST:
                        poll.error(
                            _error_kind(error(), ErrorKind.LIST_OFFSETS),
                            f"{topic.name}-{p.partition_index}: {_describe(error())}",
                            topic=topic.name,
                        )
                    continue
                out[(topic.name, p.partition_index)] = p.offset
        return out


def _first_timestamp(records: bytes | None, offset: int) -> float | None:
    """Timestamp (seconds) of the first data record at or after `offset`, if any."""
    if not records:
        return None
    batches = MemoryRecords(records)
    while batches.has_next():
        batch = batches.next_batch()
        if batch is None:
            break
        if getattr(batch, "is_control_batch", False):
            continue  # transaction markers are not messages anyone waits for
        for record in batch:
            if record.offset >= offset:
                stamp = record.timestamp
                return stamp / 1000 if stamp is not None and stamp >= 0 else None
    return None


def merge_listings(
    listings: Iterable[Iterable[Any]], accepts: Callable[[str], bool]
) -> dict[str, Any]:
    """Group id -> ListGroups entry over all brokers' answers, filtered.

    While a coordinator moves, two brokers may list the same group; the
    first answer is as good as the second, and listing it twice must not
    fail the poll (as it does kafka_exporter's and KMinion's scrapes).
    """
    groups: dict[str, Any] = {}
    for listing in listings:
        for entry in listing:
            if entry.group_id not in groups and accepts(entry.group_id):
                groups[entry.group_id] = entry
    return groups


def _bind(fn: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], Awaitable[T]]:
    return lambda: fn(*args)


def _parse_offsets(
    poll: Poll, group_id: str, error_code: int, topics: Any
) -> dict[TopicPartition, int] | None:
    error = Errors.for_code(error_code)
    if error is not Errors.NoError:
        poll.error(_error_kind(error(), ErrorKind.OFFSET_FETCH), error(), group=group_id)
        return None
    out: dict[TopicPartition, int] = {}
    for topic in topics or ():
        for p in topic.partitions:
            if p.error_code:
                part_error = Errors.for_code(p.error_code)()
                poll.error(
                    _error_kind(part_error, ErrorKind.OFFSET_FETCH),
                    f"{topic.name}-{p.partition_index}: {_describe(part_error)}",
                    group=group_id,
                    topic=topic.name,
                )
                continue
            out[(topic.name, p.partition_index)] = p.committed_offset
    return out


def consumer_group_description(group: Any, coordinator: int) -> GroupDescription:
    """A ConsumerGroupDescribe answer for one group -> its description."""
    members = []
    for m in group.members:
        assignment = m.assignment.topic_partitions if m.assignment is not None else ()
        members.append(
            Member(
                member_id=m.member_id,
                client_id=m.client_id,
                host=m.client_host.lstrip("/"),
                instance_id=m.instance_id,
                assignment=tuple(
                    (tp.topic_name, partition)
                    for tp in assignment
                    if tp.topic_name
                    for partition in sorted(tp.partitions)
                ),
                subscribed_topics=tuple(m.subscribed_topic_names or ()),
            )
        )
    return GroupDescription(
        group_id=group.group_id,
        state=group.group_state,
        protocol_type="consumer",
        protocol=group.assignor_name or "",
        coordinator=coordinator,
        members=tuple(members),
        group_type=_CONSUMER_TYPE,
    )


def _group_type(entry: Any) -> str:
    return str(getattr(entry, "group_type", None) or "")


def _member(raw: Any, consumer: bool = True) -> Member:
    assignment: tuple[TopicPartition, ...] = ()
    subscribed: tuple[str, ...] = ()
    if consumer and raw.member_metadata:
        try:
            subscribed = tuple(ConsumerProtocolSubscription.decode(raw.member_metadata).topics)
        except Exception:  # a non-consumer protocol has its own format
            log.debug("cannot decode subscription of member %s", raw.member_id)
    if raw.member_assignment:
        try:
            decoded = ConsumerProtocolAssignment.decode(raw.member_assignment)
            assignment = tuple(
                (topic, partition)
                for topic, partitions in decoded.assigned_partitions
                for partition in partitions
            )
        except Exception:  # a non-consumer protocol (e.g. Connect) has its own format
            log.debug("cannot decode assignment of member %s", raw.member_id)
    return Member(
        member_id=raw.member_id,
        client_id=raw.client_id,
        host=raw.client_host.lstrip("/"),
        instance_id=getattr(raw, "group_instance_id", None),
        assignment=assignment,
        subscribed_topics=subscribed,
    )


def _from_listing(entry: Any, coordinator: int | None) -> GroupDescription:
    return GroupDescription(
        group_id=entry.group_id,
        state=getattr(entry, "group_state", None) or "Unknown",
        protocol_type=entry.protocol_type or "",
        protocol="",
        coordinator=coordinator,
        members=(),
        described=False,
        group_type=_group_type(entry),
    )


def _unreached(
    cluster: str,
    started_at: float,
    duration: float,
    error: PollError,
    requests: dict[str, int] | None = None,
) -> PollResult:
    return PollResult(
        cluster=cluster,
        started_at=started_at,
        duration=duration,
        reached=False,
        brokers=0,
        topics={},
        partition_offsets={},
        groups={},
        committed={},
        failed_groups=frozenset(),
        failed_topics=frozenset(),
        topics_complete=False,
        groups_complete=False,
        errors=(error,),
        requests=requests or {},
    )
