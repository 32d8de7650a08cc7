"""False-alarm corpus: real consumers on a real broker, and the status the exporter gives them.

Every case runs at once on one broker, with the exporter polling every 5 s
and its default status rules (`allowed_lag` 2, `window` 10 min, `stop_after`
5 min). The status of each case's group (the worst status of its
partitions) is sampled from /api/v1/groups at every poll. After 7/12 of the
run the exporter is stopped (SIGTERM) and started again on the same
`state_dir`: no status may change.

Healthy cases must be OK in every sample:
- console: Kafka's own ConsoleConsumer (from the broker jars), auto-commit
  every 5 s, 20 msg/s produced;
- batch: a kafka-python consumer committing after every batch;
- transactional: a read_committed consumer of a transactional producer that
  aborts one transaction in four;
- idle-burst: a topic idle for 6 minutes, then a burst of 200 messages;
- slow-commits: a consumer that keeps up but commits only every 60 s;
- rebalance: two members, a third joins, then the first leaves;
- recreated: the topic is deleted and re-created under a live consumer;
- past-end: an offset committed past the log end (50 on a topic of 10
  messages): OK, and `offset_past_log_end` 40 in the last poll.

Unhealthy cases must reach their status within the bound the README states,
counted from the incident:
- stopped (STOP): the consumer closes; production goes on;
- slow (WARN): the consumer handles 10 msg/s of the 20 produced, from the start;
- stuck (STALL): a live member retries one message for ever, never committing;
- rewound (REWIND): the consumer commits an offset 200 messages back.

    python -m benchmarks.status_corpus                  # 12 min, Kafka 4.4.0 and 3.9.1 at once
    python -m benchmarks.status_corpus --versions 4.4.0 --minutes 4 --output -
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition

from localkafka import KafkaBroker
from localkafka.broker import start_java_process, tool_class

from .harness import ROOT, free_port, wait_for

DEFAULT_VERSIONS = ("4.4.0", "3.9.1")
STATUSES = ("OK", "WARN", "STOP", "STALL", "REWIND")
# Worst first: the status a group's sample is counted under.
_SEVERITY = {"REWIND": 5, "STALL": 4, "STOP": 3, "WARN": 2, "OK": 1}

# The exporter's default status rules, which the bounds below are made of.
POLL = 5.0  # the exporter's poll interval in the corpus
STOP_AFTER = 300.0
WINDOW = 600.0
ALLOWED_LAG = 2


def stop_bound(rate: float) -> float:
    """The README's STOP/STALL bound, counted from the moment the consumer stops committing.

    The README counts from when the lag goes above `allowed_lag` without a
    commit: at `rate` messages per second that is up to (allowed_lag + 1) /
    rate seconds after the last commit. Then two polls: one sees the lag and
    starts the clock, one sees the threshold passed.
    """
    return (ALLOWED_LAG + 1) / rate + STOP_AFTER + 2 * POLL


@dataclass
class Case:
    name: str
    expected: str  # "OK" for a healthy case
    topic: str
    group: str
    partitions: int = 1
    rate: float = 20.0  # messages per second produced (0: the case produces itself)
    description: str = ""
    incident: float | None = None  # wall clock when the unhealthy behaviour began
    bound: float | None = None  # seconds from the incident to the expected status, at most
    # The committed offset's excess over the log end that the last poll must show.
    past_log_end: int | None = None
    # (time of the exporter's poll, worst partition status, other values), one per poll
    samples: list[tuple[float, str | None, dict[str, Any]]] = field(default_factory=list)


# --------------------------------------------------------------------- clients


class Clients:
    """The consumers and producers of one run, each on its own thread."""

    def __init__(self, bootstrap: str, version: str, workdir: Path, start: float) -> None:
        self.bootstrap = bootstrap
        self.version = version
        self.workdir = workdir
        self.start = start
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.processes: list[subprocess.Popen[str]] = []
        self.errors: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except Exception:  # reported in the output: a broken client voids its case
                self.errors.append(f"{name}: {traceback.format_exc(limit=3)}")

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def sleep_until(self, at: float) -> bool:
        """Wait until `at` seconds into the run; False when the run is over."""
        return not self.stop.wait(max(0.0, at - self.elapsed()))

    def consumer(self, case: Case, **config: Any) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=case.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{case.name}-{uuid.uuid4().hex[:4]}",
            **config,
        )
        consumer.subscribe([case.topic])
        return consumer

    def paced(self, case: Case, producer: KafkaProducer, until: float | None = None) -> None:
        """Produce `case.rate` messages per second, round robin over the partitions."""
        sent = 0
        begun = time.monotonic()
        while not self.stop.is_set() and (until is None or self.elapsed() < until):
            due = int((time.monotonic() - begun) * case.rate)
            while sent < due:
                producer.send(case.topic, b"m%d" % sent, partition=sent % case.partitions)
                sent += 1
            self.stop.wait(0.05)

    def batch_consumer(
        self,
        case: Case,
        *,
        commit_every: float = 0.0,
        per_message: float = 0.0,
        close_at: float | None = None,
        stuck_at: float | None = None,
        rewind_at: float | None = None,
        join_at: float = 0.0,
        **config: Any,
    ) -> None:
        """A kafka-python consumer: commits after each batch (or every `commit_every` s).

        `per_message` seconds of work per message; at `close_at` it leaves the
        group; from `stuck_at` it retries the same message for ever (seeks back
        to it at every poll, so it stays a live member) and never commits; at
        `rewind_at` it commits an offset 200 messages back, once.
        """
        if not self.sleep_until(join_at):
            return
        consumer = self.consumer(case, **config)
        last_commit = time.monotonic()
        rewound = False
        stuck: dict[TopicPartition, int] | None = None
        try:
            while not self.stop.is_set():
                if close_at is not None and self.elapsed() >= close_at:
                    case.incident = case.incident or time.time()
                    return
                batch = consumer.poll(timeout_ms=500, max_records=20)
                if stuck_at is not None and self.elapsed() >= stuck_at:
                    if stuck is None:
                        case.incident = time.time()
                        stuck = {tp: consumer.position(tp) for tp in consumer.assignment()}
                    for tp, position in stuck.items():
                        consumer.seek(tp, position)
                    continue
                for records in batch.values():
                    if per_message:
                        for _ in records:
                            if self.stop.wait(per_message):
                                return
                if rewind_at is not None and not rewound and self.elapsed() >= rewind_at:
                    rewound = True
                    back = {
                        tp: OffsetAndMetadata(max(0, consumer.position(tp) - 200), "", -1)
                        for tp in consumer.assignment()
                    }
                    consumer.commit(back)
                    case.incident = time.time()
                    for tp, offset in back.items():
                        consumer.seek(tp, offset.offset)
                    # As after a reset by an operator: the consumer comes back a
                    # little later and reprocesses from there.
                    if self.stop.wait(3 * POLL):
                        return
                    continue
                if batch and time.monotonic() - last_commit >= commit_every:
                    consumer.commit()
                    last_commit = time.monotonic()
        finally:
            consumer.close(autocommit=False)

    def console_consumer(self, case: Case) -> None:
        """Kafka's ConsoleConsumer with its defaults: auto-commit every 5 s."""
        log = (self.workdir / f"{case.name}.log").open("w")
        self.processes.append(
            start_java_process(
                tool_class("console-consumer", self.version),
                [
                    "--bootstrap-server",
                    self.bootstrap,
                    "--topic",
                    case.topic,
                    "--group",
                    case.group,
                    "--consumer-property",
                    "auto.commit.interval.ms=5000",
                ],
                version=self.version,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        )

    def transactional_producer(self, case: Case) -> None:
        """Transactions of 10 messages at `case.rate`; one in four aborted."""
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, transactional_id=f"{case.name}-{uuid.uuid4().hex}"
        )
        producer.init_transactions()
        n = 0
        try:
            while not self.stop.is_set():
                producer.begin_transaction()
                for i in range(10):
                    producer.send(case.topic, b"t%d-%d" % (n, i))
                if n % 4 == 3:
                    producer.abort_transaction()
                else:
                    producer.commit_transaction()
                n += 1
                self.stop.wait(10 / case.rate)
        finally:
            producer.close(5)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(20)
        for proc in self.processes:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            if proc.poll() is None:
                proc.kill()


