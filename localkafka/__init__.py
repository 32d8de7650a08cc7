"""A real single-node Apache Kafka broker for tests and demos, from Maven Central jars."""

from localkafka.broker import (
    CACHE_ENV,
    DEFAULT_KAFKA_VERSION,
    KAFKA_VERSION_ENV,
    BrokerError,
    KafkaBroker,
    consumer_groups_describe_all,
    ensure_jars,
    jars_cached,
    kafka_version,
    run_tool,
    start_java_process,
    tool_class,
)

__all__ = [
    "CACHE_ENV",
    "DEFAULT_KAFKA_VERSION",
    "KAFKA_VERSION_ENV",
    "BrokerError",
    "KafkaBroker",
    "consumer_groups_describe_all",
    "ensure_jars",
    "jars_cached",
    "kafka_version",
    "run_tool",
    "start_java_process",
    "tool_class",
]
