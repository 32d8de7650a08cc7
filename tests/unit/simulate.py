"""A small simulated cluster: producers at known rates, consumers of known capacity.

Time advances in small steps. Each step producers append to their partitions
and each consumer thread spends its capacity on the partitions it owns that
have data, shared evenly (what is left over by a partition that runs dry goes
to the others). Consumers commit their positions every `commit_interval`; the
exporter polls every `poll_interval`. The truth is known, so what the
exporter measures can be checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lag_exporter.config import InsightConfig
from lag_exporter.history import History
from lag_exporter.model import ClusterView, GroupDescription, Member, TopicPartition
from lag_exporter.status import StatusRules
from lag_exporter.view import Derivation

from .factories import group, member, poll, view_of

T0 = 1_700_000_000.0


@dataclass
class Consumer:
    name: str
    capacity: float  # messages per second this thread can process
    partitions: Sequence[TopicPartition]
    # 0: serves its partitions evenly. N: works through up to N messages of one
    # partition before it turns to the next, as a client handing out one
    # partition's fetched batch at a time does.
    batch: int = 0
    current: int = 0  # index into partitions of the batch in progress
    left: float = 0.0  # messages left of that batch


@dataclass
class Simulation:
    topic: str
    production: Mapping[int, float]  # partition -> messages per second
    consumers: Sequence[Consumer]
    group_id: str = "g"
    poll_interval: float = 5.0
    commit_interval: float = 1.0
    step: float = 0.05
    backlog: Mapping[int, float] = field(default_factory=dict)  # lag at the start
    members_known: bool = True
    config: InsightConfig = field(default_factory=lambda: InsightConfig(min_busy_time=20.0))
    derive: Derivation | None = None  # the last run's, with its history

    def run(self, seconds: float) -> ClusterView:
        partitions = len(self.production)
        end = {p: 1000.0 + self.backlog.get(p, 0.0) for p in self.production}
        position = {p: 1000.0 for p in self.production}
        committed = {p: 1000 for p in self.production}
        derive = Derivation(
            History(size=500, window=600),
            StatusRules(),
            rate_window=seconds,
            insight=self.config,
        )
        self.derive = derive
        members = tuple(
            Member(f"{c.name}-id", c.name, "10.0.0.1", None, tuple(c.partitions), (self.topic,))
            for c in self.consumers
        )
        description = GroupDescription(
            self.group_id, "Stable", "consumer", "range", 1, members, described=self.members_known
        )
        view: ClusterView | None = None
        steps = round(seconds / self.step)
        poll_every = round(self.poll_interval / self.step)
        commit_every = round(self.commit_interval / self.step)
        for i in range(steps + 1):
            t = T0 + i * self.step
            if i % commit_every == 0:
                committed = {p: math.floor(position[p]) for p in position}
            if i % poll_every == 0:
                view = view_of(
                    poll(
                        t,
                        topics={self.topic: partitions},
                        ends={(self.topic, p): (0, math.floor(e)) for p, e in end.items()},
                        groups=[description],
                        committed={
                            self.group_id: {(self.topic, p): c for p, c in committed.items()}
                        },
                    ),
                    view,
                    derive=derive,
                )
            for p, rate in self.production.items():
                end[p] += rate * self.step
            for c in self.consumers:
                _consume(c, end, position, self.step)
        assert view is not None
        return view


def _consume(c: Consumer, end: dict[int, float], position: dict[int, float], dt: float) -> None:
    budget = c.capacity * dt
    if c.batch:
        _consume_in_batches(c, end, position, budget)
        return
    waiting = [p for _, p in c.partitions if end[p] - position[p] > 1e-9]
    while budget > 1e-12 and waiting:
        share = budget / len(waiting)
        for p in list(waiting):
            took = min(share, end[p] - position[p])
            position[p] += took
            budget -= took
            if end[p] - position[p] <= 1e-9:
                waiting.remove(p)


def _consume_in_batches(
    c: Consumer, end: dict[int, float], position: dict[int, float], budget: float
) -> None:
    for _ in range(2 * len(c.partitions)):  # at most a round of switches per step
        if budget <= 1e-12:
            return
        p = c.partitions[c.current][1]
        available = end[p] - position[p]
        if c.left <= 1e-9 or available <= 1e-9:
            c.current = (c.current + 1) % len(c.partitions)
            c.left = float(c.batch)
            continue
        took = min(budget, available, c.left)
        position[p] += took
        c.left -= took
        budget -= took


# --- scenarios shared by tests ---------------------------------------------------


def slow_consumer_view() -> ClusterView:
    return Simulation(
        "orders", {0: 15.0, 1: 15.0}, [Consumer("c1", 10.0, [("orders", 0), ("orders", 1)])]
    ).run(120)


def retry_view() -> ClusterView:
    derive = Derivation(History(), rate_window=60, insight=InsightConfig())
    view = None
    for i in range(3):
        view = view_of(
            poll(
                T0 + 10 * i,
                topics={"one": 1, "pay-retry-1000": 1, "pay.DLT": 1},
                ends={
                    ("one", 0): (0, 10),
                    ("pay-retry-1000", 0): (0, 100 + 20 * i),
                    ("pay.DLT", 0): (3, 13 + 5 * i),
                },
                groups=[group("g", member("c1", ("one", 0)), member("c2"), member("c3"))],
                committed={"g": {("one", 0): 10, ("pay-retry-1000", 0): 90}},
            ),
            view,
            derive=derive,
        )
    assert view is not None
    return view