# --------------------------------------------------------------------- the run


def make_cases(run_id: str, minutes: float) -> list[Case]:
    def case(name: str, expected: str, description: str, **kw: Any) -> Case:
        return Case(
            name,
            expected,
            f"corpus-{run_id}-{name}",
            f"corpus-{run_id}-{name}-g",
            description=description,
            **kw,
        )

    return [
        case("console", "OK", "ConsoleConsumer, auto-commit every 5 s, 20 msg/s"),
        case("batch", "OK", "kafka-python, commit per batch, 20 msg/s"),
        case(
            "transactional",
            "OK",
            "read_committed, transactions of 10 at 20 msg/s, 1 in 4 aborted",
            rate=0,
        ),
        case("idle-burst", "OK", "idle 6 min, then a burst of 200", rate=0),
        case("slow-commits", "OK", "keeps up, commits every 60 s, 20 msg/s"),
        case(
            "rebalance",
            "OK",
            f"4 partitions, 2 members; a 3rd joins at {minutes * 0.25:.0f} min, "
            f"the 1st leaves at {minutes * 0.6:.1f} min",
            partitions=4,
        ),
        case(
            "recreated",
            "OK",
            f"topic deleted and re-created at {minutes * 0.35:.1f} min, 10 msg/s",
            rate=0,
        ),
        case(
            "past-end",
            "OK",
            "offset 50 committed by hand on a topic of 10 messages, no consumer",
            rate=0,
            past_log_end=40,
        ),
        case("stopped", "STOP", "closes after 60 s, 5 msg/s", rate=5),
        case("slow", "WARN", "handles 10 msg/s of 20 from the start"),
        case("stuck", "STALL", "retries one message from 60 s on, 5 msg/s", rate=5),
        case("rewound", "REWIND", "commits 200 back at 90 s, 5 msg/s", rate=5),
    ]


