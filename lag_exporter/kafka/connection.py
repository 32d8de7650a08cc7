"""The connection to one cluster: kafka-python's admin client, (re)created on demand.

kafka-python bootstraps eagerly in the constructor and raises when no broker
answers; a cluster that is down at start or goes away later must not stop the
exporter, so the client is created lazily and thrown away after the cluster
stops answering, and the next poll tries again.

When the client cannot bootstrap, kafka-python only says "Unable to
bootstrap"; the reason (a rejected password, a certificate that does not
verify) is kept here from the failed connection, so that the log and the
error metrics can tell the user what to fix. A half-built client is taken
down again, so failed attempts leave no I/O thread or socket behind.
"""

from __future__ import annotations

import gc
import logging
import ssl
from typing import Any

import kafka.errors as Errors
from kafka.admin import KafkaAdminClient
from kafka.net.compat import KafkaNetClient

from .. import __version__
from ..config import ClusterConfig

log = logging.getLogger(__name__)


class BootstrapError(Exception):
    """No bootstrap server could be used; `cause` is the last connection failure, if known."""

    def __init__(self, message: str, cause: BaseException | None) -> None:
        super().__init__(message)
        self.cause = cause


class KafkaConnection:
    def __init__(self, cluster: ClusterConfig) -> None:
        self.cluster = cluster
        self._admin: Any = None
        # The last failure of a connection attempt (TLS handshake, SASL), as
        # kafka-python reports it only to its own log.
        self.last_failure: BaseException | None = None

    def _record_failure(self, exc: BaseException) -> None:
        # Within one bootstrap kafka-python tries again and again; the attempt
        # cut short by the deadline must not hide a rejected password.
        if self.last_failure is None or not _decisive(self.last_failure) or _decisive(exc):
            self.last_failure = exc

    def _client_factory(self, **configs: Any) -> Any:
        """kafka-python's network client, with connection failures recorded."""
        client = KafkaNetClient(**configs)
        manager = client._manager
        get_connection = manager.get_connection

        def recording_get_connection(node_id: Any, *args: Any, **kwargs: Any) -> Any:
            conn = get_connection(node_id, *args, **kwargs)
            conn.init_future.add_errback(self._record_failure)
            return conn

        manager.get_connection = recording_get_connection
        return client

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
            "kafka_client": self._client_factory,
        }
        self.last_failure = None
        admin = KafkaAdminClient.__new__(KafkaAdminClient)
        try:
            admin.__init__(**kwargs)
        except Exception as exc:
            _dispose(admin)
            _collect_garbage()
            cause = self.last_failure
            reason = f": {_describe(cause)}" if cause is not None else ""
            raise BootstrapError(
                f"cannot bootstrap from {self.cluster.bootstrap_servers}{reason}", cause
            ) from exc
        self._admin = admin
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

    def forget_auth_failures(self) -> None:
        """Let the client try again brokers that rejected its credentials or certificate."""
        if self._admin is None:
            return
        failures = getattr(self._admin._manager, "_auth_failures", None)
        if isinstance(failures, dict):
            failures.clear()

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:
                log.debug("error closing admin client", exc_info=True)
            _collect_garbage()


def _decisive(exc: BaseException) -> bool:
    """A failure that retrying will not cure: credentials or certificates."""
    if isinstance(exc, Errors.SaslAuthenticationFailedError | Errors.AuthorizationError):
        return True
    return isinstance(exc, ssl.SSLError) or "[SSL" in str(exc)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    if not text or text == name:
        return name
    # kafka-python's errors already start with their name.
    return text if text.startswith(name) else f"{name}: {text}"


def _collect_garbage() -> None:
    """Free the sockets of failed connections now, not at some later full collection.

    kafka-python's failed connections sit in reference cycles (exception,
    traceback, frame, socket); a quiet exporter may not run a full garbage
    collection for a long time, and their descriptors stay open meanwhile.
    Only called when a client is thrown away, at most once per poll.
    """
    gc.collect()


def _dispose(admin: Any) -> None:
    """Stop whatever a KafkaAdminClient started before its constructor failed.

    Its constructor starts an I/O thread and opens connections, then raises
    when bootstrap fails, leaving no object to close: without this every
    failed attempt would leak a thread and its sockets.
    """
    client = getattr(admin, "_client", None)
    net = getattr(admin, "_net", None)
    metrics = getattr(admin, "_metrics", None)
    for step in (
        getattr(client, "close", None),
        getattr(net, "stop", None),
        getattr(metrics, "close", None),
    ):
        if step is None:
            continue
        try:
            step()
        except Exception:
            log.debug("error disposing of a half-built admin client", exc_info=True)
