"""Everything that speaks to Kafka lives here; the rest of the package is pure."""

from .collector import Collector

__all__ = ["Collector"]
