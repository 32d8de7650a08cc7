"""Alert state saved across restarts, as JSON, replaced atomically.

What is saved is what the engine needs to keep its promises after a restart:
which alerts are pending (and since when, so `for` keeps counting), which
fire (and since when one is kept firing under `keep_firing_for`), when each
notifier was last told, and each notifier's outbox: the notifications its
receiver has not accepted yet, resumed at the next start. The file is written to a
temporary name in the same directory, flushed to disk and renamed over the
old one, so a crash leaves either the old state or the new, never half.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Alert, AlertKey, Notification, Phase, sorted_alerts
from .outbox import Entry

VERSION = 2
READABLE = (1, 2)  # version 1 had no outboxes


@dataclass(frozen=True, slots=True)
class Saved:
    """What a state file holds."""

    alerts: dict[AlertKey, Alert] = field(default_factory=dict)
    # notifier -> (outbox entries in queue order, alert -> when its firing was delivered)
    outboxes: dict[str, tuple[list[Entry], dict[AlertKey, float]]] = field(default_factory=dict)


class StateFileError(Exception):
    """The state file cannot be read or written; the message says which and why."""


def _encode(alert: Alert) -> dict[str, Any]:
    return {
        "rule": alert.rule,
        "identity": dict(alert.identity),
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "phase": str(alert.phase),
        "active_since": alert.active_since,
        "fired_at": alert.fired_at,
        "value": alert.value,
        "evaluated_at": alert.evaluated_at,
        "metric": alert.metric,
        "op": alert.op,
        "threshold": alert.threshold,
        "sent": dict(alert.sent),
        "cleared_at": alert.cleared_at,
    }


def _decode(doc: Mapping[str, Any]) -> Alert:
    return Alert(
        rule=str(doc["rule"]),
        # JSON objects keep their order, and identity order is part of the key.
        identity=tuple((str(k), str(v)) for k, v in doc["identity"].items()),
        labels=tuple(sorted((str(k), str(v)) for k, v in doc["labels"].items())),
        annotations=tuple(sorted((str(k), str(v)) for k, v in doc["annotations"].items())),
        phase=Phase(doc["phase"]),
        active_since=float(doc["active_since"]),
        fired_at=None if doc["fired_at"] is None else float(doc["fired_at"]),
        value=doc["value"],
        evaluated_at=float(doc["evaluated_at"]),
        metric=str(doc["metric"]),
        op=str(doc["op"]),
        threshold=doc["threshold"],
        sent={str(k): float(v) for k, v in doc["sent"].items()},
        cleared_at=None if doc.get("cleared_at") is None else float(doc["cleared_at"]),
    )


def _encode_entry(e: Entry) -> dict[str, Any]:
    n = e.notification
    return {
        "status": n.status,
        "repeat": n.repeat,
        "at": n.at,
        "ends_at": n.ends_at,
        "alert": _encode(n.alert),
        "queued_at": e.queued_at,
        "attempts": e.attempts,
        "last_error": e.last_error,
        "maybe_received": e.maybe_received,
    }


def _decode_entry(notifier: str, doc: Mapping[str, Any]) -> Entry:
    n = Notification(
        notifier=notifier,
        status=str(doc["status"]),
        repeat=bool(doc["repeat"]),
        alert=_decode(doc["alert"]),
        at=float(doc["at"]),
        ends_at=None if doc["ends_at"] is None else float(doc["ends_at"]),
    )
    queued_at = float(doc["queued_at"])
    return Entry(
        0,
        n,
        queued_at,
        queued_at,
        int(doc["attempts"]),
        doc.get("last_error"),
        maybe_received=bool(doc.get("maybe_received", False)),
    )


def _key_text(key: AlertKey) -> str:
    return json.dumps([key[0], [list(pair) for pair in key[1]]], separators=(",", ":"))


def _key_of(text: str) -> AlertKey:
    rule, identity = json.loads(text)
    return (str(rule), tuple((str(k), str(v)) for k, v in identity))


def dumps(
    state: Mapping[AlertKey, Alert],
    now: float,
    outboxes: Mapping[str, tuple[list[Entry], Mapping[AlertKey, float]]] | None = None,
) -> str:
    return json.dumps(
        {
            "version": VERSION,
            "saved_at": now,
            "alerts": [_encode(a) for a in sorted_alerts(state)],
            "outboxes": {
                name: {
                    "entries": [_encode_entry(e) for e in entries],
                    "delivered": {_key_text(k): at for k, at in sorted(told.items())},
                }
                for name, (entries, told) in sorted((outboxes or {}).items())
            },
        },
        indent=1,
    )


def loads(text: str) -> Saved:
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") not in READABLE:
        raise ValueError(f"not a version {VERSION} alert state document")
    alerts = [_decode(a) for a in doc["alerts"]]
    outboxes = {
        str(name): (
            [_decode_entry(str(name), e) for e in box["entries"]],
            {_key_of(k): float(at) for k, at in box["delivered"].items()},
        )
        for name, box in doc.get("outboxes", {}).items()
    }
    return Saved({a.key: a for a in alerts}, outboxes)


def load(path: str | Path) -> Saved:
    """The saved state; empty when the file does not exist yet."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Saved()
    except OSError as exc:
        raise StateFileError(f"cannot read alert state file {p}: {exc.strerror}") from None
    try:
        return loads(text)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"alert state file {p} is not valid: {exc}") from None


def save(
    path: str | Path,
    state: Mapping[AlertKey, Alert],
    now: float,
    outboxes: Mapping[str, tuple[list[Entry], Mapping[AlertKey, float]]] | None = None,
) -> None:
    """Write atomically: temporary file in the same directory, fsync, rename."""
    p = Path(path)
    text = dumps(state, now, outboxes)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    except OSError as exc:
        raise StateFileError(f"cannot write alert state file {p}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateFileError(f"cannot write alert state file {p}: {exc.strerror}") from None