def start_cases(
    clients: Clients, cases: list[Case], admin: KafkaAdminClient, minutes: float
) -> None:
    admin.create_topics([NewTopic(c.topic, c.partitions, 1) for c in cases])
    by_name = {c.name: c for c in cases}
    producer = KafkaProducer(bootstrap_servers=clients.bootstrap, linger_ms=5)

    for c in cases:
        if c.rate > 0:
            clients.spawn(f"produce-{c.name}", functools.partial(clients.paced, c, producer))

    clients.console_consumer(by_name["console"])
    clients.spawn("batch", lambda: clients.batch_consumer(by_name["batch"]))

    txn = by_name["transactional"]
    txn.rate = 20.0
    clients.spawn("txn-producer", lambda: clients.transactional_producer(txn))
    clients.spawn(
        "txn-consumer", lambda: clients.batch_consumer(txn, isolation_level="read_committed")
    )

    idle = by_name["idle-burst"]

    def idle_then_burst() -> None:
        for n in range(30):
            producer.send(idle.topic, b"i%d" % n)
        if clients.sleep_until(min(360.0, minutes * 60 * 0.55)):
            for n in range(200):
                producer.send(idle.topic, b"b%d" % n)

    clients.spawn("idle-producer", idle_then_burst)
    clients.spawn("idle-consumer", lambda: clients.batch_consumer(idle))

    slow_commits = by_name["slow-commits"]
    clients.spawn("slow-commits", lambda: clients.batch_consumer(slow_commits, commit_every=60.0))

    rebalance = by_name["rebalance"]
    clients.spawn(
        "rebalance-1",
        lambda: clients.batch_consumer(rebalance, close_at=minutes * 60 * 0.6),
    )
    clients.spawn("rebalance-2", lambda: clients.batch_consumer(rebalance))
    clients.spawn(
        "rebalance-3", lambda: clients.batch_consumer(rebalance, join_at=minutes * 60 * 0.25)
    )

    recreated = by_name["recreated"]
    recreated.rate = 10.0

    def produce_and_recreate() -> None:
        at = minutes * 60 * 0.35
        clients.paced(recreated, producer, until=at)
        producer.flush(30)
        admin.delete_topics([recreated.topic])
        wait_for(lambda: recreated.topic not in admin.list_topics(), 60, "topic deleted")
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.create_topics([NewTopic(recreated.topic, 1, 1)])
                break
            except Exception:  # TopicAlreadyExists while the deletion completes
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        recreated.incident = time.time()
        clients.paced(recreated, producer)

    clients.spawn("recreate", produce_and_recreate)
    clients.spawn("recreated-consumer", lambda: clients.batch_consumer(recreated))

    past_end = by_name["past-end"]

    def commit_past_the_end() -> None:
        for n in range(10):
            producer.send(past_end.topic, b"p%d" % n)
        producer.flush(30)
        consumer = KafkaConsumer(
            bootstrap_servers=clients.bootstrap,
            group_id=past_end.group,
            enable_auto_commit=False,
        )
        try:
            consumer.commit({TopicPartition(past_end.topic, 0): OffsetAndMetadata(50, "", -1)})
        finally:
            consumer.close(autocommit=False)

    clients.spawn("past-end", commit_past_the_end)

    stopped = by_name["stopped"]
    stopped.bound = stop_bound(stopped.rate)
    clients.spawn("stopped", lambda: clients.batch_consumer(stopped, close_at=60.0))

    slow = by_name["slow"]
    slow.incident = time.time()
    slow.bound = WINDOW + 2 * POLL
    clients.spawn("slow", lambda: clients.batch_consumer(slow, per_message=0.1))

    stuck = by_name["stuck"]
    stuck.bound = stop_bound(stuck.rate)
    clients.spawn("stuck", lambda: clients.batch_consumer(stuck, stuck_at=60.0))

    rewound = by_name["rewound"]
    rewound.bound = 2 * POLL
    clients.spawn("rewound", lambda: clients.batch_consumer(rewound, rewind_at=90.0))


