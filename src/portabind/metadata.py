"""Binding metadata models: Dapr's decoding rules on pydantic.

Each binding declares a `BindingMetadata` subclass whose fields carry the Dapr names as
aliases. Decoding follows components-contrib (`kitmd.DecodeMetadata`): keys match
case-insensitively and through aliases, booleans use Dapr's `IsTruthy`, durations take a Go
duration or integer seconds. Unlike Dapr, an unknown key is an error that suggests the nearest
valid name, so a misspelt option never goes silently unused.
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from portabind.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Mapping

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


def parse_duration(value: Any) -> timedelta:
    """A Go duration (`1m30s`, `250ms`, `-5s`) or, failing that, integer seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    text = str(value).strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return timedelta(0)
    parts = _GO_DURATION.findall(body)
    if parts and "".join(number + unit for number, unit in parts) == body:
        return timedelta(seconds=sign * sum(float(n) * _GO_UNITS[u] for n, u in parts))
    try:
        return timedelta(seconds=int(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration: use a Go duration such as 30s, 1m30s, 250ms, "
            "or a whole number of seconds"
        ) from None


def request_ttl(metadata: Mapping[str, str]) -> timedelta | None:
    """Dapr's `metadata.TryGetTTL` for request metadata `ttlInSeconds` or `ttl` (any case):
    a Go duration, a negative one counting as 0, or whole seconds, which must be > 0.
    None when neither key is given."""
    lowered = {key.lower(): value for key, value in metadata.items()}
    text = (lowered.get("ttlinseconds") or lowered.get("ttl") or "").strip()
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

    @classmethod
    def dapr_names(cls) -> dict[str, str]:
        """Every accepted key (lower-cased, aliases included) → the canonical Dapr name."""
        names: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            canonical = info.alias or name
            for key in (canonical, *_extra(info).get("aliases", [])):
                names[str(key).lower()] = canonical
        return names

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
        """Map keys case-insensitively and through aliases; reject unknown keys by name."""
        if not isinstance(values, dict):
            return values
        names = cls.dapr_names()
        mapped: dict[str, Any] = {}
        for key, value in values.items():
            canonical = names.get(str(key).lower())
            if canonical is None:
                close = difflib.get_close_matches(str(key).lower(), names, n=1)
                hint = f"; did you mean {names[close[0]]!r}?" if close else ""
                valid = ", ".join(sorted(set(names.values())))
                raise ValueError(f"unknown {cls.key_noun} {key!r}{hint} (valid: {valid})")
            mapped[canonical] = value
        return mapped

    def secret(self, name: str) -> str | None:
        """The plain value of a secret field (by attribute name), or None when unset."""
        value = getattr(self, name)
        if value is None:
            return None
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class BindingMetadata(SettingsModel):
    """Base of every binding's metadata model."""

    key_noun: ClassVar[str] = "metadata field"

    #: The binding type this model belongs to, for messages.
    binding_type: ClassVar[str] = ""


Secret = SecretStr
