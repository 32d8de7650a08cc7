"""ConsumerGroupDescribe (KIP-848) through kafka-python's own schema machinery, and members."""

import uuid
from types import SimpleNamespace

from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

from lag_exporter.kafka.collector import _from_listing, _member, consumer_group_description
from lag_exporter.kafka.protocol import ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse


def test_request_is_api_69_version_0_in_the_flexible_encoding() -> None:
    request = ConsumerGroupDescribeRequest(
        group_ids=["a", "b"], include_authorized_operations=False
    )
    assert request.API_KEY == 69
    assert ConsumerGroupDescribeRequest.max_version == 0
    # Compact array (length + 1), compact strings, a boolean, no tagged fields.
    assert bytes(request.encode(version=0)) == b"\x03\x02a\x02b\x00\x00"


def described_group() -> object:
    group_cls = ConsumerGroupDescribeResponse.DescribedGroup
    member_cls = group_cls.Member
    topic_id = uuid.uuid4()
    assignment = member_cls.Assignment(
        topic_partitions=[
            member_cls.Assignment.TopicPartitions(
                topic_id=topic_id, topic_name="orders", partitions=[2, 0]
            )
        ]
    )
    members = [
        member_cls(
            member_id="m-1",
            instance_id=None,
            rack_id=None,
            member_epoch=4,
            client_id="console-consumer",
            client_host="/10.0.0.2",
            subscribed_topic_names=["orders"],
            subscribed_topic_regex=None,
            assignment=assignment,
            target_assignment=assignment,
        ),
        member_cls(
            member_id="m-2",
            instance_id="static-2",
            rack_id=None,
            member_epoch=4,
            client_id="worker",
            client_host="/10.0.0.3",
            subscribed_topic_names=["orders"],
            subscribed_topic_regex=None,
            assignment=member_cls.Assignment(topic_partitions=[]),
            target_assignment=member_cls.Assignment(topic_partitions=[]),
        ),
    ]
    response = ConsumerGroupDescribeResponse(
        throttle_time_ms=0,
        groups=[
            group_cls(
                error_code=0,
                error_message=None,
                group_id="g848",
                group_state="Stable",
                group_epoch=4,
                assignment_epoch=4,
                assignor_name="uniform",
                members=members,
                authorized_operations=-2147483648,
            )
        ],
    )
    # Through the wire format and back, as the broker's answer arrives.
    decoded = ConsumerGroupDescribeResponse.decode(response.encode(version=0), version=0)
    return decoded.groups[0]


def test_a_consumer_protocol_group_is_described_with_members_and_assignment() -> None:
    g = consumer_group_description(described_group(), coordinator=3)
    assert (g.group_id, g.state, g.protocol_type, g.protocol) == (
        "g848",
        "Stable",
        "consumer",
        "uniform",
    )
    assert g.group_type == "consumer" and g.described and g.coordinator == 3
    first, second = g.members
    assert first.member_id == "m-1" and first.host == "10.0.0.2"
    assert first.assignment == (("orders", 0), ("orders", 2))
    assert first.subscribed_topics == ("orders",)
    assert second.instance_id == "static-2" and second.assignment == ()


def test_classic_members_carry_their_subscription() -> None:
    raw = SimpleNamespace(
        member_id="c-1",
        client_id="c",
        client_host="/10.0.0.4",
        group_instance_id=None,
        member_metadata=ConsumerProtocolSubscription(topics=["orders", "audit"]).encode(version=0),
        member_assignment=ConsumerProtocolAssignment(assigned_partitions=[("orders", [1])]).encode(
            version=0
        ),
    )
    m = _member(raw)
    assert m.subscribed_topics == ("orders", "audit")
    assert m.assignment == (("orders", 1),)
    # Other protocols (Kafka Connect, ...) have their own formats: nothing is guessed.
    assert _member(raw, consumer=False).subscribed_topics == ()


def test_listed_only_groups_keep_their_type_and_state() -> None:
    entry = SimpleNamespace(
        group_id="s", group_state="Stable", protocol_type="share", group_type="share"
    )
    g = _from_listing(entry, 1)
    assert (g.group_type, g.state, g.described) == ("share", "Stable", False)
    old_broker = SimpleNamespace(group_id="o", protocol_type="consumer")
    assert _from_listing(old_broker, None).group_type == ""
