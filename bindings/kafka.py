"""`bindings.kafka`: Apache Kafka, input and output, on confluent-kafka (librdkafka) (Dapr's:
components-contrib `bindings/kafka/kafka.go` over `common/component/kafka/`).

confluent-kafka rather than kafka-python: librdkafka is the client Confluent maintains, it has
SASL/SCRAM, OAUTHBEARER (OIDC client credentials, or a token callback), mTLS from PEM text,
every compression codec and idempotent, acknowledged produce built in, which is what Dapr's
metadata asks for.

Output `create` produces the payload to `publishTopic` and returns once the broker has
acknowledged the record. Request metadata `partitionKey` (or `__key`) is the record key,
`partitionNumber` the partition; every request metadata entry also becomes a record header.
Request metadata `valueSchemaType: Avro` encodes the JSON payload with the latest schema of
the subject `<publishTopic>-value` in the schema registry (`schemaRegistryURL`; the wire format
and JSON rules: `_schema_registry.py`).

The input listener is a group consumer of `topics` that stores a record's offset for commit
only after the handler returned. When the handler raises, the offset is not stored and the
consumer seeks back, so the record is delivered again after Dapr's `backOff*` policy's wait
(constant `backOffDuration`, 5 s, or exponential) (docs/delivery.md); a failing record is never
skipped. With `deadLetterTopic` (a portabind extension, like `maxDeliveries`) it is produced
there, with the error and its origin as headers, after `maxDeliveries` failed deliveries, and
its offset stored only once the broker acknowledged that copy. Without it the record is
retried until the handler succeeds, as Dapr does with `consumeRetryEnabled: true`; Dapr's
default instead skips it at once and a later commit loses it silently. The component's
`valueSchemaType: Avro` (a portabind extension: Dapr's binding hands input values over
undecoded) decodes registry-framed Avro values to JSON before the handler sees them, on every
target (`event_from_record`).

Authentication follows Dapr's `authType`: `password` (SASL PLAIN/SCRAM), `mtls`,
`certificate`, `oidc` (librdkafka's own client-credentials flow), `oidc_private_key_jwt`
(a token from `_oidc.py`, handed over through the OAUTHBEARER token callback) and `awsiam`
(Amazon MSK IAM: a SigV4-signed token from aws-msk-iam-sasl-signer-python through the same
callback, from the component's keys, an assumed role, or the default credential chain).

`event_from_record` is the one mapping from a Kafka record to a `BindingEvent`.

Keys accepted so Dapr components load unchanged, with no effect here (`no_effect` says why,
and `validate` warns): `version`, `channelBufferSize`, `metadataTimeout`, `backOffMaxRetries`,
`backOffMaxElapsedTime`, `trustAnchorArn`, `trustProfileArn`. The deprecated `authRequired`
becomes an `authType` as Dapr derives it (`upgrade`).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote_plus

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings._oidc import PrivateKeyJwt, TokenError, TokenSource
from portabind.bindings._schema_registry import Registry, SchemaError
from portabind.bindings.aws import AwsCredentials
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata
from portabind.metadata import Duration, Secret, Truthy, field_validator, model_validator, setting

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

log = logging.getLogger(__name__)

#: How long one produce (`create`, a dead-letter copy) waits for the broker's acknowledgement.
PRODUCE_TIMEOUT = 30.0
#: A record still failing after `maxDeliveries` is logged at error level once per this many
#: further failures: visible without a line per retry.
REPORT_EVERY = 100
#: Characters of the handler's error kept in the `portabind-error` dead-letter header.
ERROR_HEADER_CHARS = 1000
#: How often the listener looks at `stop` while no record arrives.
IDLE_SECONDS = 0.5
#: Handled records between two synchronous offset commits: the most a listener killed
#: outright (`kill -9`) hands the handler again after the restart. librdkafka's background
#: commit alone (every 5 s) bounds that by time, not count; a commit per record bounds it to
#: one but waits for the broker after every record (on a local broker, with a handler that
#: does nothing, about a hundredth of the records per second).
COMMIT_EVERY = 10

_MECHANISMS = {"PLAINTEXT": "PLAIN", "SHA-256": "SCRAM-SHA-256", "SHA-512": "SCRAM-SHA-512"}
_ACKS = {"all": "all", "local": "1", "none": "0"}
_ASSIGNMENT = {"range": "range", "roundrobin": "roundrobin", "sticky": "cooperative-sticky"}
AuthType = Literal[
    "none", "password", "mtls", "oidc", "oidc_private_key_jwt", "certificate", "awsiam"
]


#: `sessionName` when neither it nor `awsStsSessionName` is set (Dapr's default).
DEFAULT_SESSION_NAME = "DaprDefaultSession"
#: Seconds an MSK IAM token lives (aws-msk-iam-sasl-signer-python's; librdkafka asks for a
#: new one before it runs out).
MSK_TOKEN_SECONDS = 900


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _scopes(text: str) -> tuple[str, ...]:
    """`oidcScopes`, comma-separated."""
    return tuple(scope.strip() for scope in text.split(",") if scope.strip())


@dataclass(frozen=True)
class AwsAuth:
    """The AWS credentials `awsiam` signs with, after Dapr's rules: each of Dapr's AWS profile
    names wins over the older `aws`-prefixed one; keys win over a role; neither means the
    default credential chain (on Lambda: the function's role)."""

    region: str
    access_key: str | None
    secret_key: str | None
    session_token: str | None
    role_arn: str | None
    session_name: str
    sts_endpoint: str | None


class KafkaMetadata(AwsCredentials):
    """Dapr's Kafka fields; the AWS profile fields (inherited, and their older `aws`-prefixed
    names below) serve only `awsiam`."""

    binding_type = "bindings.kafka"
    deprecated = {
        "authRequired": "use authType: Dapr reads authRequired true as password when "
        "saslPassword is set, else mtls, and false as none, only when authType is not set",
    }
    no_effect = {
        "version": "librdkafka negotiates the protocol version with the broker",
        "channelBufferSize": "librdkafka sizes its own queues",
        "metadataTimeout": "librdkafka bounds metadata requests by socket.timeout.ms "
        "(readTimeout, writeTimeout)",
        "backOffMaxRetries": "a failing record is never given up here (Dapr skips and loses "
        "it): bound it with maxDeliveries and deadLetterTopic",
        "backOffMaxElapsedTime": "a failing record is never given up here (Dapr skips and "
        "loses it): bound it with maxDeliveries and deadLetterTopic",
        "trustAnchorArn": "IAM Roles Anywhere needs the Dapr sidecar's X.509 certificate, "
        "which portabind has not; give keys, assumeRoleArn or the default credential chain",
        "trustProfileArn": "IAM Roles Anywhere needs the Dapr sidecar's X.509 certificate, "
        "which portabind has not; give keys, assumeRoleArn or the default credential chain",
    }

    region: str | None = setting("region", None)  # type: ignore[assignment]
    aws_region: str | None = setting("awsRegion", None, description="older name of region")
    aws_access_key: Secret | None = setting(
        "awsAccessKey", None, secret=True, description="older name of accessKey"
    )
    aws_secret_key: Secret | None = setting(
        "awsSecretKey", None, secret=True, description="older name of secretKey"
    )
    aws_session_token: Secret | None = setting(
        "awsSessionToken", None, secret=True, description="older name of sessionToken"
    )
    aws_iam_role_arn: str | None = setting(
        "awsIamRoleArn", None, description="older name of assumeRoleArn"
    )
    aws_sts_session_name: str | None = setting(
        "awsStsSessionName", None, description="older name of sessionName"
    )
    brokers: str = setting("brokers", description="comma-separated host:port list")
    auth_type: AuthType = setting("authType")
    topics: str | None = setting("topics", None, description="comma-separated, input")
    publish_topic: str | None = setting("publishTopic", None, description="output topic")
    consumer_group: str | None = setting("consumerGroup", None, aliases=("consumerID",))
    client_id: str = setting("clientID", "sarama", aliases=("clientId",))
    initial_offset: Literal["newest", "oldest"] = setting("initialOffset", "newest")
    consume_retry_enabled: Truthy = setting("consumeRetryEnabled", False)
    consume_retry_interval: Duration = setting(
        "consumeRetryInterval",
        timedelta(milliseconds=100),
        description="wait before reconnecting to a broker (librdkafka's reconnect.backoff.ms); "
        "a bare number is milliseconds, as in Dapr",
    )
    backoff_policy: Literal["constant", "exponential"] = setting("backOffPolicy", "constant")
    backoff_duration: Duration = setting(
        "backOffDuration",
        timedelta(seconds=5),
        description="constant policy: wait before a failed record is delivered again",
    )
    backoff_initial_interval: Duration = setting(
        "backOffInitialInterval", timedelta(milliseconds=500), description="exponential policy"
    )
    backoff_randomization_factor: float = setting(
        "backOffRandomizationFactor", 0.5, description="exponential policy: ± this share"
    )
    backoff_multiplier: float = setting("backOffMultiplier", 1.5, description="exponential policy")
    backoff_max_interval: Duration = setting(
        "backOffMaxInterval", timedelta(seconds=60), description="exponential policy"
    )
    backoff_max_elapsed_time: Duration = setting("backOffMaxElapsedTime", timedelta(minutes=15))
    backoff_max_retries: int = setting("backOffMaxRetries", -1)
    value_schema_type: Literal["none", "avro"] = setting(
        "valueSchemaType",
        "none",
        description="portabind extension (Dapr's binding leaves input values as they are): "
        "Avro decodes registry-framed Avro input values to JSON, and is the default of the "
        "request metadata of the same name on output",
    )
    dead_letter_topic: str | None = setting(
        "deadLetterTopic",
        None,
        description="portabind extension (not in Dapr): topic a record goes to after "
        "maxDeliveries failed deliveries; without it the record is retried until handled",
    )
    max_deliveries: int = setting(
        "maxDeliveries",
        3,
        description="portabind extension (not in Dapr): failed deliveries of a record before "
        "it is dead-lettered, or (without deadLetterTopic) logged at error level",
    )
    heartbeat_interval: Duration = setting("heartbeatInterval", timedelta(seconds=3))
    session_timeout: Duration = setting("sessionTimeout", timedelta(seconds=10))
    version: str = setting("version", "2.0.0.0")
    max_message_bytes: int | None = setting("maxMessageBytes", None)
    sasl_username: str | None = setting("saslUsername", None)
    sasl_password: Secret | None = setting("saslPassword", None, secret=True)
    sasl_mechanism: str = setting("saslMechanism", "PLAINTEXT")
    ca_cert: str | None = setting("caCert", None, description="PEM")
    client_cert: str | None = setting("clientCert", None, description="PEM")
    client_key: Secret | None = setting("clientKey", None, secret=True, description="PEM")
    skip_verify: Truthy = setting("skipVerify", False)
    disable_tls: Truthy = setting("disableTls", False)
    oidc_token_endpoint: str | None = setting("oidcTokenEndpoint", None)
    oidc_client_id: str | None = setting("oidcClientID", None)
    oidc_client_secret: Secret | None = setting("oidcClientSecret", None, secret=True)
    oidc_scopes: str = setting("oidcScopes", "openid")
    oidc_extensions: str | None = setting("oidcExtensions", None, description="JSON object")
    oidc_client_assertion_cert: str | None = setting("oidcClientAssertionCert", None)
    oidc_client_assertion_key: Secret | None = setting("oidcClientAssertionKey", None, secret=True)
    oidc_resource: str | None = setting("oidcResource", None)
    oidc_audience: str | None = setting("oidcAudience", None)
    oidc_kid: str | None = setting("oidcKid", None)
    consumer_fetch_default: int = setting("consumerFetchDefault", 1048576)
    consumer_fetch_min: int = setting("consumerFetchMin", 1)
    channel_buffer_size: int = setting("channelBufferSize", 256)
    metadata_refresh_interval: Duration = setting(
        "clientConnectionTopicMetadataRefreshInterval", timedelta(minutes=8)
    )
    keep_alive_interval: Duration = setting(
        "clientConnectionKeepAliveInterval", timedelta(0), description="> 0: TCP keep-alive"
    )
    escape_headers: Truthy = setting("escapeHeaders", False)
    exclude_header_meta_regex: str | None = setting("excludeHeaderMetaRegex", None)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = setting("compression", "none")
    rebalance_strategy: Literal["range", "sticky", "roundrobin"] = setting(
        "consumerGroupRebalanceStrategy", "range"
    )
    schema_registry_url: str | None = setting("schemaRegistryURL", None)
    schema_registry_api_key: str | None = setting("schemaRegistryAPIKey", None)
    schema_registry_api_secret: Secret | None = setting(
        "schemaRegistryAPISecret", None, secret=True
    )
    schema_caching_enabled: Truthy = setting("schemaCachingEnabled", True)
    schema_latest_version_cache_ttl: Duration = setting(
        "schemaLatestVersionCacheTTL", timedelta(minutes=5)
    )
    use_avro_json: Truthy = setting("useAvroJSON", False)
    dial_timeout: Duration = setting("dialTimeout", timedelta(seconds=30))
    read_timeout: Duration = setting("readTimeout", timedelta(seconds=30))
    write_timeout: Duration = setting("writeTimeout", timedelta(seconds=30))
    metadata_timeout: Duration = setting("metadataTimeout", timedelta(0))
    producer_required_acks: Literal["all", "local", "none"] = setting("producerRequiredAcks", "all")
    producer_retry_max: int = setting("producerRetryMax", 5)

    @field_validator(
        "auth_type",
        "initial_offset",
        "compression",
        "rebalance_strategy",
        "backoff_policy",
        "value_schema_type",
        mode="before",
    )
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("consume_retry_interval", mode="before")
    @classmethod
    def _milliseconds(cls, value: Any) -> Any:
        """Dapr reads a bare number here as milliseconds, unlike its other durations."""
        if isinstance(value, str) and value.strip().isdigit():
            return timedelta(milliseconds=int(value))
        return value

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str) -> str:
        if value.upper() not in _MECHANISMS:
            raise ValueError("saslMechanism must be PLAINTEXT, SHA-256 or SHA-512")
        return value.upper()

    @field_validator("exclude_header_meta_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"excludeHeaderMetaRegex is not a valid regex: {error}") from None
        return value

    @model_validator(mode="after")
    def _supported(self) -> KafkaMetadata:
        if self.max_deliveries < 1:
            raise ValueError("maxDeliveries must be at least 1")
        if self.dead_letter_topic and self.consume_retry_enabled:
            # Dapr's consumeRetryEnabled retries until the handler succeeds: the dead-letter
            # topic would never be used, which a user setting both would not expect.
            raise ValueError(
                "deadLetterTopic is not used with consumeRetryEnabled: true, which retries "
                "a record until the handler succeeds; set one or the other"
            )
        if self.auth_type == "password" and not self.sasl_username:
            raise ValueError("authType password needs saslUsername and saslPassword")
        if self.auth_type == "mtls" and not (self.client_cert and self.client_key):
            raise ValueError("authType mtls needs clientCert and clientKey")
        if self.auth_type == "oidc" and not (self.oidc_token_endpoint and self.oidc_client_id):
            raise ValueError(
                "authType oidc needs oidcTokenEndpoint, oidcClientID, oidcClientSecret"
            )
        if self.auth_type == "oidc_private_key_jwt" and not (
            self.oidc_token_endpoint
            and self.oidc_client_id
            and self.oidc_client_assertion_cert
            and self.oidc_client_assertion_key
        ):
            raise ValueError(
                "authType oidc_private_key_jwt needs oidcTokenEndpoint, oidcClientID, "
                "oidcClientAssertionCert and oidcClientAssertionKey"
            )
        if self.auth_type == "awsiam" and not (self.region or self.aws_region):
            raise ValueError("authType awsiam needs region (or awsRegion): the MSK cluster's")
        if self.value_schema_type == "avro" and not self.schema_registry_url:
            raise ValueError("valueSchemaType Avro needs schemaRegistryURL")
        return self

    @classmethod
    def upgrade(cls, values: Mapping[str, str]) -> dict[str, str]:
        """Dapr's `upgradeMetadata`: without authType, authRequired true means password
        (with a saslPassword) or mtls, false means none; another value is left for the
        missing authType to report."""
        upgraded = dict(values)
        lowered = {key.lower(): (key, value) for key, value in values.items()}
        auth_key, auth_type = lowered.get("authtype", ("authType", ""))
        required = lowered.get("authrequired", ("", ""))[1].strip()
        truth = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}
        if not auth_type and required.lower() in truth:
            if not truth[required.lower()]:
                upgraded[auth_key] = "none"
            else:
                upgraded[auth_key] = (
                    "password" if lowered.get("saslpassword", ("", ""))[1] else "mtls"
                )
        return upgraded

    def _newer(self, name: str, older: str) -> str | None:
        """Dapr's coalescing of an AWS profile field with its older name: the first set."""
        for field in (name, older):
            value = self.secret(field) if field in self.model_fields_set else None
            if value:
                return value
        return None

    def aws_auth(self) -> AwsAuth:
        """The credentials `awsiam` uses (components-contrib `ValidateAWS`)."""
        return AwsAuth(
            region=self._newer("region", "aws_region") or "",
            access_key=self._newer("access_key", "aws_access_key"),
            secret_key=self._newer("secret_key", "aws_secret_key"),
            session_token=self._newer("session_token", "aws_session_token"),
            role_arn=self._newer("assume_role_arn", "aws_iam_role_arn"),
            session_name=self._newer("session_name", "aws_sts_session_name")
            or DEFAULT_SESSION_NAME,
            sts_endpoint=self.endpoint,
        )

    def oidc_grant(self) -> PrivateKeyJwt:
        """The token request of `oidc_private_key_jwt`; the broker's CA also vouches for the
        token endpoint, as in Dapr."""
        return PrivateKeyJwt(
            token_endpoint=self.oidc_token_endpoint or "",
            client_id=self.oidc_client_id or "",
            certificate=self.oidc_client_assertion_cert or "",
            key=self.secret("oidc_client_assertion_key") or "",
            scopes=_scopes(self.oidc_scopes),
            audience=self.oidc_audience,
            resource=self.oidc_resource,
            kid=self.oidc_kid,
            ca_cert=self.ca_cert,
            skip_verify=self.skip_verify,
        )

    def redelivery_delay(self, failures: int) -> float:
        """Seconds to wait before a record that failed `failures` times is delivered again:
        Dapr's backOff policy (dapr/kit `retry.Config`): constant `backOffDuration`, or
        exponential from `backOffInitialInterval`, times `backOffMultiplier` per failure, up
        to `backOffMaxInterval`, randomized by ± `backOffRandomizationFactor`."""
        if self.backoff_policy == "constant":
            return self.backoff_duration.total_seconds()
        interval = min(
            self.backoff_initial_interval.total_seconds()
            * self.backoff_multiplier ** max(failures - 1, 0),
            self.backoff_max_interval.total_seconds(),
        )
        spread = self.backoff_randomization_factor * interval
        return random.uniform(interval - spread, interval + spread)

    def excluded(self, key: str) -> bool:
        """Whether `excludeHeaderMetaRegex` keeps this key out of headers and metadata."""
        pattern = self.exclude_header_meta_regex
        return bool(pattern) and re.search(pattern or "", key) is not None


