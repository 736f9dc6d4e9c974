"""What a handler receives (`BindingEvent`) and what an output binding returns
(`BindingResponse`), plus the small conversions every adapter shares so that the same
message looks the same on every target (docs/events.md)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping

# `import portabind` loads this module: json and datetime are imported by the functions that
# use them, and `typing` not at all (the name alone is what type checkers look for).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from typing import Any, ClassVar


def _by_lower_key(items: Mapping[str, str] | None) -> dict[str, tuple[str, str]]:
    return {key.lower(): (key, value) for key, value in (items or {}).items()}


class Metadata(Mapping[str, str]):
    """String-to-string metadata whose keys compare case-insensitively, as Dapr carries
    them in HTTP headers. Iteration yields the keys as the producer spelt them."""

    __slots__ = ("_build", "_items")
    _build: Callable[[], Mapping[str, str]]  # deferred metadata, until `_items` is made
    _items: dict[str, tuple[str, str]]  # lower-case key -> (key as spelt, value)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = _by_lower_key(items)

    @classmethod
    def deferred(cls, build: Callable[[], Mapping[str, str]]) -> Metadata:
        """Metadata that `build` makes when it is first read. Mapping a message's metadata
        is most of what delivering it costs, and many handlers never read it."""
        metadata = cls.__new__(cls)
        metadata._build = build
        return metadata

    def _entries(self) -> dict[str, tuple[str, str]]:
        try:
            return self._items
        except AttributeError:  # deferred, and read for the first time
            self._items = _by_lower_key(self._build())
            return self._items

    def __getitem__(self, key: str) -> str:
        return self._entries()[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._entries().values())

    def items(self) -> ItemsView[str, str]:
        return _MetadataItems(self)

    def __len__(self) -> int:
        return len(self._entries())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._entries()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return {k.lower(): v for k, v in self.items()} == {
            str(k).lower(): v for k, v in other.items()
        }

    def __hash__(self) -> int:  # pragma: no cover - mappings are not hashable
        raise TypeError("unhashable type: 'Metadata'")

    def __reduce__(self) -> tuple[type[Metadata], tuple[dict[str, str]]]:
        # By value: deferred metadata holds a function, which need not pickle.
        return Metadata, (dict(self.items()),)

    def __repr__(self) -> str:
        return f"Metadata({dict(self.items())!r})"


class _MetadataItems(ItemsView[str, str]):
    """`Metadata.items()`: the pairs as they are kept, not each key looked up again (Mapping's
    way), which made reading request metadata (`request_ttl`) cost a lookup per key."""

    __slots__ = ()
    _mapping: Metadata

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._mapping._entries().values())


#: The metadata of a response that has none, shared: a Metadata cannot be changed.
_NO_METADATA = Metadata()


def _json(data: bytes) -> Any:
    import json

    return json.loads(data) if data else None


class _Value:
    """What a frozen dataclass gives: fields read-only (properties over private slots),
    equality and repr by field, pickling and copying by field. Not a dataclass: importing
    `dataclasses` imports `inspect`, most of what `import portabind` would cost; and plain
    slots make an event faster to build, once per delivered record."""

    __slots__ = ()
    #: The public fields, in the constructor's order.
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Value) or type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), self._fields()


class BindingEvent(_Value):
    """One delivered message: `data` as the producer sent it, metadata as strings."""

    __slots__ = ("_data", "_metadata", "_name")
    FIELDS = ("name", "data", "metadata")

    def __init__(self, name: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self._name = name
        self._data = data
        self._metadata = metadata if isinstance(metadata, Metadata) else Metadata(metadata)

    @property
    def name(self) -> str:
        """The input component that delivered the event."""
        return self._name

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def metadata(self) -> Metadata:
        return self._metadata

    def text(self) -> str:
        return self._data.decode("utf-8")

    def json(self) -> Any:
        return _json(self._data)


class BindingResponse(_Value):
    """The result of an output binding call, shaped like the Dapr SDK's `BindingResponse`.
    `data is None` means the binding returned nothing (Dapr's HTTP 204)."""

    __slots__ = ("_data", "_metadata")
    FIELDS = ("data", "metadata")

    def __init__(
        self, data: bytes | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        self._data = data
        if isinstance(metadata, Metadata):
            self._metadata = metadata
        else:  # most responses carry none
            self._metadata = Metadata(metadata) if metadata else _NO_METADATA

    @property
    def data(self) -> bytes | None:
        return self._data

    @property
    def metadata(self) -> Metadata:
        return self._metadata

    def text(self) -> str:
        return (self.data or b"").decode("utf-8")

    def json(self) -> Any:
        return _json(self.data or b"")

    @classmethod
    def of_json(cls, value: Any, metadata: Mapping[str, str] | None = None) -> BindingResponse:
        return cls(compact_json(value), Metadata(metadata))


#: The response of an operation that returns nothing (Dapr's 204), shared: a response cannot
#: be changed, and making one per call is a measurable part of a fast output's call.
NO_CONTENT = BindingResponse()

#: `compact_json`'s encoder, once made (not at import: `import portabind` loads no json).
_COMPACT_JSON: list[Callable[[Any], str]] = []


def compact_json(value: Any) -> bytes:
    """`value` as compact JSON in UTF-8 (no spaces after separators, as Go's encoder writes
    it), with one encoder made on first use: `json.dumps` given options makes one per call."""
    encode = _COMPACT_JSON
    if not encode:
        import json

        encode.append(json.JSONEncoder(separators=(",", ":")).encode)
    return encode[0](value).encode("utf-8")


def to_bytes(data: Any) -> bytes:
    """The payload of an output call: bytes as is, text as UTF-8, anything else as JSON."""
    if data is None:
        return b""
    # Tuples, not `X | Y`: isinstance checks a union several times slower, on every output
    # call. JSON first, the usual payload: no pydantic model is a dict or a list.
    if isinstance(data, (dict, list)):
        return compact_json(data)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if hasattr(data, "model_dump_json"):  # a pydantic model
        return str(data.model_dump_json()).encode("utf-8")
    return compact_json(data)


def unquote(data: bytes) -> bytes:
    """Dapr's `strconv.Unquote` step: the HTTP output API JSON-encodes `data`, so a string
    arrives with its quotes; storage bindings strip them. Anything else passes unchanged."""
    if len(data) >= 2 and data[:1] == b'"' and data[-1:] == b'"':
        import json

        try:
            value = json.loads(data)
        except ValueError:
            return data
        if isinstance(value, str):
            return value.encode("utf-8")
    return data


def rfc3339(moment: datetime | float | int) -> str:
    """A time as RFC 3339 in UTC; numbers are Unix seconds."""
    from datetime import datetime, timezone

    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def metadata_value(value: Any) -> str:
    """A metadata value as a string: booleans `true`/`false`, lists joined with `,`
    (docs/events.md)."""
    from datetime import datetime

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, list | tuple):
        return ",".join(metadata_value(item) for item in value)
    return str(value)
