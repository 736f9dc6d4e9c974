"""portabind's own settings: a component's `portabind.io/` annotations, typed and validated.

Every binding and every target declares the annotations it reads as an `Annotations` model
(keys declared with `setting()` under their name without the prefix, matched
case-insensitively as Dapr matches metadata keys), with the value kinds below, each parsed in
one place. `parse_annotations` reads a component's annotations against the models that apply
to it: the binding's own (`Binding.annotations`) and those each target declares in
`portabind.adapters.<target>.annotations` (`BY_TYPE` for a binding type, `COMMON` for every
type). The namespace is portabind's own, so a key none of them declares can only be a typo:
an error naming the nearest declared key.

At run time a binding reads its own model only (`binding_annotations`): the other keys are
the targets', checked where every model is known (validation, the builds).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from portabind.components import ANNOTATION_PREFIX
from portabind.errors import UserError, ValidationFailed
from portabind.metadata import (
    TRUTHY,
    AfterValidator,
    BeforeValidator,
    SettingsModel,
    parse_duration,
    setting,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from portabind.binding import Binding
    from portabind.components import Component

A = TypeVar("A", bound="Annotations")
T = TypeVar("T")

FALSY = frozenset({"n", "no", "false", "f", "off", "0"})
#: `arn:<partition>:<service>:<region>:<account>:<resource>`; region and account may be empty
#: (S3 bucket ARNs have neither).
_ARN = re.compile(r"arn:aws[a-z-]*:([a-z0-9-]+):[a-z0-9-]*:(?:\d{12})?:.+")


class Annotations(SettingsModel):
    """Base of every annotations model."""

    key_noun: ClassVar[str] = "annotation"


def field_name(key: str) -> str:
    """Where an annotation sits in the component, for `ComponentError.field`."""
    return f"metadata.annotations.{ANNOTATION_PREFIX}{key}"


# --- value kinds: each parsed once, here -------------------------------------------------------


def parse_flag(value: Any) -> bool:
    """A yes/no annotation: Dapr's truthy words are true, their opposites (n, no, false, f,
    off, 0) false. Unlike Dapr's `IsTruthy` anything else is an error, not false: in
    portabind's namespace a value that is neither is a mistake."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUTHY or text in FALSY:
        return text in TRUTHY
    raise ValueError('must be "true" or "false"')


#: A yes/no annotation (`parse_flag`).
Flag = Annotated[bool, BeforeValidator(parse_flag)]


def whole_number(low: int, high: int | None = None) -> BeforeValidator:
    """The validator of `Annotated[int, whole_number(low, high)]`: an integer from `low` to
    `high` (no upper bound when None)."""
    expected = (
        f"a whole number from {low} to {high}"
        if high is not None
        else f"a whole number of at least {low}"
    )

    def parse(value: Any) -> int:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"must be {expected}")
        number = int(text)
        if number < low or (high is not None and number > high):
            raise ValueError(f"must be {expected}")
        return number

    return BeforeValidator(parse)


def _go_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = ((hours, "h"), (minutes, "m"), (secs, "s"))
    return "".join(f"{count}{unit}" for count, unit in parts if count) or "0s"


def whole_seconds(high: int) -> BeforeValidator:
    """The validator of `Annotated[int, whole_seconds(high)]`: a duration (a Go duration
    such as `1m30s`, or a number of seconds, `portabind.metadata.parse_duration`) of whole
    seconds from 0 to `high`, as the number of seconds (what AWS settings take)."""
    expected = (
        f"whole seconds from 0 to {_go_duration(high)} (a Go duration such as 30s or 1m30s, "
        "or a number)"
    )

    def parse(value: Any) -> int:
        try:
            seconds = parse_duration(value).total_seconds()
        except ValueError:
            raise ValueError(f"must be {expected}") from None
        if not (seconds.is_integer() and 0 <= seconds <= high):
            raise ValueError(f"must be {expected}")
        return int(seconds)

    return BeforeValidator(parse)


class Choice(str, Enum):
    """Base of an enumerated annotation: one of the members' values, in any case
    (`latest` is `LATEST`)."""

    @classmethod
    def _missing_(cls, value: object) -> Choice | None:
        text = str(value).strip().lower()
        return next((member for member in cls if member.value.lower() == text), None)


def arn(*services: str, words: tuple[str, ...] = ()) -> AfterValidator:
    """The validator of `Annotated[str, arn(service, ...)]`: the ARN of a resource of one of
    `services` (`sqs`, `sns`, `kafka`, …), or one of `words` (such as `dlq`)."""
    allowed = " or ".join(
        [*(f"an arn:aws:{service}:… ARN" for service in services), *map(repr, words)]
    )

    def check(value: str) -> str:
        text = value.strip()
        found = _ARN.fullmatch(text)
        if text in words or (found is not None and found.group(1) in services):
            return text
        raise ValueError(f"must be {allowed}")

    return AfterValidator(check)