def client_config(metadata: KafkaMetadata) -> dict[str, Any]:
    """librdkafka settings shared by the producer and the consumer."""
    config: dict[str, Any] = {
        "bootstrap.servers": metadata.brokers,
        "client.id": metadata.client_id,
        "socket.connection.setup.timeout.ms": _ms(metadata.dial_timeout),
        "socket.timeout.ms": _ms(max(metadata.read_timeout, metadata.write_timeout)),
        "topic.metadata.refresh.interval.ms": _ms(metadata.metadata_refresh_interval),
        "socket.keepalive.enable": metadata.keep_alive_interval > timedelta(0),
        "reconnect.backoff.ms": _ms(metadata.consume_retry_interval),
    }
    # As in Dapr: no TLS with authType none or disableTls, TLS for every other type.
    tls = metadata.auth_type != "none" and not metadata.disable_tls
    sasl = metadata.auth_type in ("password", "oidc", "oidc_private_key_jwt", "awsiam")
    config["security.protocol"] = ("SASL_" if sasl else "") + ("SSL" if tls else "PLAINTEXT")
    if tls:
        if metadata.ca_cert:
            config["ssl.ca.pem"] = metadata.ca_cert
        if metadata.skip_verify:
            config["enable.ssl.certificate.verification"] = False
            config["ssl.endpoint.identification.algorithm"] = "none"
        if metadata.client_cert and metadata.client_key:
            config["ssl.certificate.pem"] = metadata.client_cert
            config["ssl.key.pem"] = metadata.secret("client_key")
    if metadata.auth_type == "password":
        config["sasl.mechanism"] = _MECHANISMS[metadata.sasl_mechanism]
        config["sasl.username"] = metadata.sasl_username
        config["sasl.password"] = metadata.secret("sasl_password") or ""
    if metadata.auth_type == "oidc":
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["sasl.oauthbearer.method"] = "oidc"
        config["sasl.oauthbearer.token.endpoint.url"] = metadata.oidc_token_endpoint
        config["sasl.oauthbearer.client.id"] = metadata.oidc_client_id
        config["sasl.oauthbearer.client.secret"] = metadata.secret("oidc_client_secret") or ""
        config["sasl.oauthbearer.scope"] = " ".join(_scopes(metadata.oidc_scopes))
        if metadata.oidc_extensions:
            extensions = json.loads(metadata.oidc_extensions)
            config["sasl.oauthbearer.extensions"] = ",".join(
                f"{key}={value}" for key, value in extensions.items()
            )
    if metadata.auth_type in ("oidc_private_key_jwt", "awsiam"):
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["oauth_cb"] = token_callback(metadata)
    if metadata.max_message_bytes:
        config["message.max.bytes"] = metadata.max_message_bytes
    return config


