"""The built-in web UI: an overview of every group worst first, and a page per group.

Everything here reads what a poll published (ClusterUi, built by the poller
from its view and history; the alert snapshot) and never calls Kafka: a page
view costs what a /metrics scrape costs, a lookup in memory.
"""
