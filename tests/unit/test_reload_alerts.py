"""A reload that removes a cluster resolves that cluster's alerts."""

from __future__ import annotations

from pathlib import Path

from .alert_factories import lag_poll
from .factories import view_of
from .test_alert_service import RULE, T0, Transport, service


def test_alerts_of_a_removed_cluster_are_resolved(tmp_path: Path) -> None:
    transport = Transport()
    a = service(tmp_path, RULE, transport=transport)
    a.start()
    try:
        firing = a.evaluate(view_of(lag_poll(T0, 500)), T0)
        assert [x.rule for x in firing.alerts] == ["behind"]
        kept = a.retain_clusters(["c1", "c2"])
        assert [x.rule for x in kept.alerts] == ["behind"]  # c1 still polled
        after = a.retain_clusters(["c2"])
        bodies = transport.wait(2)
    finally:
        a.stop(1)
    assert after.alerts == ()
    assert [b["state"] for b in bodies] == ["firing", "resolved"]
