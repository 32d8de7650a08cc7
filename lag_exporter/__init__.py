"""Kafka consumer-group lag exporter for Prometheus."""

__version__ = "0.1.0"