class Exporter:
    """`python -m lag_exporter run` from this checkout, restartable on the same state_dir."""

    def __init__(self, bootstrap: str, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "config.yml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "listen_address": f"127.0.0.1:{self.port}",
                    "poll_interval": f"{POLL:g}s",
                    "state_dir": str(workdir / "state"),
                    "clusters": [{"name": "corpus", "kafka": {"bootstrap.servers": bootstrap}}],
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"exporter-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lag_exporter", "run", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(lambda: self.get("/readyz") is not None, 120, "exporter ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return bytes(r.read()) if r.status == 200 else None
        except OSError:
            return None


def worst(group: dict[str, Any]) -> str | None:
    statuses = [p["status"] for p in group["partitions"] if p.get("status")]
    return max(statuses, key=lambda s: _SEVERITY.get(s, 0)) if statuses else None


def last_status(c: Case) -> str | None:
    return c.samples[-1][1] if c.samples else None


def last_lag_seconds(c: Case) -> float | None:
    value = c.samples[-1][2]["max_lag_seconds"] if c.samples else None
    return float(value) if value is not None else None


def sample(exporter: Exporter, cases: list[Case], last_poll: float | None) -> float | None:
    """One observation per case of a poll not seen yet; the time of the poll shown."""
    body = exporter.get("/api/v1/groups")
    if body is None:
        return None
    doc = json.loads(body)
    clusters = doc.get("clusters") or []
    if not clusters or not clusters[0].get("last_poll_at"):
        return None
    poll_at = float(clusters[0]["last_poll_at"])
    if poll_at == last_poll:
        return poll_at
    groups = {g["group"]: g for g in clusters[0]["groups"]}
    now = poll_at
    for c in cases:
        g = groups.get(c.group)
        if g is None:
            continue
        rates = g.get("topics", {}).get(c.topic, {})
        c.samples.append(
            (
                now,
                worst(g),
                {
                    "group_status": g.get("status"),
                    "max_lag": g.get("max_lag"),
                    "max_lag_seconds": g.get("max_lag_seconds"),
                    "catchup_seconds": rates.get("catchup_seconds"),
                    "past_log_end": max(
                        (p.get("offset_past_log_end") or 0 for p in g["partitions"]), default=0
                    ),
                },
            )
        )
    return poll_at


def run_version(version: str, minutes: float) -> dict[str, Any]:
    """All cases at once on one broker of `version`; the result as a JSON-able document."""
    run_id = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix=f"status-corpus-{version}-"))
    cases = make_cases(run_id, minutes)
    restart: dict[str, Any] = {}
    with KafkaBroker(version) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        exporter = Exporter(broker.bootstrap, workdir)
        exporter.start()
        start = time.monotonic()
        start_wall = time.time()
        clients = Clients(broker.bootstrap, version, workdir, start)
        try:
            start_cases(clients, cases, admin, minutes)
            last_poll: float | None = None
            restarted = False
            end = start + minutes * 60
            while time.monotonic() < end:
                # Restarted once the stopped and stuck cases are STOP and STALL,
                # so the restart shows that their stop clocks survive it.
                if not restarted and time.monotonic() - start >= minutes * 35:
                    restarted = True
                    down = time.monotonic()
                    restart["before"] = {c.name: last_status(c) for c in cases}
                    restart["lag_seconds_before"] = {c.name: last_lag_seconds(c) for c in cases}
                    exporter.stop()
                    exporter.start()
                    restart.update(at=down - start, down_s=time.monotonic() - down)
                    last_poll = None
                poll_at = sample(exporter, cases, last_poll)
                if poll_at is not None and poll_at != last_poll:
                    if restarted and "first_after" not in restart:
                        restart["first_after"] = {c.name: last_status(c) for c in cases}
                        restart["lag_seconds_after"] = {c.name: last_lag_seconds(c) for c in cases}
                    last_poll = poll_at
                time.sleep(1.0)
        finally:
            clients.close()
            exporter.stop()
            admin.close()
    return {
        "version": version,
        "minutes": minutes,
        "poll_interval": POLL,
        "restart": restart,
        "errors": clients.errors,
        "workdir": str(workdir),
        "cases": [summarise(c, start_wall) for c in cases],
    }