def msk_token(auth: AwsAuth) -> tuple[str, float]:
    """An Amazon MSK IAM token for `auth` and its expiry (Unix seconds)."""
    import boto3
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    from botocore.credentials import CredentialProvider, Credentials
    from botocore.session import Session

    class Resolved(CredentialProvider):
        METHOD = "portabind-kafka"

        def load(self) -> Credentials | None:
            if auth.access_key and auth.secret_key:
                return Credentials(auth.access_key, auth.secret_key, auth.session_token)
            if auth.role_arn:
                sts = boto3.client("sts", region_name=auth.region, endpoint_url=auth.sts_endpoint)
                found = sts.assume_role(RoleArn=auth.role_arn, RoleSessionName=auth.session_name)
                issued = found["Credentials"]
                return Credentials(
                    issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
                )
            return Session().get_credentials()

    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(
        auth.region, Resolved()
    )
    return str(token), expiry_ms / 1000


def token_callback(metadata: KafkaMetadata) -> Callable[[str], tuple[str, float]]:
    """librdkafka's OAUTHBEARER token callback (confluent-kafka `oauth_cb`) for `awsiam` and
    `oidc_private_key_jwt`: called when the client needs a token, before the first connection
    and again before the token expires. A failure is raised as `TokenError`, which the client
    reports as an authentication failure."""
    if metadata.auth_type == "awsiam":
        auth = metadata.aws_auth()

        def aws(_config: str) -> tuple[str, float]:
            try:
                return msk_token(auth)
            except Exception as error:  # botocore's: no credentials, STS refused, ...
                raise TokenError(f"no MSK IAM token: {error}") from error

        return aws
    source = TokenSource(metadata.oidc_grant())
    return lambda _config: source.token()


