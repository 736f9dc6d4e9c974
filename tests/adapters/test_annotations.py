"""The targets' annotation declarations (`adapters/<target>/annotations.py`): every key
declared once per binding type, the bindings' own models referenced rather than copied, and
the values each target's build reads parsed to their types."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from portabind.adapters.aws import annotations as aws
from portabind.adapters.azure import annotations as azure
from portabind.adapters.gcp import annotations as gcp
from portabind.annotations import Annotations, ParsedAnnotations, parse_annotations
from portabind.components import Component
from portabind.errors import ComponentError, ValidationFailed
from portabind.registry import module_name
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from types import ModuleType

TARGETS = (aws, azure, gcp)
EVERYTHING = Path(__file__).parent / "aws" / "apps" / "everything" / "components"


def declared(target: ModuleType, binding_type: str) -> tuple[type[Annotations], ...]:
    return (*getattr(target, "COMMON", ()), *target.BY_TYPE.get(binding_type, ()))


def component(binding_type: str, **annotations: str) -> Component:
    return Component("orders", binding_type, "v1", Path("components/orders.yaml"), {}, annotations)


def parse(target: ModuleType, binding_type: str, **annotations: str) -> ParsedAnnotations:
    return parse_annotations(component(binding_type, **annotations), declared(target, binding_type))


def error_of(target: ModuleType, binding_type: str, **annotations: str) -> ComponentError:
    with pytest.raises(ComponentError) as caught:
        parse(target, binding_type, **annotations)
    return caught.value


@pytest.mark.parametrize(
    ("target", "binding_type"),
    [(target, kind) for target in TARGETS for kind in target.BY_TYPE],
)
def test_each_type_declares_each_key_once_and_references_the_bindings_model(
    target: ModuleType, binding_type: str
) -> None:
    binding = importlib.import_module(module_name(binding_type)).binding
    if binding.annotations is not None:
        assert binding.annotations in target.BY_TYPE[binding_type]
    parse(target, binding_type)  # raises TypeError for a key two models declare


def test_the_everything_apps_annotations_parse_as_the_aws_build_reads_them() -> None:
    for found in load_components(EVERYTHING).bindings():
        parse_annotations(found, declared(aws, found.type))


def test_a_misspelt_aws_annotation_suggests_the_declared_one() -> None:
    error = error_of(aws, "bindings.aws.sqs", maxRetrys="0")
    assert (error.component, error.field) == (
        "orders",
        "metadata.annotations.portabind.io/maxRetrys",
    )
    assert error.hint is not None and error.hint.startswith("did you mean 'maxRetries'?")


def test_an_annotation_of_another_type_is_unknown() -> None:
    error = error_of(aws, "bindings.aws.sqs", bisectOnError="true")
    assert "unknown annotation portabind.io/bisectOnError" in error.message


@pytest.mark.parametrize(
    ("binding_type", "annotations", "message"),
    [
        ("bindings.aws.kinesis", {"batchSize": "ten"}, "whole number from 1 to 10000"),
        ("bindings.aws.kinesis", {"batchWindow": "10m"}, "whole seconds from 0 to 5m"),
        ("bindings.aws.kinesis", {"maxRetries": "-2"}, "from -1 to 10000"),
        ("bindings.kafka", {"mskClusterArn": "my-cluster"}, "an arn:aws:kafka:… ARN"),
        ("bindings.kafka", {"provisionedPollers": "0"}, "from 1 to 200"),
        ("bindings.kafka", {"subnets": "subnet-0a1b, vpc-1"}, "item 2: must be a subnet id"),
        ("bindings.rabbitmq", {"secretArn": "arn:aws:sqs:us-east-1:123456789012:q"}, "ARN"),
        ("bindings.aws.s3", {"operations": "get,fetch"}, "item 2: must be one of create"),
        ("bindings.aws.s3", {"events": "ObjectCreated"}, "an S3 event type"),
        ("bindings.aws.dynamodb", {"existing": "sure"}, 'must be "true" or "false"'),
    ],
)
def test_an_ill_typed_aws_annotation_is_an_error(
    binding_type: str, annotations: dict[str, str], message: str
) -> None:
    error = error_of(aws, binding_type, **annotations)
    (key,) = annotations
    assert error.field == f"metadata.annotations.portabind.io/{key}"
    assert message in error.message


def test_aws_annotations_parse_to_what_the_build_writes() -> None:
    kafka = parse(
        aws,
        "bindings.kafka",
        mskClusterArn="arn:aws:kafka:us-east-1:123456789012:cluster/c/x",
        provisionedPollers="2",
        batchWindow="1m",
        subnets="subnet-0a1b,subnet-2c3d",
    )
    assert kafka[aws.KafkaTrigger].provisioned_pollers == 2
    assert kafka[aws.KafkaTrigger].subnets == ("subnet-0a1b", "subnet-2c3d")
    assert kafka[aws.Batching].batch_window == 60
    s3 = parse(aws, "bindings.aws.s3", trigger="true", operations="get, list")
    assert s3[aws.ExtensionTrigger].trigger
    assert s3[aws.S3Policy].operations == ("get", "list")


def test_azure_queue_settings_default_as_host_json_does_and_are_bounded() -> None:
    host = parse(azure, "bindings.azure.storagequeues", visibilityTimeout="1m")[azure.QueueHost]
    assert (host.max_dequeue_count, host.batch_size) == (5, 16)
    assert host.visibility_timeout == timedelta(minutes=1)
    assert "from 1 to 32" in error_of(azure, "bindings.azure.storagequeues", batchSize="64").message
    with pytest.raises(ValidationFailed):
        parse(azure, "bindings.azure.storagequeues", maxPollingInterval="10ms", keyVault="k")


def test_gcp_settings_parse_for_the_deploy_manifest() -> None:
    cron = parse(gcp, "bindings.cron", secret="password=db-pass, token=api-token")
    assert cron[gcp.SecretIds].secret_ids == {"password": "db-pass", "token": "api-token"}
    assert cron[gcp.Region].region == gcp.DEFAULT_REGION
    assert "field=secret-id" in error_of(gcp, "bindings.kafka", secret="password").message
    assert "unknown annotation" in error_of(gcp, "bindings.kafka", region="europe-west1").message
