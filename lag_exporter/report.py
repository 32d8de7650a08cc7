"""Cluster views -> the `check` command's table, as kafka-consumer-groups prints it. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from .model import ClusterView

COLUMNS = (
    "CLUSTER",
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def rows(views: Sequence[ClusterView]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for view in views:
        for group in view.groups.values():
            for p in group.partitions:
                m = p.member
                out.append(
                    (
                        view.cluster,
                        group.group_id,
                        p.topic,
                        str(p.partition),
                        _cell(p.committed),
                        _cell(p.log_end),
                        _cell(p.lag),
                        _cell(m.member_id if m else None),
                        _cell(m.host if m else None),
                        _cell(m.client_id if m else None),
                    )
                )
    return out


def table(views: Sequence[ClusterView]) -> str:
    body = rows(views)
    widths = [len(c) for c in COLUMNS]
    for row in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        " ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (COLUMNS, *body)
    ]
    return "\n".join(lines) + "\n"


def max_lag(views: Sequence[ClusterView]) -> int:
    return max(
        (
            p.lag
            for view in views
            for group in view.groups.values()
            for p in group.partitions
            if p.lag is not None
        ),
        default=0,
    )