def started_config(name: str, metadata: KafkaMetadata) -> dict[str, Any]:
    """`client_config` with the first token already fetched: as in Dapr, a component whose
    credentials give no token fails when it starts, not at its first record."""
    config = client_config(metadata)
    callback = config.get("oauth_cb")
    if callback is not None:
        try:
            callback("")
        except TokenError as error:
            raise UserError(
                f"kafka component {name}: {error}",
                hint=f"check the credentials of authType {metadata.auth_type}",
            ) from None
    return config


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def event_from_record(
    name: str,
    *,
    value: bytes | None,
    key: bytes | str | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    headers: Iterable[tuple[str, bytes | str | None]] | None,
    metadata: KafkaMetadata | None = None,
) -> BindingEvent:
    """The event for one Kafka record: `data` is the value; metadata the record headers
    (UTF-8) under their own names, then Dapr's `__key` (when the record has one), `__topic`,
    `__partition`, `__offset` and `__timestamp` (Unix milliseconds), which a header cannot
    mask. `escapeHeaders` URL-escapes header values and the key; `excludeHeaderMetaRegex`
    leaves matching headers out; `valueSchemaType: Avro` decodes the value to JSON through
    the schema registry (`SchemaError` when it does not decode)."""
    escape = metadata is not None and metadata.escape_headers

    def shown(text: str) -> str:
        return quote_plus(text, safe="") if escape else text

    fields: dict[str, str] = {}
    for header, header_value in headers or ():
        if metadata is None or not metadata.excluded(header):
            fields[header] = shown(_text(header_value))
    if key:
        fields["__key"] = shown(_text(key))
    fields["__topic"] = topic
    fields["__partition"] = str(partition)
    fields["__offset"] = str(offset)
    if timestamp_ms is not None and timestamp_ms >= 0:
        fields["__timestamp"] = str(timestamp_ms)
    schemas = registry(metadata) if metadata and metadata.value_schema_type == "avro" else None
    data = schemas.decode(value) if schemas and value is not None else value
    return BindingEvent(name, data or b"", Metadata(fields))


