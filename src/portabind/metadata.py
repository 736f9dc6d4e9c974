"""Binding metadata models: Dapr's decoding rules on pydantic.

Each binding declares a `BindingMetadata` subclass whose fields carry the Dapr names as
aliases. Decoding follows components-contrib (`kitmd.DecodeMetadata`): keys match
case-insensitively and through aliases (when several name one field, the one Dapr reads
first wins), booleans use Dapr's `IsTruthy`, durations take a Go duration or integer seconds.
As in Dapr, a key the binding does not read is ignored when decoding; `portabind validate`
warns about it with the nearest valid name (`portabind.tooling.project`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from portabind.errors import UserError, shorten

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

TRUTHY = frozenset({"y", "yes", "true", "t", "on", "1"})

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def is_truthy(value: Any) -> bool:
    """Dapr's `utils.IsTruthy`: y, yes, true, t, on, 1 (any case); anything else is false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUTHY


#: Go's time.Duration counts nanoseconds in an int64: no Dapr duration is longer.
LONGEST_DURATION_SECONDS = (2**63 - 1) / 1e9


def parse_duration(value: Any) -> timedelta:
    """A Go duration (`1m30s`, `250ms`, `-5s`) or, failing that, integer seconds, no longer
    than a Go duration holds (about 292 years)."""
    if isinstance(value, timedelta):
        return value
    seconds = _duration_seconds(value)
    if not abs(seconds) <= LONGEST_DURATION_SECONDS:  # also refuses NaN
        raise ValueError(
            f"{shorten(str(value))!r} is longer than a Go duration holds (about 292 years)"
        )
    return timedelta(seconds=seconds)


def _duration_seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _GO_DURATION.findall(body)
    if parts and "".join(number + unit for number, unit in parts) == body:
        return sign * sum(float(n) * _GO_UNITS[u] for n, u in parts)
    if re.fullmatch(r"[+-]?[0-9]{1,30}", text):
        return float(int(text))
    raise ValueError(
        f"{shorten(text)!r} is not a duration: use a Go duration such as 30s, 1m30s, 250ms, "
        "or a whole number of seconds"
    )


def request_ttl(metadata: Mapping[str, str]) -> timedelta | None:
    """Dapr's `metadata.TryGetTTL` for request metadata `ttl` or `ttlInSeconds` (any case):
    a Go duration, a negative one counting as 0, or whole seconds, which must be > 0.
    None when neither key is given."""
    lowered = {key.lower(): value for key, value in metadata.items()}
    # `ttl` first: Dapr looks the keys up in this order (`metadata.TryGetTTL`).
    text = (lowered.get("ttl") or lowered.get("ttlinseconds") or "").strip()
    if not text:
        return None
    # Go's ParseDuration accepts a bare "0" only; any other plain integer is seconds.
    if re.fullmatch(r"[+-]?[0-9]+", text) and text.lstrip("+-") != "0":
        if int(text) <= 0:
            raise UserError(f"request metadata ttl {text!r} must be greater than 0")
        return timedelta(seconds=int(text))
    try:
        return max(parse_duration(text), timedelta(0))
    except ValueError as error:
        raise UserError(f"request metadata ttl: {error}") from None


