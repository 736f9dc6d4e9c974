"""Dapr's metadata decoding rules on binding models."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from portabind.components import Component, Value, parse_metadata
from portabind.errors import ComponentError
from portabind.metadata import BindingMetadata, Duration, Secret, Truthy, parse_duration, setting

if TYPE_CHECKING:
    from collections.abc import Mapping


class Example(BindingMetadata):
    queue_name: str = setting("queueName", aliases=("queue",))
    visibility: Duration = setting("visibilityTimeout", timedelta(seconds=30))
    decode: Truthy = setting("decodeBase64", False)
    key: Secret | None = setting("accountKey", None, secret=True)


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


def test_an_unknown_key_is_ignored_as_dapr_ignores_it() -> None:
    parsed = parse_metadata(component(), Example, {"queueName": "q", "visibilityTimout": "1s"})
    assert parsed.visibility == timedelta(seconds=30)


def test_a_missing_field_names_the_unknown_key_that_looks_like_it() -> None:
    with pytest.raises(ComponentError) as caught:
        parse_metadata(component(), Example, {"queueNmae": "q"})
    error = caught.value
    assert (error.file, error.component, error.field) == (
        Path("components/q.yaml"),
        "q",
        "queueName",
    )
    assert error.hint == "did you mean 'queueName' where you wrote 'queueNmae'?"


def test_keys_differing_only_in_case_are_refused_as_dapr_refuses_them() -> None:
    with pytest.raises(ComponentError) as caught:
        parse_metadata(component(), Example, {"queueName": "q1", "QUEUENAME": "q2"})
    assert "'queueName' and 'QUEUENAME' differ only in case" in str(caught.value)


class Ordered(BindingMetadata):
    """Dapr tries `ttl` before `ttlInSeconds`, and deprecated `retries` before `retryCount`;
    `legacy` is rewritten by `upgrade`, `unused` changes nothing."""

    lookup_order = {
        "ttlInSeconds": ("ttl", "ttlInSeconds"),
        "retryCount": ("retries", "retryCount"),
    }
    deprecated = {"retries": "write retryCount", "legacy": "write mode"}
    no_effect = {"unused": "nothing reads it"}

    ttl: Duration | None = setting("ttlInSeconds", None, aliases=("ttl",))
    retry_count: int = setting("retryCount", 3, aliases=("retries",))
    mode: str = setting("mode", "plain")

    @classmethod
    def upgrade(cls, values: Mapping[str, str]) -> dict[str, str]:
        upgraded = dict(values)
        if "legacy" in upgraded and "mode" not in upgraded:
            upgraded["mode"] = "fancy" if upgraded["legacy"] == "true" else "plain"
        return upgraded


def test_several_keys_of_one_field_resolve_in_daprs_order() -> None:
    parsed = parse_metadata(
        component(), Ordered, {"ttl": "5s", "TTLINSECONDS": "9s", "RetryCount": "1", "retries": "7"}
    )
    assert (parsed.ttl, parsed.retry_count) == (timedelta(seconds=5), 7)


def test_deprecated_keys_are_upgraded_and_no_effect_keys_accepted() -> None:
    parsed = parse_metadata(component(), Ordered, {"legacy": "true", "unused": "x"})
    assert parsed.mode == "fancy"
    assert Ordered.model_validate({"legacy": "true", "unused": "x"}).mode == "plain"


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


def test_a_field_is_declared_with_setting() -> None:
    """A binding author's slip (a field without `setting()`, or a `setting()` without a type)
    is refused where the model is written, not found by a function at run time."""
    with pytest.raises(TypeError, match="queue_name"):

        class Undeclared(BindingMetadata):
            queue_name: str = "orders"

    with pytest.raises(TypeError, match="retries"):

        class Untyped(BindingMetadata):
            retries = setting("retries", 3)
