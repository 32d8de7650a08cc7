"""Alert state saved across restarts, as JSON, replaced atomically.

What is saved is what the engine needs to keep its promises after a restart:
which alerts are pending (and since when, so `for` keeps counting), which
fire, and when each notifier was last told. The file is written to a
temporary name in the same directory, flushed to disk and renamed over the
old one, so a crash leaves either the old state or the new, never half.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .engine import Alert, AlertKey, Phase, sorted_alerts

VERSION = 1


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
    )


def dumps(state: Mapping[AlertKey, Alert], now: float) -> str:
    return json.dumps(
        {"version": VERSION, "saved_at": now, "alerts": [_encode(a) for a in sorted_alerts(state)]},
        indent=1,
    )


def loads(text: str) -> dict[AlertKey, Alert]:
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} alert state document")
    alerts = [_decode(a) for a in doc["alerts"]]
    return {a.key: a for a in alerts}


def load(path: str | Path) -> dict[AlertKey, Alert]:
    """The saved state; empty when the file does not exist yet."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateFileError(f"cannot read alert state file {p}: {exc.strerror}") from None
    try:
        return loads(text)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"alert state file {p} is not valid: {exc}") from None


def save(path: str | Path, state: Mapping[AlertKey, Alert], now: float) -> None:
    """Write atomically: temporary file in the same directory, fsync, rename."""
    p = Path(path)
    text = dumps(state, now)
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