Truthy = Annotated[bool, BeforeValidator(is_truthy)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def setting(
    name: str,
    default: Any = ...,
    *,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
    description: str = "",
) -> Any:
    """Declare a metadata field by its Dapr name (`name`), with Dapr's aliases and default,
    or an annotation by its key without the `portabind.io/` prefix. `secret=True` marks a
    value that must never be written to build output, logs or error messages."""
    return Field(
        default,
        alias=name,
        description=description,
        json_schema_extra={"aliases": list(aliases), "secret": secret},
    )


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


class SettingsModel(BaseModel):
    """A model of string settings declared with `setting()`, keyed by Dapr's rules: a
    binding's metadata (`BindingMetadata`) or portabind's annotations
    (`portabind.annotations.Annotations`)."""

    model_config = ConfigDict(
        populate_by_name=True, frozen=True, extra="forbid", arbitrary_types_allowed=True
    )

    #: What one key is called in messages.
    key_noun: ClassVar[str] = "field"

    #: Fields whose keys Dapr tries in another order than the name, then the aliases as
    #: declared: canonical name → every key of the field, in the order Dapr tries them.
    lookup_order: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @classmethod
    def dapr_names(cls) -> dict[str, str]:
        """Every accepted key (lower-cased, aliases included) → the canonical Dapr name."""
        return {
            key.lower(): canonical for canonical, keys in cls.field_keys().items() for key in keys
        }

    @classmethod
    def field_keys(cls) -> dict[str, tuple[str, ...]]:
        """Canonical name → the keys that set the field, in the order Dapr looks them up:
        when a component gives several, the first one given is used."""
        keys: dict[str, tuple[str, ...]] = {}
        for name, info in cls.model_fields.items():
            canonical = info.alias or name
            keys[canonical] = cls.lookup_order.get(
                canonical, (canonical, *_extra(info).get("aliases", []))
            )
        return keys

    @classmethod
    def ignored_keys(cls) -> frozenset[str]:
        """Keys (lower-cased) accepted and dropped: declared, but no field reads them."""
        return frozenset()

    @classmethod
    def secret_names(cls) -> frozenset[str]:
        return frozenset(
            info.alias or name
            for name, info in cls.model_fields.items()
            if _extra(info).get("secret")
        )

    @classmethod
    def required_names(cls) -> list[str]:
        return [info.alias or name for name, info in cls.model_fields.items() if info.is_required()]

    @model_validator(mode="before")
    @classmethod
    def _dapr_keys(cls, values: Any) -> Any:
        """Map keys case-insensitively and through aliases, the key Dapr reads first winning
        when several set one field; reject unknown keys by name."""
        if not isinstance(values, dict):
            return values
        names = cls.dapr_names()
        ignored = cls.ignored_keys()
        values = {key: value for key, value in values.items() if str(key).lower() not in ignored}
        for key in values:
            if str(key).lower() not in names:
                close = difflib.get_close_matches(str(key).lower(), names, n=1)
                hint = f"; did you mean {names[close[0]]!r}?" if close else ""
                valid = ", ".join(sorted(set(names.values())))
                raise ValueError(f"unknown {cls.key_noun} {key!r}{hint} (valid: {valid})")
        given = {str(key).lower(): value for key, value in values.items()}
        mapped: dict[str, Any] = {}
        for canonical, keys in cls.field_keys().items():
            found = next((key.lower() for key in keys if key.lower() in given), None)
            if found is not None:
                mapped[canonical] = given[found]
        return mapped

    def secret(self, name: str) -> str | None:
        """The plain value of a secret field (by attribute name), or None when unset."""
        value = getattr(self, name)
        if value is None:
            return None
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class BindingMetadata(SettingsModel):
    """Base of every binding's metadata model.

    Besides its fields, a model says what becomes of the other keys Dapr defines for the
    type (`tests/bindings/dapr_keys.yaml` lists them): `no_effect` keys are accepted and
    `validate` warns that they change nothing here; `deprecated` keys are accepted (as an
    alias, or read by `upgrade`, or ignored as Dapr ignores them) and `validate` says what
    to write instead.
    """

    key_noun: ClassVar[str] = "metadata field"

    #: The binding type this model belongs to, for messages.
    binding_type: ClassVar[str] = ""
    #: Keys Dapr defines that change nothing here → why. Fields may be listed too: their
    #: values are still checked as Dapr checks them.
    no_effect: ClassVar[Mapping[str, str]] = {}
    #: Keys Dapr has deprecated → what to write instead (or why to drop them).
    deprecated: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def ignored_keys(cls) -> frozenset[str]:
        names = cls.dapr_names()
        declared = (key.lower() for key in (*cls.no_effect, *cls.deprecated))
        return frozenset(key for key in declared if key not in names)

    @classmethod
    def upgrade(cls, values: Mapping[str, str]) -> dict[str, str]:
        """The values with deprecated keys rewritten as Dapr rewrites them before decoding
        (a component's `upgradeMetadata`), for a deprecated key that is not simply an alias.
        Override it; the default changes nothing."""
        return dict(values)


Secret = SecretStr
