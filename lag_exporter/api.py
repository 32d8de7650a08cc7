"""Cluster views -> the JSON documents of /api/v1/*, rendered once per poll. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .model import ClusterView, GroupView, Member, PartitionLag


def _member(m: Member) -> dict[str, Any]:
    return {
        "member_id": m.member_id,
        "client_id": m.client_id,
        "host": m.host,
        "group_instance_id": m.instance_id,
        "assignment": [{"topic": t, "partition": p} for t, p in m.assignment],
    }


def partition_document(p: PartitionLag) -> dict[str, Any]:
    return {
        "topic": p.topic,
        "partition": p.partition,
        "committed_offset": p.committed,
        "log_start_offset": p.log_start,
        "log_end_offset": p.log_end,
        "lag": p.lag,
        "lost_to_retention": p.lost_to_retention,
        "offset_past_log_end": p.offset_past_log_end,
        "member_id": p.member.member_id if p.member else None,
        "client_id": p.member.client_id if p.member else None,
        "host": p.member.host if p.member else None,
        "stale": p.stale,
        "lag_seconds": p.lag_seconds,
        "lag_seconds_lower_bound": p.lag_seconds_lower_bound,
        "lag_seconds_exact": p.lag_seconds_exact,
        "status": str(p.status) if p.status is not None else None,
        "consumption_rate": p.consumption_rate,
    }


def group_document(g: GroupView) -> dict[str, Any]:
    return {
        "group": g.group_id,
        "state": g.state,
        "protocol_type": g.protocol_type,
        "protocol": g.protocol,
        "group_type": g.group_type,
        "coordinator": g.coordinator,
        "members": [_member(m) for m in g.members] if g.members_known else None,
        "status": str(g.status) if g.status is not None else None,
        "max_lag": g.max_lag,
        "max_lag_seconds": g.max_lag_seconds,
        "total_lag": sum(p.lag for p in g.partitions if p.lag is not None),
        "uncommitted_partitions": g.uncommitted_partitions,
        "stale": g.stale,
        "read_at": g.read_at,
        "topics": {
            topic: {"consumption_rate": r.consumption_rate, "catchup_seconds": r.catchup_seconds}
            for topic, r in g.topic_rates.items()
        },
        "partitions": [partition_document(p) for p in g.partitions],
    }


def _cluster_document(v: ClusterView) -> dict[str, Any]:
    return {
        "cluster": v.cluster,
        "up": v.health.up,
        "partial": v.health.partial,
        "last_poll_at": v.health.last_poll_at,
        "last_success_at": v.health.last_success_at,
        "errors": [
            {
                "kind": str(e.kind),
                "message": e.message,
                "group": e.group,
                "topic": e.topic,
                "broker": e.broker,
            }
            for e in v.health.last_errors
        ],
    }


def groups_document(views: Sequence[ClusterView]) -> dict[str, Any]:
    return {
        "clusters": [
            {**_cluster_document(v), "groups": [group_document(g) for g in v.groups.values()]}
            for v in views
        ]
    }


_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def render_groups(views: Sequence[ClusterView]) -> bytes:
    """json.dumps(groups_document(views)), compact, encoded one group at a time.

    The whole document as Python objects takes several times the memory of
    its text, and one json.dumps of it holds the GIL (and so every scrape)
    for as long as it runs: 0.2 s for 100,000 partitions.
    """
    pieces = [b'{"clusters":[']
    for i, v in enumerate(views):
        pieces.append(b"," if i else b"")
        pieces.append(_encode(_cluster_document(v))[:-1].encode() + b',"groups":[')
        for j, g in enumerate(v.groups.values()):
            pieces.append(b"," if j else b"")
            pieces.append(_encode(group_document(g)).encode())
        pieces.append(b"]}")
    pieces.append(b"]}")
    return b"".join(pieces)