@functools.cache
def registry(metadata: KafkaMetadata) -> Registry | None:
    """The schema registry client of the component, if it names one; one per component
    (`metadata` is frozen), so schemas are fetched once whichever target maps the records."""
    if not metadata.schema_registry_url:
        return None
    return Registry(
        metadata.schema_registry_url,
        api_key=metadata.schema_registry_api_key,
        api_secret=metadata.secret("schema_registry_api_secret"),
        caching=metadata.schema_caching_enabled,
        latest_ttl=metadata.schema_latest_version_cache_ttl,
        avro_json=metadata.use_avro_json,
    )


class _ProduceFailed(Exception):
    """The broker did not acknowledge a record; the message says why."""


class _Publisher:
    """A producer whose `send` returns once the broker acknowledged the record: `create` and
    the listener's dead-lettering produce this way."""

    def __init__(self, name: str, metadata: KafkaMetadata) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(
            {
                **started_config(name, metadata),
                "acks": _ACKS[metadata.producer_required_acks],
                "retries": metadata.producer_retry_max,
                "compression.type": metadata.compression,
            }
        )

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: list[tuple[str, bytes | str | None]],
        partition: int | None = None,
    ) -> None:
        """Produce one record and wait for its acknowledgement; `_ProduceFailed` if none came."""
        from confluent_kafka import KafkaException

        done = threading.Event()
        outcome: list[Any] = []

        def delivered(error: Any, record: Any) -> None:
            outcome.append(error)
            done.set()

        options: dict[str, Any] = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(
                topic, value, key=key, headers=headers or None, on_delivery=delivered, **options
            )
            # poll() serves delivery callbacks; several threads may poll at once.
            waited = 0.0
            while not done.is_set() and waited < PRODUCE_TIMEOUT:
                self._producer.poll(0.1)
                waited += 0.1
        except (KafkaException, BufferError) as error:
            raise _ProduceFailed(str(error)) from error
        if not done.is_set():
            raise _ProduceFailed(f"no acknowledgement in {PRODUCE_TIMEOUT}s")
        if outcome[0] is not None:
            raise _ProduceFailed(str(outcome[0]))

    def close(self) -> None:
        # flush() delivers what is queued; close() frees the client now, instead of whenever
        # the garbage collector gets to it, so no background thread keeps dialling a broker
        # that has gone away.
        self._producer.flush(PRODUCE_TIMEOUT)
        self._producer.close()