def text_matching(pattern: str, description: str) -> AfterValidator:
    """The validator of `Annotated[str, text_matching(pattern, description)]`: text that
    matches `pattern` whole; `description` says what that is in the error."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        text = value.strip()
        if compiled.fullmatch(text) is None:
            raise ValueError(f"must be {description}")
        return text

    return AfterValidator(check)


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _unique(values: tuple[T, ...]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(values))


#: A comma-separated list (blanks and repeats dropped, order kept), each item of type T.
CommaList = Annotated[tuple[T, ...], BeforeValidator(_split_commas), AfterValidator(_unique)]


class ExtensionTrigger(Annotations):
    """`trigger`: turn on the trigger portabind adds to a type Dapr gives no input direction
    (`bindings.http`; on AWS also `bindings.aws.sns`, `bindings.aws.s3`,
    `bindings.aws.dynamodb`)."""

    trigger: Flag = setting("trigger", False, description="turn on the extension trigger")


# --- parsing -------------------------------------------------------------------------------


class ParsedAnnotations:
    """What `parse_annotations` returns: one instance per declared model, by model."""

    def __init__(self, instances: Mapping[type[Annotations], Annotations]) -> None:
        self._instances = dict(instances)

    def __getitem__(self, model: type[A]) -> A:
        instance = self._instances[model]
        assert isinstance(instance, model)
        return instance

    def instances(self) -> tuple[Annotations, ...]:
        return tuple(self._instances.values())


def _owners(models: Iterable[type[Annotations]]) -> dict[str, type[Annotations]]:
    """Every accepted key (lower-cased) → the model declaring it. A key declared by two
    models is a mistake in portabind: each annotation is declared once."""
    owners: dict[str, type[Annotations]] = {}
    for model in models:
        for key, name in model.dapr_names().items():
            other = owners.setdefault(key, model)
            if other is not model:
                raise TypeError(
                    f"annotation {name!r} is declared by both {other.__qualname__} and "
                    f"{model.__qualname__}"
                )
    return owners


def _problem(component: Component, model: type[Annotations], detail: Any) -> UserError:
    """One pydantic error as the component's error, naming the annotation; the value is
    quoted unless the annotation is secret."""
    location = detail["loc"]
    key = str(location[0]) if location else None
    if detail["type"] == "missing":
        return component.error(
            "required annotation is missing", field=field_name(key) if key else None
        )
    message = str(detail["msg"]).removeprefix("Value error, ")
    if len(location) > 1:  # an item of a list
        message = f"item {int(location[1]) + 1}: {message}"
    if key not in model.secret_names():
        message += f", got {detail['input']!r}"
    return component.error(message, field=field_name(key) if key else "metadata.annotations")


def parse_annotations(
    component: Component, models: Iterable[type[Annotations]], *, partial: bool = False
) -> ParsedAnnotations:
    """The component's `portabind.io/` annotations parsed into each of `models`. Raises a
    `ComponentError` (several: `ValidationFailed`) naming the file, the component and the
    annotation for a value of the wrong kind, and for a key none of `models` declares (with
    the nearest declared key). `partial`: `models` are only some of those that apply (a
    binding's own, read at run time), so keys they do not declare are left to the others."""
    declared = tuple(dict.fromkeys(models))
    owners = _owners(declared)
    values: dict[type[Annotations], dict[str, str]] = {model: {} for model in declared}
    for key, value in component.annotations.items():
        owner = owners.get(key.lower())
        if owner is not None:
            values[owner][key] = value
    problems: list[UserError] = []
    if not partial:
        names = {key: model.dapr_names()[key] for key, model in owners.items()}
        problems += unknown_annotations(component, names)
    from pydantic import ValidationError

    instances: dict[type[Annotations], Annotations] = {}
    for model, given in values.items():
        try:
            instances[model] = model.model_validate(given)
        except ValidationError as error:
            problems.extend(_problem(component, model, detail) for detail in error.errors())
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
    return ParsedAnnotations(instances)


def unknown_annotations(component: Component, names: Mapping[str, str]) -> list[UserError]:
    """An error for each of the component's annotations that `names` (every declared key,
    lower-cased → its declared spelling) lacks, naming the nearest declared key."""
    valid = ", ".join(sorted(set(names.values())))
    problems: list[UserError] = []
    for key in component.annotations:
        if key.lower() in names:
            continue
        import difflib  # only for a message: not on every start-up

        close = difflib.get_close_matches(key.lower(), names, n=1)
        problems.append(
            component.error(
                f"unknown annotation {ANNOTATION_PREFIX}{key} for {component.type}",
                field=field_name(key),
                hint=(f"did you mean {names[close[0]]!r}? " if close else "")
                + (f"{component.type} takes: {valid}" if valid else "it takes none"),
            )
        )
    return problems


def binding_annotations(component: Component, binding: Binding[Any]) -> Annotations | None:
    """The component's annotations as the binding's own model, None when it declares none
    (what its listener and `provision` receive)."""
    own = binding.annotations
    return parse_annotations(component, (own,), partial=True)[own] if own else None
