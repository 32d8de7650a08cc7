"""The connection to one cluster: kafka-python's admin client, (re)created on demand.

kafka-python bootstraps eagerly in the constructor and raises when no broker
answers; a cluster that is down at start or goes away later must not stop the
exporter, so the client is created lazily and thrown away after the cluster
stops answering, and the next poll tries again.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka.admin import KafkaAdminClient

from .. import __version__
from ..config import ClusterConfig

log = logging.getLogger(__name__)


class KafkaConnection:
    def __init__(self, cluster: ClusterConfig) -> None:
        self.cluster = cluster
        self._admin: Any = None

    @property
    def manager(self) -> Any:
        """kafka-python's connection manager (sends requests, runs the I/O loop)."""
        if self._admin is None:
            raise RuntimeError("not connected")
        return self._admin._manager

    def ensure_connected(self, timeout: float) -> None:
        if self._admin is not None:
            return
        kwargs = {
            "client_id": f"lag-exporter-{__version__}",
            "request_timeout_ms": int(timeout * 1000),
            "bootstrap_timeout_ms": int(timeout * 1000),
            # Reconnect quickly after a broker restart, but do not hammer a
            # broker that stays down.
            "reconnect_backoff_ms": 250,
            "reconnect_backoff_max_ms": 10_000,
            **self.cluster.client_kwargs(),
        }
        self._admin = KafkaAdminClient(**kwargs)
        log.info("cluster %s: connected to %s", self.cluster.name, self.cluster.bootstrap_servers)

    def run(self, coroutine_fn: Any, *args: Any) -> Any:
        """Run a coroutine on the client's I/O thread and wait for its result."""
        return self.manager.run(coroutine_fn, *args)

    def learn_brokers(self, metadata: Any) -> None:
        """Tell the client about brokers from our own Metadata response, so it
        can connect to a broker that joined since its last refresh."""
        try:
            self.manager.cluster.update_metadata(metadata)
        except Exception:  # only an optimisation; the client refreshes on its own too
            log.debug("cannot update client metadata", exc_info=True)

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:
                log.debug("error closing admin client", exc_info=True)
