"""Kafka message schemas (Apache Kafka's own JSON definitions) that kafka-python lacks."""
