"""What the Azure messaging bindings (servicebusqueues, eventhubs) share: their connection
strings, the entity names Azure accepts, the times they report, and pointing them at
portabind's AMQP broker under `portabind run --emulate`.

A connection string is checked when the component loads, as the SDKs parse it
(`Endpoint=sb://<namespace>/;SharedAccessKeyName=...;SharedAccessKey=...`, or
`SharedAccessSignature=...`, optionally `EntityPath=...` and `UseDevelopmentEmulator=true`),
so a malformed one is a component error naming the field rather than an SDK error at the
first message. Messages about it never repeat it: it holds the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from portabind.annotations import text_matching
from portabind.bindings.azure import development_connection_string
from portabind.components import REFERENCE
from portabind.events import rfc3339
from portabind.metadata import AfterValidator, Secret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: `Binding.emulator` of a messaging binding: portabind's AMQP broker, whose address
#: (host:port) is `endpoints["amqp"]`.
EMULATOR = "amqp"

#: Azure's rules for the names (learn.microsoft.com, "Naming rules for Azure resources").
QueueName = Annotated[
    str,
    text_matching(
        r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,258}[A-Za-z0-9])?",
        "a Service Bus queue name: 1 to 260 letters, digits, periods, hyphens, underscores "
        "and slashes, starting and ending with a letter or digit",
    ),
]
EventHubName = Annotated[
    str,
    text_matching(
        r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?",
        "an event hub name: 1 to 256 letters, digits, periods, hyphens and underscores, "
        "starting and ending with a letter or digit",
    ),
]
ConsumerGroup = Annotated[
    str,
    text_matching(
        r"\$Default|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?",
        "a consumer group name: $Default, or 1 to 50 letters, digits, periods, hyphens and "
        "underscores, starting and ending with a letter or digit",
    ),
]
ContainerName = Annotated[
    str,
    text_matching(
        r"\$root|(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
        "a blob container name: 3 to 63 lower-case letters, digits and single hyphens, "
        "starting and ending with a letter or digit",
    ),
]


@dataclass(frozen=True)
class ConnectionString:
    """The parts of a Service Bus or Event Hubs connection string portabind reads."""

    #: The namespace's host (with a port, for a development emulator).
    host: str
    entity_path: str | None
    emulator: bool


def parse_connection_string(text: str) -> ConnectionString:
    """Parse a connection string as the SDKs do; ValueError saying what is wrong (never
    quoting the string, which holds the key)."""
    settings: dict[str, str] = {}
    for part in text.strip().rstrip(";").split(";"):
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise ValueError(
                "is not a connection string: expected Key=Value pairs separated by ';', "
                "e.g. Endpoint=sb://<namespace>.servicebus.windows.net/;"
                "SharedAccessKeyName=<policy>;SharedAccessKey=<key>"
            )
        settings[key.strip().lower()] = value.strip()
    endpoint = settings.get("endpoint", "")
    host = urlsplit(endpoint).netloc if "://" in endpoint else ""
    if not host:
        raise ValueError(
            "has no Endpoint=sb://<namespace>.servicebus.windows.net/ (the namespace's address)"
        )
    policy, shared_key = settings.get("sharedaccesskeyname"), settings.get("sharedaccesskey")
    signature = settings.get("sharedaccesssignature")
    if bool(policy) != bool(shared_key):
        raise ValueError("needs both SharedAccessKeyName and SharedAccessKey")
    if signature and shared_key:
        raise ValueError("has both SharedAccessKey and SharedAccessSignature: keep one")
    if not (signature or shared_key):
        raise ValueError(
            "has no SharedAccessKey (with SharedAccessKeyName) or SharedAccessSignature; "
            "to sign in with Entra ID, leave it out and name the namespace instead"
        )
    return ConnectionString(
        host=host,
        entity_path=settings.get("entitypath") or None,
        emulator=settings.get("usedevelopmentemulator", "").lower() == "true",
    )


def _checked(value: Secret | None) -> Secret | None:
    text = value.get_secret_value() if value is not None else ""
    if text and text != REFERENCE:  # a reference is checked once resolved
        parse_connection_string(text)
    return value


#: A connection string field: checked when given, a secret.
ConnectionStringValue = Annotated[Secret | None, AfterValidator(_checked)]


def connection_string(value: Secret | None) -> ConnectionString | None:
    """The parsed connection string of a field, or None when unset or not resolved."""
    text = value.get_secret_value() if value is not None else ""
    return parse_connection_string(text) if text and text != REFERENCE else None


def namespace_host(name: str) -> str:
    """A namespace given by name or host as its host, as Dapr completes it (a name without a
    dot gets `.servicebus.windows.net`)."""
    host = name.strip().removeprefix("sb://").strip("/")
    return host if "." in host else f"{host}.servicebus.windows.net"


def emulated(*cleared: str) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """The `Binding.emulate` function of a messaging binding: the broker's development
    connection string as `connectionString`, and the fields in `cleared` (a namespace for
    Entra ID, which cannot be used with a connection string) emptied."""

    def emulate(endpoints: Mapping[str, str]) -> dict[str, str]:
        return {
            "connectionString": development_connection_string(endpoints[EMULATOR]),
            **dict.fromkeys(cleared, ""),
        }

    return emulate


def utc_time(value: Any) -> str:
    """A time of a message as RFC 3339 in UTC, to the millisecond (the services' precision;
    the Functions host hands over .NET's ticks, which would add noise)."""
    if not isinstance(value, datetime):
        return str(value)
    moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return rfc3339(moment.replace(microsecond=moment.microsecond // 1000 * 1000))
