"""`bindings.aws.sns`: Amazon SNS, output (Dapr's: components-contrib `bindings/aws/sns/sns.go`)
and a portabind input.

Output `create` takes `{"message": …, "subject": …}` and publishes to `topicArn`. As in Dapr,
both values are printed with Go's `%v` (`go_format`), so a missing subject is the text
`<nil>`, a number is `1e+06` style, a list `[a b]`, an object `map[k:v]`; the field names
match case-insensitively, as Go's JSON decoder matches them.

The input is an extension (Dapr has none; in the cloud the component becomes a Lambda `SNS`
trigger): locally the listener subscribes an SQS queue of its own to the topic and polls it
(`_relay`), unwrapping the SNS envelope. `event_from_record` is the one mapping from a
notification to a `BindingEvent`: the Lambda runtime hands it the records of an SNS event; the
listener turns each envelope into that Lambda shape first (`lambda_record`).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.aws import _aws, _relay
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, BindingResponse, Metadata
from portabind.metadata import setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping


class SnsMetadata(_aws.AwsServiceMetadata):
    binding_type = "bindings.aws.sns"

    topic_arn: str = setting("topicArn", description="ARN of the topic to publish to")


def _go_float(value: float) -> str:
    """Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): shortest digits, an
    exponent of at least two digits when it is below -4 or at least 6 (Go's `%g` threshold
    for the shortest form)."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite: JSON has no Inf or NaN
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # where the decimal point falls among the digits
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    elif point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return ("-" if sign else "") + text


def go_format(value: Any) -> str:
    """Go's `fmt.Sprintf("%v", v)` of a value `json.Unmarshal` made into an `interface{}`."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _go_float(float(value))  # Go decodes every JSON number as a float64
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    if isinstance(value, dict):  # fmt prints maps with their keys sorted
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items())) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def publish_input(data: bytes) -> tuple[str, str]:
    """The message and subject Dapr publishes for the request data."""
    payload = json.loads(data) if data.strip() else None
    if payload is not None and not isinstance(payload, dict):
        raise ValueError('data must be a JSON object {"message": ..., "subject": ...}')
    fields: dict[str, Any] = {"message": None, "subject": None}
    for key, value in (payload or {}).items():
        if key.lower() in fields:  # later keys win, as in Go's decoder
            fields[key.lower()] = value
    return go_format(fields["message"]), go_format(fields["subject"])


def event_from_record(name: str, record: Mapping[str, Any]) -> BindingEvent:
    """The event for one record of a Lambda SNS event (or its `Sns` object alone).

    `data` is the message as published, untouched. Metadata: the message attributes under
    their own names (their value verbatim), then `messageId`, `topicArn`, `timestamp` and,
    when the message has one, `subject`; the platform's keys come last, so an attribute
    cannot mask them."""
    sns = record.get("Sns", record)
    metadata = {
        key: str(attribute.get("Value", ""))
        for key, attribute in (sns.get("MessageAttributes") or {}).items()
    }
    metadata["messageId"] = str(sns["MessageId"])
    metadata["topicArn"] = str(sns["TopicArn"])
    metadata["timestamp"] = str(sns["Timestamp"])
    if sns.get("Subject") is not None:
        metadata["subject"] = str(sns["Subject"])
    return BindingEvent(name, str(sns["Message"]).encode("utf-8"), Metadata(metadata))


def lambda_record(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """An SNS envelope, as SNS delivers it to an SQS queue, in the shape of a Lambda record
    (Lambda spells two URL fields differently and always has `Subject`)."""
    sns = {key: value for key, value in envelope.items() if not key.endswith("URL")}
    sns["SigningCertUrl"] = envelope.get("SigningCertURL")
    sns["UnsubscribeUrl"] = envelope.get("UnsubscribeURL")
    sns["Subject"] = envelope.get("Subject")
    sns.setdefault("MessageAttributes", {})
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": sns,
    }


class SnsOutput(OutputBinding[SnsMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: SnsMetadata) -> None:
        super().__init__(name, metadata)
        self._sns = _aws.client("sns", metadata)

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            message, subject = publish_input(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise BindingError(self.name, "create", f"invalid request data: {error}") from None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._sns.publish(TopicArn=self.metadata.topic_arn, Message=message, Subject=subject)
        except (BotoCoreError, ClientError) as error:
            raise BindingError(self.name, "create", str(error)) from error
        return BindingResponse()


def _account(topic_arn: str) -> str:
    parts = topic_arn.split(":")
    return parts[4] if len(parts) == 6 else ""


class SnsInput(InputBinding[SnsMetadata]):
    """Under a custom endpoint (the emulator) the relay queue and its subscription are made
    in the topic's account, where moto delivers the topic's messages."""

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        topic = self.metadata.topic_arn
        account = _account(topic) if self.metadata.endpoint else ""
        subscription: list[str] = []

        def attach(sqs: Any, url: str, queue_arn: str) -> None:
            _relay.allow(sqs, url, queue_arn, "sns.amazonaws.com", topic)
            client = _aws.client("sns", self.metadata)
            if account:
                _aws.in_account(client, account)
            # Subscribing the same queue again returns the existing subscription.
            subscribed = client.subscribe(
                TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True
            )
            subscription[:] = [subscribed["SubscriptionArn"]]

        def events(body: str) -> list[BindingEvent]:
            envelope = json.loads(body)
            if envelope.get("Type") != "Notification":
                return []
            return [event_from_record(self.name, lambda_record(envelope, subscription[0]))]

        queue = _relay.queue_name("sns", self.name, topic)
        _relay.relay(
            self.name, self.metadata, queue, attach, events, deliver, stop, account=account
        )


def emulate(endpoints: Mapping[str, str]) -> dict[str, str]:
    """`_aws.emulate` without the region: a topic ARN names its region, and the client must
    be in that region to reach the topic, in moto as on AWS."""
    overrides = _aws.emulate(endpoints)
    del overrides["region"]
    return overrides


def provision(metadata: SnsMetadata) -> None:
    """Create the topic the ARN names, in the ARN's account (`_aws.in_account`); idempotent."""
    parts = metadata.topic_arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", parts[1], "sns"]:
        raise ComponentError(
            f"{metadata.topic_arn!r} is not an SNS topic ARN",
            field="topicArn",
            hint="arn:aws:sns:<region>:<account>:<topic name>",
        )
    region, account, topic = parts[3:]
    if region != metadata.region:
        raise ComponentError(
            f"topic {metadata.topic_arn} is in {region}, but the component's region is "
            f"{metadata.region!r}",
            field="region",
            hint=f"set region: {region}",
        )
    sns = _aws.in_account(_aws.client("sns", metadata), account)
    attributes = {"FifoTopic": "true"} if topic.endswith(".fifo") else {}
    sns.create_topic(Name=topic, Attributes=attributes)


binding = Binding(
    metadata=SnsMetadata,
    output=SnsOutput,
    input=SnsInput,
    emulator="moto",
    emulate=emulate,
    provision=provision,
)
