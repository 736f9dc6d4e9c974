"""`portabind.io/` annotations: typed models, one parser per kind of value, errors that name
the file, the component and the annotation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pytest

from portabind.annotations import (
    Annotations,
    Choice,
    CommaList,
    ExtensionTrigger,
    Flag,
    arn,
    binding_annotations,
    parse_annotations,
    whole_number,
    whole_seconds,
)
from portabind.binding import Binding
from portabind.bindings.http import HttpAnnotations, HttpInput
from portabind.components import Component, ComponentSet
from portabind.errors import ComponentError, ValidationFailed
from portabind.metadata import BindingMetadata, Duration, Secret, setting
from portabind.runtime import Runtime


class Position(Choice):
    LATEST = "LATEST"
    TRIM_HORIZON = "TRIM_HORIZON"


class Batching(Annotations):
    batch_size: Annotated[int, whole_number(1, 10000)] | None = setting("batchSize", None)
    batch_window: Annotated[int, whole_seconds(300)] | None = setting("batchWindow", None)


class Retries(Annotations):
    max_retries: Annotated[int, whole_number(-1, 999)] | None = setting("maxRetries", None)
    bisect: Flag | None = setting("bisectOnError", None)
    on_failure: Annotated[str, arn("sqs", "sns", words=("dlq",))] | None = setting(
        "onFailure", None
    )


class Stream(Annotations):
    position: Position | None = setting("startingPosition", None)
    subnets: CommaList[str] = setting("subnets", ())
    poll: Duration = setting("pollInterval", timedelta(seconds=1))
    token: Secret | None = setting("token", None, secret=True)


MODELS = (Batching, Retries, Stream)


def component(**annotations: str) -> Component:
    return Component(
        name="orders",
        type="bindings.example",
        version="v1",
        source=Path("components/orders.yaml"),
        values={},
        annotations=annotations,
    )


def error_of(**annotations: str) -> ComponentError:
    with pytest.raises(ComponentError) as caught:
        parse_annotations(component(**annotations), MODELS)
    return caught.value


def test_a_valid_annotation_parses_to_its_typed_value() -> None:
    parsed = parse_annotations(
        component(
            batchSize="500",
            batchWindow="1m30s",
            maxRetries="-1",
            bisectOnError="yes",
            onFailure="arn:aws:sns:us-east-1:123456789012:failed",
            startingPosition="trim_horizon",
            subnets="subnet-1, subnet-2,,subnet-1",
            pollInterval="250ms",
        ),
        MODELS,
    )
    assert (parsed[Batching].batch_size, parsed[Batching].batch_window) == (500, 90)
    retries = parsed[Retries]
    assert (retries.max_retries, retries.bisect) == (-1, True)
    assert retries.on_failure == "arn:aws:sns:us-east-1:123456789012:failed"
    stream = parsed[Stream]
    assert stream.position is Position.TRIM_HORIZON
    assert stream.subnets == ("subnet-1", "subnet-2")
    assert stream.poll == timedelta(milliseconds=250)


def test_unset_annotations_take_the_models_defaults() -> None:
    parsed = parse_annotations(component(), MODELS)
    assert parsed[Batching] == Batching()
    assert parsed[Stream].poll == timedelta(seconds=1)


def test_keys_match_case_insensitively_as_metadata_keys_do() -> None:
    parsed = parse_annotations(component(BATCHSIZE="7", MaxRetries="2"), MODELS)
    assert (parsed[Batching].batch_size, parsed[Retries].max_retries) == (7, 2)


def test_a_misspelt_annotation_names_the_component_and_the_nearest_key() -> None:
    error = error_of(maxRetrys="0")
    assert error.file == Path("components/orders.yaml")
    assert error.component == "orders"
    assert error.field == "metadata.annotations.portabind.io/maxRetrys"
    assert "unknown annotation portabind.io/maxRetrys" in error.message
    assert error.hint is not None and error.hint.startswith("did you mean 'maxRetries'?")


def test_the_nearest_key_comes_from_every_declared_model() -> None:
    assert "did you mean 'startingPosition'?" in (error_of(startPosition="LATEST").hint or "")
    assert "did you mean 'batchWindow'?" in (error_of(batchWindw="5s").hint or "")


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        ({"batchSize": "ten"}, "batchSize", "must be a whole number from 1 to 10000, got 'ten'"),
        ({"batchSize": "0"}, "batchSize", "must be a whole number from 1 to 10000, got '0'"),
        ({"batchSize": "10001"}, "batchSize", "from 1 to 10000, got '10001'"),
        ({"batchWindow": "1.5s"}, "batchWindow", "whole seconds from 0 to 5m"),
        ({"batchWindow": "6m"}, "batchWindow", "got '6m'"),
        ({"maxRetries": "-2"}, "maxRetries", "from -1 to 999, got '-2'"),
        ({"bisectOnError": "maybe"}, "bisectOnError", 'must be "true" or "false", got \'maybe\''),
        ({"startingPosition": "AT_TIMESTAMP"}, "startingPosition", "'LATEST' or 'TRIM_HORIZON'"),
        ({"onFailure": "arn:aws:lambda:us-east-1:123456789012:function:f"}, "onFailure", "ARN"),
        ({"onFailure": "my-queue"}, "onFailure", "an arn:aws:sqs:… ARN or an arn:aws:sns:… ARN"),
        ({"pollInterval": "soon"}, "pollInterval", "not a duration"),
    ],
)
def test_an_ill_typed_value_names_the_component_and_the_annotation(
    annotations: dict[str, str], field: str, message: str
) -> None:
    error = error_of(**annotations)
    assert error.component == "orders"
    assert error.field == f"metadata.annotations.portabind.io/{field}"
    assert message in error.message


def test_a_list_item_error_says_which_item() -> None:
    class Methods(Annotations):
        methods: CommaList[Position] = setting("positions", ())

    with pytest.raises(ComponentError, match="item 2: Input should be 'LATEST'"):
        parse_annotations(component(positions="latest,earliest"), (Methods,))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_annotations(component(maxRetrys="0", batchSize="ten"), MODELS)
    fields = sorted(str(getattr(e, "field", "")) for e in caught.value.errors)
    assert fields == [
        "metadata.annotations.portabind.io/batchSize",
        "metadata.annotations.portabind.io/maxRetrys",
    ]


def test_a_secret_value_never_appears_in_an_error() -> None:
    class Secretive(Annotations):
        token: Annotated[str, whole_number(1)] = setting("token", "1", secret=True)

    with pytest.raises(ComponentError) as caught:
        parse_annotations(component(token="hunter2"), (Secretive,))
    assert "hunter2" not in str(caught.value)


def test_an_annotation_is_declared_once_per_component() -> None:
    class AlsoRetries(Annotations):
        retries: int | None = setting("maxRetries", None)

    with pytest.raises(TypeError, match="'maxRetries' is declared by both"):
        parse_annotations(component(), (Retries, AlsoRetries))


def test_a_partial_read_leaves_other_keys_to_their_models() -> None:
    parsed = parse_annotations(component(batchSize="5", maxRetrys="0"), (Batching,), partial=True)
    assert parsed[Batching].batch_size == 5
    with pytest.raises(ComponentError, match="batchSize"):
        parse_annotations(component(batchSize="ten"), (Batching,), partial=True)


class ExampleMetadata(BindingMetadata):
    pass


def test_a_binding_receives_its_own_model_or_none() -> None:
    annotated = Binding(metadata=ExampleMetadata, annotations=Retries)
    plain = Binding(metadata=ExampleMetadata)
    given = component(maxRetries="3", batchSize="5")
    assert binding_annotations(given, annotated) == Retries.model_validate({"maxRetries": "3"})
    assert binding_annotations(given, plain) is None


def test_extension_trigger_is_a_flag() -> None:
    assert parse_annotations(component(trigger="TRUE"), (ExtensionTrigger,))[
        ExtensionTrigger
    ].trigger


def test_runtime_input_hands_the_listener_its_parsed_model() -> None:
    api = Component(
        name="api",
        type="bindings.http",
        version="v1",
        source=Path("components/api.yaml"),
        values={},
        annotations={"trigger": "true", "Method": "get,post", "port": "9090"},
    )
    runtime = Runtime(ComponentSet(Path("components"), {"api": api}))
    listener = runtime.input("api")
    assert isinstance(listener, HttpInput)
    assert listener.annotations == HttpAnnotations.model_validate(api.annotations)
    assert listener.trigger().methods == ("GET", "POST")