class KafkaOutput(OutputBinding[KafkaMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: KafkaMetadata) -> None:
        super().__init__(name, metadata)
        if not metadata.publish_topic:
            raise UserError(
                f"output binding {name} (bindings.kafka) needs publishTopic",
                hint="add the metadata field publishTopic: the topic `create` produces to",
            )
        self._publisher = _Publisher(name, metadata)
        self._registry = registry(metadata)

    def _value(self, data: bytes, metadata: Metadata) -> bytes:
        """The record value: `data`, or its Avro encoding under `valueSchemaType: Avro`."""
        kind = metadata.get("valueSchemaType") or self.metadata.value_schema_type
        if kind.lower() == "none":
            return data
        if kind.lower() != "avro":
            raise UserError(
                f"request metadata valueSchemaType {kind!r} is not a supported value",
                hint="use Avro or None",
            )
        if self._registry is None:
            raise UserError(
                f"output binding {self.name}: valueSchemaType Avro needs the schema registry",
                hint="add the metadata field schemaRegistryURL",
            )
        try:
            return self._registry.encode(self.metadata.publish_topic or "", data)
        except SchemaError as error:
            raise BindingError(self.name, "create", str(error)) from error

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        value = self._value(data, metadata)
        key = metadata.get("partitionKey") or metadata.get("__key")
        partition = None
        if "partitionNumber" in metadata:
            try:
                partition = int(metadata["partitionNumber"])
            except ValueError:
                raise UserError(
                    f"request metadata partitionNumber {metadata['partitionNumber']!r} "
                    "is not an integer"
                ) from None
        headers: list[tuple[str, bytes | str | None]] = [
            (k, v.encode()) for k, v in metadata.items() if not self.metadata.excluded(k)
        ]
        try:
            self._publisher.send(
                self.metadata.publish_topic or "",
                value,
                key=key.encode() if key else None,
                headers=headers,
                partition=partition,
            )
        except _ProduceFailed as error:
            raise BindingError(self.name, "create", str(error)) from error
        return BindingResponse()

    def close(self) -> None:
        self._publisher.close()


def _coordinates(record: Any) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record."""
    return str(record.topic()), int(record.partition()), int(record.offset())


def _dead_letter_headers(
    record_headers: Iterable[tuple[str, bytes | str | None]] | None,
    error: BaseException,
    where: tuple[str, int, int],
) -> list[tuple[str, bytes | str | None]]:
    """The headers of a record's dead-letter copy: its own, then the handler's error (type and
    message, truncated) and the record's origin."""
    topic, partition, offset = where
    reason = f"{type(error).__name__}: {error}"[:ERROR_HEADER_CHARS]
    return [
        *(record_headers or ()),
        ("portabind-error", reason.encode()),
        ("portabind-original-topic", topic.encode()),
        ("portabind-original-partition", str(partition).encode()),
        ("portabind-original-offset", str(offset).encode()),
    ]


def _commit(consumer: Any) -> None:
    """Commit the stored offsets and wait for the broker's answer. Nothing stored since the
    last commit (the background commit took it) is no error."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        consumer.commit(asynchronous=False)
    except KafkaException as error:
        if error.args[0].code() != KafkaError._NO_OFFSET:
            raise


class KafkaInput(InputBinding[KafkaMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        topics = [t.strip() for t in (self.metadata.topics or "").split(",") if t.strip()]
        if not topics:
            log.warning("%s: no topics to consume (metadata topics is empty)", self.name)
            stop.wait()
            return
        if not self.metadata.consumer_group:
            raise UserError(
                f"input binding {self.name} (bindings.kafka) needs consumerGroup",
                hint="add the metadata field consumerGroup (alias consumerID)",
            )
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        dead_letters = (
            _Publisher(self.name, self.metadata) if self.metadata.dead_letter_topic else None
        )
        consumer = Consumer(
            {
                **started_config(self.name, self.metadata),
                "group.id": self.metadata.consumer_group,
                "auto.offset.reset": (
                    "earliest" if self.metadata.initial_offset == "oldest" else "latest"
                ),
                "session.timeout.ms": _ms(self.metadata.session_timeout),
                "heartbeat.interval.ms": _ms(self.metadata.heartbeat_interval),
                "max.partition.fetch.bytes": self.metadata.consumer_fetch_default,
                "fetch.min.bytes": self.metadata.consumer_fetch_min,
                "partition.assignment.strategy": _ASSIGNMENT[self.metadata.rebalance_strategy],
                # Offsets are stored only for handled (or dead-lettered) records and committed
                # every COMMIT_EVERY of them, before a back-off wait, in the background and on
                # close: a failing record is never committed past.
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
            }
        )
        failures: dict[tuple[str, int, int], int] = {}
        uncommitted = 0  # records stored since the last synchronous commit
        try:
            consumer.subscribe(topics)
            while not stop.is_set():
                record = consumer.poll(IDLE_SECONDS)
                if record is None:
                    continue
                if record.error():
                    log.warning("%s: Kafka consumer: %s", self.name, record.error())
                    continue
                where = _coordinates(record)
                done = self._done(deliver, record, failures, dead_letters)
                try:
                    if done:
                        failures.pop(where, None)
                        consumer.store_offsets(record)
                        uncommitted += 1
                    if uncommitted >= COMMIT_EVERY or (uncommitted and not done):
                        uncommitted = 0
                        _commit(consumer)
                    if not done and not stop.wait(self.metadata.redelivery_delay(failures[where])):
                        # Read this record again: the partition restarts at its offset.
                        consumer.seek(TopicPartition(*where))
                except KafkaException as error:
                    # The partition went to another consumer meanwhile (a rebalance). Its new
                    # owner starts from the last commit, so nothing is lost.
                    log.warning("%s: record %s/%s@%s: %s", self.name, *where, error)
        finally:
            consumer.close()
            if dead_letters is not None:
                dead_letters.close()

    def _done(
        self,
        deliver: Callable[[BindingEvent], None],
        record: Any,
        failures: dict[tuple[str, int, int], int],
        dead_letters: _Publisher | None,
    ) -> bool:
        """Deliver one record. True when its offset may be stored: it was handled, or the
        broker acknowledged its copy on the dead-letter topic. A value that does not decode
        (`valueSchemaType: Avro`) fails like the handler."""
        where = _coordinates(record)
        try:
            _, stamp = record.timestamp()
            deliver(
                event_from_record(
                    self.name,
                    value=record.value(),
                    key=record.key(),
                    topic=record.topic(),
                    partition=record.partition(),
                    offset=record.offset(),
                    timestamp_ms=stamp,
                    headers=record.headers(),
                    metadata=self.metadata,
                )
            )
            return True
        except Exception as error:  # the handler's failure, or SchemaError
            count = failures[where] = failures.get(where, 0) + 1
            budget = self.metadata.max_deliveries
            if dead_letters is not None and count >= budget:
                return self._dead_lettered(dead_letters, record, error, count)
            if count < budget:
                log.warning(
                    "%s: record %s/%s@%s failed (%s); redelivering", self.name, *where, error
                )
            elif (count - budget) % REPORT_EVERY == 0:
                log.error(
                    "%s: record %s/%s@%s has failed %d deliveries (%s); still retrying: it is "
                    "never skipped (set deadLetterTopic to move such records aside)",
                    self.name,
                    *where,
                    count,
                    error,
                )
            return False

    def _dead_lettered(
        self, dead_letters: _Publisher, record: Any, error: Exception, count: int
    ) -> bool:
        """Copy a record that failed `count` times to `deadLetterTopic`; True once acknowledged."""
        where = _coordinates(record)
        topic = self.metadata.dead_letter_topic or ""
        try:
            dead_letters.send(
                topic,
                record.value(),
                key=record.key(),
                headers=_dead_letter_headers(record.headers(), error, where),
            )
        except _ProduceFailed as failure:
            log.error(
                "%s: record %s/%s@%s failed %d deliveries (%s) and could not be written to "
                "dead-letter topic %s (%s); it stays uncommitted and comes round again",
                self.name,
                *where,
                count,
                error,
                topic,
                failure,
            )
            return False
        log.error(
            "%s: record %s/%s@%s failed %d deliveries (%s); moved to dead-letter topic %s",
            self.name,
            *where,
            count,
            error,
            topic,
        )
        return True


binding = Binding(metadata=KafkaMetadata, output=KafkaOutput, input=KafkaInput)
