"""What a handler receives (`BindingEvent`) and what an output binding returns
(`BindingResponse`), plus the small conversions every adapter shares so that the same
message looks the same on every target (docs/events.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class Metadata(Mapping[str, str]):
    """String-to-string metadata whose keys compare case-insensitively, as Dapr carries
    them in HTTP headers. Iteration yields the keys as the producer spelt them."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for key, value in (items or {}).items():
            self._items[key.lower()] = (key, value)

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return {k.lower(): v for k, v in self.items()} == {
            str(k).lower(): v for k, v in other.items()
        }

    def __hash__(self) -> int:  # pragma: no cover - mappings are not hashable
        raise TypeError("unhashable type: 'Metadata'")

    def __repr__(self) -> str:
        return f"Metadata({dict(self.items())!r})"


def _json(data: bytes) -> Any:
    return json.loads(data) if data else None


@dataclass(frozen=True)
class BindingEvent:
    """One delivered message: `data` as the producer sent it, metadata as strings."""

    name: str
    data: bytes
    metadata: Metadata = field(default_factory=Metadata)

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, Metadata):
            object.__setattr__(self, "metadata", Metadata(self.metadata))

    def text(self) -> str:
        return self.data.decode("utf-8")

    def json(self) -> Any:
        return _json(self.data)


@dataclass(frozen=True)
class BindingResponse:
    """The result of an output binding call, shaped like the Dapr SDK's `BindingResponse`.
    `data is None` means the binding returned nothing (Dapr's HTTP 204)."""

    data: bytes | None = None
    metadata: Metadata = field(default_factory=Metadata)

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, Metadata):
            object.__setattr__(self, "metadata", Metadata(self.metadata))

    def text(self) -> str:
        return (self.data or b"").decode("utf-8")

    def json(self) -> Any:
        return _json(self.data or b"")

    @classmethod
    def of_json(cls, value: Any, metadata: Mapping[str, str] | None = None) -> BindingResponse:
        return cls(json.dumps(value, separators=(",", ":")).encode(), Metadata(metadata))


def to_bytes(data: Any) -> bytes:
    """The payload of an output call: bytes as is, text as UTF-8, anything else as JSON."""
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if hasattr(data, "model_dump_json"):  # a pydantic model
        return str(data.model_dump_json()).encode("utf-8")
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def unquote(data: bytes) -> bytes:
    """Dapr's `strconv.Unquote` step: the HTTP output API JSON-encodes `data`, so a string
    arrives with its quotes; storage bindings strip them. Anything else passes unchanged."""
    if len(data) >= 2 and data[:1] == b'"' and data[-1:] == b'"':
        try:
            value = json.loads(data)
        except ValueError:
            return data
        if isinstance(value, str):
            return value.encode("utf-8")
    return data


def rfc3339(moment: datetime | float | int) -> str:
    """A time as RFC 3339 in UTC; numbers are Unix seconds."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def metadata_value(value: Any) -> str:
    """A metadata value as a string: booleans `true`/`false`, lists joined with `,`
    (docs/events.md)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, list | tuple):
        return ",".join(metadata_value(item) for item in value)
    return str(value)
