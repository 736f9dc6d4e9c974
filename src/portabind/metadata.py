"""Binding metadata models: Dapr's decoding rules, declared without importing pydantic.

Each binding declares a `BindingMetadata` subclass whose fields carry the Dapr names
(`setting()`). Decoding follows components-contrib (`kitmd.DecodeMetadata`): keys match
case-insensitively and through aliases (when several name one field, the one Dapr reads
first wins), booleans use Dapr's `IsTruthy`, durations take a Go duration or integer seconds.
As in Dapr, a key the binding does not read is ignored when decoding; `portabind validate`
warns about it with the nearest valid name (`portabind.tooling.project`).

Two ways in, one model. Validation (`validate`, the builds, `portabind run`) goes through
pydantic: on first use, a model class gets a pydantic twin built from its declaration
(`_twin`), and `model_validate` returns an instance of the declared class. A built function
reads the values its build validated (`from_validated`, the components snapshot) and checks
only what it resolves itself, its secrets, so its cold start imports no pydantic at all.
The validator markers below (`BeforeValidator`, `AfterValidator`, `Bounds`,
`model_validator`, `field_validator`, `Secret`) are pydantic's, declared here so that a
binding module defines its model without importing pydantic.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, NamedTuple, TypeVar, cast

from portabind.errors import UserError, shorten

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Self

    from pydantic import BaseModel

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
    ttl = ttl_in_seconds = None  # read on every output call: no lower-cased copy
    for key, value in metadata.items():
        lowered = key.lower()
        if lowered == "ttl":
            ttl = value
        elif lowered == "ttlinseconds":
            ttl_in_seconds = value
    # `ttl` first: Dapr looks the keys up in this order (`metadata.TryGetTTL`).
    text = (ttl or ttl_in_seconds or "").strip()
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


# --- what a model declares: pydantic's markers, without pydantic ------------------------------

T = TypeVar("T")


class BeforeValidator(NamedTuple):
    """`Annotated[T, BeforeValidator(func)]`: `func(value)` runs before T's own check."""

    func: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic import BeforeValidator as Before

        return Before(self.func).__get_pydantic_core_schema__(source, handler)


class AfterValidator(NamedTuple):
    """`Annotated[T, AfterValidator(func)]`: `func(value)` runs on the value T's check made."""

    func: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic import AfterValidator as After

        return After(self.func).__get_pydantic_core_schema__(source, handler)


class Bounds:
    """`Annotated[T, Bounds(ge=1)]`: the constraints pydantic's `Field` takes (`ge`, `gt`,
    `min_length`, …). pydantic reads it as annotated-types' grouped metadata (the marker
    attribute and iteration), so the constraints apply where its own would."""

    __is_annotated_types_grouped_metadata__ = True

    def __init__(self, **constraints: Any) -> None:
        self.constraints = constraints

    def __iter__(self) -> Iterator[object]:
        from pydantic import Field

        yield from Field(**self.constraints).metadata


class Secret:
    """A value that must never be shown: its repr and str are masked (pydantic's
    `SecretStr`, which validation accepts as well as text)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def _coerce(cls, value: Any) -> Secret:
        get = getattr(value, "get_secret_value", None)  # pydantic's SecretStr
        return cls(get() if callable(get) else value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        text = core_schema.no_info_after_validator_function(cls, core_schema.str_schema())
        secret = core_schema.no_info_plain_validator_function(cls._coerce)
        return core_schema.union_schema(
            [core_schema.is_instance_schema(cls), text, secret],
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


Truthy = Annotated[bool, BeforeValidator(is_truthy)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Validator(NamedTuple):
    """A validator a model declares (`model_validator`, `field_validator`): `func` as
    pydantic would take it; `fields` empty for a model validator."""

    func: Any
    mode: str
    fields: tuple[str, ...] = ()

    def plain(self, owner: type) -> Callable[..., Any]:
        """`func` bound as the declared class would call it."""
        bound: Callable[..., Any] = self.func.__get__(None, owner)
        return bound


def model_validator(*, mode: str) -> Callable[[T], T]:
    """pydantic's `model_validator`: "before" takes the raw values (a classmethod), "after"
    the instance, returning it (or a copy)."""

    def declare(func: T) -> T:
        return cast("T", _Validator(func, mode))

    return declare


def field_validator(*fields: str, mode: str = "after") -> Callable[[T], T]:
    """pydantic's `field_validator` (a classmethod taking the value) for `fields`."""

    def declare(func: T) -> T:
        return cast("T", _Validator(func, mode, fields))

    return declare


class Setting(NamedTuple):
    """A field declared with `setting()`."""

    name: str
    default: Any
    aliases: tuple[str, ...]
    secret: bool
    description: str

    @property
    def required(self) -> bool:
        return self.default is ...


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
    return Setting(name, default, aliases, secret, description)


# --- the models ----------------------------------------------------------------------------