def summarise(c: Case, start: float) -> dict[str, Any]:
    counts = {s: 0 for s in STATUSES}
    none = 0
    for _, status, _ in c.samples:
        if status is None:
            none += 1
        else:
            counts[status] = counts.get(status, 0) + 1
    reached: float | None = None
    since = c.incident if c.expected != "OK" else start
    if since is not None:
        for t, status, _ in c.samples:
            if t >= since and status == c.expected:
                reached = t - since
                break
    lag_seconds = [
        x["max_lag_seconds"] for _, _, x in c.samples if x["max_lag_seconds"] is not None
    ]
    catchup = [x["catchup_seconds"] for _, _, x in c.samples if x["catchup_seconds"] is not None]
    non_ok = sum(v for k, v in counts.items() if k != "OK")
    last_past_end = c.samples[-1][2]["past_log_end"] if c.samples else None
    if c.expected == "OK":
        passed = non_ok == 0 and counts["OK"] > 0
        if c.past_log_end is not None:
            passed = passed and last_past_end == c.past_log_end
    else:
        passed = reached is not None and c.bound is not None and reached <= c.bound
    return {
        "name": c.name,
        "expected": c.expected,
        "description": c.description,
        "samples": len(c.samples),
        "counts": counts,
        "no_status": none,
        "reached_s": reached,
        "bound_s": c.bound,
        "incident_s": (c.incident - start) if c.incident is not None else None,
        "max_lag_seconds": max(lag_seconds) if lag_seconds else None,
        "max_catchup_seconds": max(catchup) if catchup else None,
        "max_past_log_end": max((x["past_log_end"] for _, _, x in c.samples), default=0),
        "passed": passed,
    }


# ------------------------------------------------------------------ the report


