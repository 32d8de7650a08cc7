"""Kafka protocol messages that kafka-python 3.0 does not ship, declared its own way.

kafka-python 3 generates its request and response classes from Apache
Kafka's JSON message schemas; a class names its schema and, with
`load_json=`, the package the schema is read from. The schemas in
`schemas/` are Kafka's own definitions, unchanged, so the encoding is
kafka-python's and nothing here encodes bytes by hand.

- ConsumerGroupDescribe (API key 69, KIP-848): members and assignments of
  groups on the new consumer group protocol, which DescribeGroups cannot see.
  Version 0 only: version 1 adds a member type the exporter does not need.
"""

from __future__ import annotations

from kafka.protocol.api_message import ApiMessage

from . import schemas

_SCHEMAS = schemas.__name__


class ConsumerGroupDescribeRequest(ApiMessage, load_json=_SCHEMAS):  # type: ignore[misc,call-arg]
    pass


class ConsumerGroupDescribeResponse(ApiMessage, load_json=_SCHEMAS):  # type: ignore[misc,call-arg]
    pass


__all__ = ["ConsumerGroupDescribeRequest", "ConsumerGroupDescribeResponse"]
