"""What the kafka tests share: a component's metadata for a test topic, and topic creation."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from portabind.bindings.kafka import KafkaMetadata


def kafka_metadata(brokers: str, topic: str, **values: str) -> KafkaMetadata:
    """A component reading and writing `topic` from the start, in its own consumer group;
    group consumers use a 6 s session timeout: Tansu holds the group join long with the
    default."""
    fields = {
        "brokers": brokers,
        "authType": "none",
        "topics": topic,
        "publishTopic": topic,
        "consumerGroup": f"{topic}-group",
        "initialOffset": "oldest",
        "sessionTimeout": "6s",
        "heartbeatInterval": "1s",
        **values,
    }
    return KafkaMetadata.model_validate(fields)


def create_topic(brokers: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(10)