class SettingsModel:
    """A model of string settings declared with `setting()`, keyed by Dapr's rules: a
    binding's metadata (`BindingMetadata`) or portabind's annotations
    (`portabind.annotations.Annotations`). Instances are immutable."""

    #: What one key is called in messages.
    key_noun: ClassVar[str] = "field"

    #: Fields whose keys Dapr tries in another order than the name, then the aliases as
    #: declared: canonical name → every key of the field, in the order Dapr tries them.
    lookup_order: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    #: Attribute name → its declaration, the bases' first (set for each class).
    settings: ClassVar[dict[str, Setting]] = {}
    _validators: ClassVar[tuple[_Validator, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {name: value for name, value in vars(cls).items() if isinstance(value, Setting)}
        annotated = {
            name
            for name, annotation in vars(cls).get("__annotations__", {}).items()
            if "ClassVar" not in str(annotation)
        }
        twin = "declared" in vars(cls)  # a pydantic twin (`_build_twin`) declares nothing
        if annotated != set(own) and not twin:  # validation and a function read the same
            raise TypeError(
                f"{cls.__qualname__}: every field is annotated and declared with setting() "
                f"({', '.join(sorted(annotated ^ set(own)))} is not)"
            )
        for name in own:
            delattr(cls, name)  # an instance always holds every field itself
        inherited: dict[str, Setting] = {}
        validators: dict[Any, _Validator] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, SettingsModel):
                inherited.update(base.settings)
                validators.update({v.func: v for v in base._validators})
        cls.settings = {**inherited, **own}
        validators.update({v.func: v for v in vars(cls).values() if isinstance(v, _Validator)})
        cls._validators = tuple(validators.values())

    def __init__(self, **values: Any) -> None:
        """Validate `values` (keys as Dapr writes them), as `model_validate` does."""
        self.__dict__.update(self.model_validate(values).__dict__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: use model_copy(update=...)")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == cast("Self", other)._values()

    def __hash__(self) -> int:
        return hash((type(self), *self._values().values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values().items())
        return f"{type(self).__name__}({fields})"

    def _values(self) -> dict[str, Any]:
        return {name: self.__dict__[name] for name in self.settings}

    @classmethod
    def _of(cls, values: Mapping[str, Any], fields_set: Iterable[str]) -> Self:
        instance = object.__new__(cls)
        instance.__dict__.update(values)
        instance.__dict__["_fields_set"] = frozenset(fields_set)
        return instance

    # --- the pydantic-style surface the tooling and tests use -------------------------------

    @classmethod
    def model_validate(cls, values: Any) -> Self:
        """Validate `values` (keys as Dapr writes them) into an instance; raises pydantic's
        `ValidationError`."""
        validated = cls._twin().model_validate(values)
        return cls._of(validated.__dict__, validated.model_fields_set)

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with `update` (attribute name → value) applied, unvalidated (as pydantic's)."""
        changes = dict(update or {})
        return self._of({**self._values(), **changes}, self.model_fields_set | set(changes))

    def model_dump(self, *, by_alias: bool = False) -> dict[str, Any]:
        """The fields' values by attribute name, or with `by_alias` by Dapr name."""
        values = self._values()
        if by_alias:
            return {self.settings[name].name: value for name, value in values.items()}
        return values

    @property
    def model_fields_set(self) -> frozenset[str]:
        """The attributes the values set (the others hold their defaults)."""
        fields_set: frozenset[str] = self.__dict__["_fields_set"]
        return fields_set

    # --- keys --------------------------------------------------------------------------------

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
        return {
            s.name: cls.lookup_order.get(s.name, (s.name, *s.aliases))
            for s in cls.settings.values()
        }

    @classmethod
    def ignored_keys(cls) -> frozenset[str]:
        """Keys (lower-cased) accepted and dropped: declared, but no field reads them."""
        return frozenset()

    @classmethod
    def secret_names(cls) -> frozenset[str]:
        return frozenset(s.name for s in cls.settings.values() if s.secret)

    @classmethod
    def required_names(cls) -> list[str]:
        return [s.name for s in cls.settings.values() if s.required]

    @classmethod
    def map_keys(cls, values: Any) -> Any:
        """Map keys case-insensitively and through aliases, the key Dapr reads first winning
        when several set one field; reject unknown keys by name."""
        if not isinstance(values, dict):
            return values
        names = cls.dapr_names()
        ignored = cls.ignored_keys()
        values = {key: value for key, value in values.items() if str(key).lower() not in ignored}
        for key in values:
            if str(key).lower() not in names:
                import difflib  # only for a message: not on every start-up

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
        return value.get_secret_value() if isinstance(value, Secret) else str(value)

    # --- a built function's way in: values its build validated --------------------------------

    @classmethod
    def from_validated(
        cls, fields: Mapping[str, Any], resolved: Mapping[str, tuple[str, str]]
    ) -> Self:
        """An instance from a build's validated values (`plain_fields`, JSON-decoded) and the
        fields the function resolves itself: attribute → (kind, resolved text), the kind
        "secret" or "text" (`plain_kind`). Those fields get the checks their declaration
        gives them (field validators), then the model's "after" validators run, as
        validation would run them; nothing else is checked again."""
        values = {name: _decoded(value) for name, value in fields.items()}
        fields_set = set(values)
        for name, (kind, text) in resolved.items():
            values[name] = cls._checked_field(name, Secret(text) if kind == "secret" else text)
            fields_set.add(name)
        for name, declared in cls.settings.items():
            values.setdefault(name, declared.default)
        instance = cls._of(values, fields_set)
        if resolved:
            for validator in cls._validators:
                if not validator.fields and validator.mode == "after":
                    instance = validator.func(instance)
        return instance

    @classmethod
    def _checked_field(cls, name: str, value: Any) -> Any:
        for mode in ("before", "after"):
            for validator in cls._validators:
                if name in validator.fields and validator.mode == mode:
                    value = validator.plain(cls)(value)
        return value

    def plain_fields(self, runtime: frozenset[str]) -> dict[str, Any] | None:
        """The validated values but `runtime` (attributes the function resolves itself),
        as JSON-able data `from_validated` reads back; None when one is of a kind it cannot
        write."""
        encoded: dict[str, Any] = {}
        for name, value in self._values().items():
            if name in runtime or name not in self.model_fields_set:
                continue
            plain = _encoded(value)
            if plain is _UNENCODABLE:
                return None
            encoded[name] = plain
        return encoded

    @classmethod
    def plain_kind(cls, name: str) -> str | None:
        """How a function turns a field's resolved text into its value without pydantic:
        "secret" (a `Secret`), "text" (the text itself), or None when only validation can
        (its type is another, or carries its own validators)."""
        field = cls._twin().model_fields[name]
        if field.metadata:
            return None
        kinds: dict[Any, str] = {
            str: "text",
            Secret: "secret",
            str | None: "text",
            Secret | None: "secret",
        }
        return kinds.get(field.annotation)

    # --- the pydantic twin (validation) --------------------------------------------------------

    @classmethod
    def _twin(cls) -> type[BaseModel]:
        """The pydantic model validating this class's declaration, built on first use."""
        twin = cls.__dict__.get("_pydantic")
        if twin is None:
            twin = _build_twin(cls)
            type.__setattr__(cls, "_pydantic", twin)
        return cast("type[BaseModel]", twin)


_UNENCODABLE = object()


def _encoded(value: Any) -> Any:
    """A validated value as JSON-able data (`_decoded` reads it back)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, timedelta):
        return {"seconds": value.total_seconds()}
    if isinstance(value, Enum):
        kind = type(value)
        return {"enum": f"{kind.__module__}:{kind.__qualname__}", "value": value.value}
    if isinstance(value, tuple):
        items = [_encoded(item) for item in value]
        return _UNENCODABLE if _UNENCODABLE in items else {"tuple": items}
    return _UNENCODABLE


def _decoded(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "seconds" in value:
        return timedelta(seconds=value["seconds"])
    if "tuple" in value:
        return tuple(_decoded(item) for item in value["tuple"])
    module, _, qualname = value["enum"].partition(":")
    kind: Any = sys.modules[module]
    for part in qualname.split("."):
        kind = getattr(kind, part)
    return kind(value["value"])


def _build_twin(cls: type[SettingsModel]) -> type[BaseModel]:
    """`cls` as a pydantic model: its own settings as pydantic fields, its own validators as
    pydantic's, on the twins of its bases. The twin subclasses `cls` too (after
    `BaseModel`, which keeps pydantic's behaviour), so the validators find the model's
    methods and class attributes where they were declared."""
    import inspect

    import pydantic

    if cls is SettingsModel:
        return _root_twin()
    annotations = inspect.get_annotations(cls)
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__annotations__": {n: a for n, a in annotations.items() if n in cls.settings},
        "declared": cls,
    }
    for name in namespace["__annotations__"]:
        declared = cls.settings[name]
        namespace[name] = pydantic.Field(
            declared.default, alias=declared.name, description=declared.description
        )
    for name, value in vars(cls).items():
        if isinstance(value, _Validator):
            decorate = (
                pydantic.field_validator(*value.fields, mode=value.mode)  # type: ignore[call-overload]
                if value.fields
                else pydantic.model_validator(mode=value.mode)  # type: ignore[call-overload]
            )
            namespace[name] = decorate(value.func)
    parents = tuple(base._twin() for base in cls.__bases__ if issubclass(base, SettingsModel))
    return cast("type[BaseModel]", type(cls.__name__, (*parents, cls), namespace))


def _root_twin() -> type[BaseModel]:
    from pydantic import BaseModel, ConfigDict, model_validator

    # pydantic's members come first: `model_fields_set` and the rest are pydantic's here.
    class SettingsTwin(BaseModel, SettingsModel):  # type: ignore[misc]
        model_config = ConfigDict(
            populate_by_name=True, frozen=True, extra="forbid", arbitrary_types_allowed=True
        )
        #: The declared class this twin validates for.
        declared: ClassVar[type[SettingsModel]] = SettingsModel

        @model_validator(mode="before")
        @classmethod
        def _dapr_keys(cls, values: Any) -> Any:
            return cls.declared.map_keys(values)

    return SettingsTwin


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