def table(result: dict[str, Any]) -> str:
    lines = [
        f"### Kafka {result['version']}: {result['minutes']:g} min, poll every "
        f"{result['poll_interval']:g} s",
        "",
        "| case | expected | samples | OK | WARN | STOP | STALL | REWIND | no status "
        "| incident at (s) | to expected (s) | bound (s) | max lag s | max catch-up s "
        "| max past log end | result |",
        "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: "
        "| --: | --: | --- |",
    ]

    def tenth(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"

    for c in result["cases"]:
        k = c["counts"]
        lines.append(
            f"| {c['name']} | {c['expected']} | {c['samples']} | {k['OK']} | {k['WARN']} "
            f"| {k['STOP']} | {k['STALL']} | {k['REWIND']} | {c['no_status']} "
            f"| {num(c['incident_s'])} | {tenth(c['reached_s'])} | {tenth(c['bound_s'])} "
            f"| {num(c['max_lag_seconds'])} | {num(c['max_catchup_seconds'])} "
            f"| {c['max_past_log_end']} | {'pass' if c['passed'] else 'FAIL'} |"
        )
    r = result["restart"]
    if r:
        after = r.get("first_after", {})
        changed = [name for name, status in r["before"].items() if after.get(name) != status]

        def seconds(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        lines += [
            "",
            f"Exporter stopped (SIGTERM) at {r['at']:.0f} s, serving again {r['down_s']:.1f} s "
            "later on the same `state_dir`. "
            + ("No status changed." if not changed else "Changed: " + ", ".join(changed) + "."),
            "",
            "| case | status before | status after | max lag s before | max lag s after |",
            "| --- | --- | --- | --: | --: |",
            *(
                f"| {n} | {r['before'][n]} | {after.get(n)} "
                f"| {seconds(r.get('lag_seconds_before', {}).get(n))} "
                f"| {seconds(r.get('lag_seconds_after', {}).get(n))} |"
                for n in r["before"]
            ),
        ]
    if result["errors"]:
        lines += ["", "Client errors:", "", *(f"    {e}" for e in result["errors"])]
    return "\n".join(lines)


def report(results: list[dict[str, Any]], command: str) -> str:
    cases = results[0]["cases"] if results else []
    head = [
        "# Status corpus",
        "",
        "Output of `" + command + "` (benchmarks/status_corpus.py): real consumers on a "
        "real single-node broker, all cases at once, the exporter with its default status "
        "rules polling every 5 s and restarted on its `state_dir` after 7/12 of the run. "
        "A sample is one poll; its status is the worst of the group's partitions. Healthy cases "
        "(expected OK) pass with no sample other than OK; the others pass when their "
        "status is reached within the bound, counted from the incident to the start of "
        "the poll that shows it. The bounds are the README's, plus the poll at which the "
        "incident is first visible: STOP and STALL `stop_after` + 2 polls + the time "
        "the production takes to put the lag above `allowed_lag` (the README counts from "
        "there; 0.6 s at 5 msg/s), WARN `window` "
        "+ 2 polls, REWIND 2 polls. Times are seconds from the start of the clients.",
        "",
        "| case | what it is |",
        "| --- | --- |",
        *(f"| {c['name']} | {c['description']} |" for c in cases),
        "",
    ]
    return "\n".join(head + [table(r) + "\n" for r in results])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--versions", default=",".join(DEFAULT_VERSIONS))
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "STATUS.md"))
    parser.add_argument("--json", help="write the raw result here (one version only)")
    args = parser.parse_args(argv)
    versions = [v for v in args.versions.split(",") if v]
    if args.json:
        result = run_version(versions[0], args.minutes)
        Path(args.json).write_text(json.dumps(result))
        return 0
    # One process per version, so the clients of one run cannot slow the other's.
    outputs = []
    procs = []
    for v in versions:
        out = Path(tempfile.mkstemp(prefix=f"status-corpus-{v}-", suffix=".json")[1])
        cmd = [sys.executable, "-m", "benchmarks.status_corpus", "--versions", v]
        cmd += ["--minutes", str(args.minutes), "--json", str(out)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT))
        outputs.append(out)
    codes = [p.wait() for p in procs]
    results = [json.loads(o.read_text()) for o, rc in zip(outputs, codes, strict=True) if rc == 0]
    command = "python -m benchmarks.status_corpus" + (
        f" --minutes {args.minutes:g}" if args.minutes != 12.0 else ""
    )
    text = report(results, command)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text)
    failed = any(not c["passed"] for r in results for c in r["cases"]) or any(codes)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
