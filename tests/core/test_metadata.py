"""Dapr's metadata decoding rules on binding models."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from portabind.components import Component, Value, parse_metadata
from portabind.errors import ComponentError
from portabind.metadata import BindingMetadata, Duration, Truthy, parse_duration, setting


class Example(BindingMetadata):
    queue_name: str = setting("queueName", aliases=("queue",))
    visibility: Duration = setting("visibilityTimeout", timedelta(seconds=30))
    decode: Truthy = setting("decodeBase64", False)
    key: SecretStr | None = setting("accountKey", None, secret=True)


def component(**values: str) -> Component:
    return Component(
        name="q",
        type="bindings.example",
        version="v1",
        source=Path("components/q.yaml"),
        values={k: Value(literal=v) for k, v in values.items()},
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m30s", 90), ("250ms", 0.25), ("10", 10), ("1h", 3600), ("0", 0), ("-5s", -5)],
)
def test_go_durations_and_integer_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_bad_duration_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="Go duration"):
        parse_duration("ten seconds")


def test_keys_match_case_insensitively_and_through_aliases() -> None:
    values = {"QUEUE": "orders", "visibilitytimeout": "2m", "DecodeBase64": "Yes"}
    parsed = parse_metadata(component(), Example, values)
    assert parsed.queue_name == "orders"
    assert parsed.visibility == timedelta(minutes=2)
    assert parsed.decode is True


@pytest.mark.parametrize("falsy", ["false", "no", "0", "nope", ""])
def test_anything_but_dapr_truthy_is_false(falsy: str) -> None:
    assert (
        parse_metadata(component(), Example, {"queueName": "q", "decodeBase64": falsy}).decode
        is False
    )


def test_unknown_field_suggests_the_nearest_name() -> None:
    with pytest.raises(ComponentError) as caught:
        parse_metadata(component(), Example, {"queueName": "q", "visibilityTimout": "1s"})
    error = caught.value
    assert (error.file, error.component, error.field) == (
        Path("components/q.yaml"),
        "q",
        "visibilityTimout",
    )
    assert error.hint and "did you mean 'visibilityTimeout'" in error.hint


def test_missing_required_field_is_named() -> None:
    with pytest.raises(ComponentError) as caught:
        parse_metadata(component(), Example, {})
    assert caught.value.field == "queueName"
    assert "required field is missing" in str(caught.value)


def test_secret_fields_are_known_and_hidden_in_repr() -> None:
    parsed = parse_metadata(component(), Example, {"queueName": "q", "accountKey": "s3cr3t"})
    assert Example.secret_names() == {"accountKey"}
    assert "s3cr3t" not in repr(parsed)
    assert parsed.secret("key") == "s3cr3t"
