"""`portabind invoke`: through a running Dapr API when one answers, else in-process; both
against real bindings on moto."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest

from portabind.adapters.local.dapr_api import DaprApi
from portabind.adapters.local.emulators import free_port
from portabind.adapters.local.invoke import invoke
from portabind.errors import BindingError, UnsupportedOperation, UserError
from portabind.registry import binding_for
from portabind.runtime import Runtime
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator
    from portabind.events import BindingResponse


@pytest.fixture
def project(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    write_component: Callable[..., Path],
) -> Path:
    """A project whose components point at moto: queue `jobs`, bucket `files`."""
    components = tmp_path / "components"
    for name, type_, field in (
        ("jobs", "bindings.aws.sqs", "queueName"),
        ("files", "bindings.aws.s3", "bucket"),
    ):
        write_component(
            components,
            name,
            type_,
            **{field: unique_name(name)},
            endpoint=moto_server.endpoint,
            accessKey="test",
            secretKey="test",
        )
    runtime = Runtime(load_components(components))
    for component in runtime.components.bindings():
        provision = binding_for(component).provision
        assert provision is not None
        provision(runtime.metadata(component.name))
    return tmp_path


@pytest.fixture
def api_port(project: Path) -> Iterator[int]:
    """A Dapr API serving `project`'s components, as `portabind run` does."""
    runtime = Runtime(load_components(project / "components"))
    server = DaprApi(runtime, free_port())
    server.start()
    try:
        yield int(server.address.rsplit(":", 1)[1])
    finally:
        server.stop()
        runtime.close()


def queued_body(project: Path) -> str:
    runtime = Runtime(load_components(project / "components"))
    metadata = runtime.metadata("jobs").model_dump()
    sqs = boto3.client(
        "sqs",
        endpoint_url=metadata["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    url = sqs.get_queue_url(QueueName=metadata["queue_name"])["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    body: str = message["Body"]
    return body


def call(
    project: Path, port: int, name: str, operation: str, data: bytes = b"", **md: str
) -> BindingResponse:
    return invoke(
        name, operation, data=data, metadata=md, dapr_port=port, directory=project, components=None
    )


def test_in_process_without_a_running_api(project: Path) -> None:
    port = free_port()  # nothing listens there
    created = call(project, port, "files", "create", b"plain text", key="a.txt")
    assert created.metadata["key"] == "a.txt"
    assert call(project, port, "files", "get", key="a.txt").data == b"plain text"
    assert call(project, port, "jobs", "create", b'{"id": 1}').data is None
    assert queued_body(project) == '{"id": 1}'


def test_in_process_unknown_operation_is_a_user_error(project: Path) -> None:
    with pytest.raises(UnsupportedOperation, match="frob"):
        call(project, free_port(), "jobs", "frob")


def test_through_the_api_json_data_arrives_as_json(project: Path, api_port: int) -> None:
    assert call(project, api_port, "jobs", "create", b'{"id": 1}').data is None
    assert queued_body(project) == '{"id":1}'  # re-serialised by the API, as Dapr does


def test_through_the_api_text_round_trips_to_the_same_bytes(project: Path, api_port: int) -> None:
    created = call(project, api_port, "files", "create", b"plain text", key="b.txt")
    assert created.metadata["key"] == "b.txt"  # read back from the metadata.* headers
    fetched = call(project, free_port(), "files", "get", key="b.txt")  # in-process
    assert fetched.data == b"plain text"


def test_through_the_api_errors_keep_their_kind(project: Path, api_port: int) -> None:
    with pytest.raises(UnsupportedOperation, match="does not support operation frob"):
        call(project, api_port, "jobs", "frob")
    with pytest.raises(UserError, match="couldn't find output binding nope"):
        call(project, api_port, "nope", "create")
    with pytest.raises(BindingError) as failed:
        call(project, api_port, "files", "get", key="missing.txt")
    assert failed.value.binding == "files"


def test_through_the_api_the_project_is_not_loaded(
    project: Path, api_port: int, tmp_path: Path
) -> None:
    response = invoke(
        "jobs",
        "create",
        data=b"x",
        metadata={},
        dapr_port=api_port,
        directory=tmp_path / "does-not-exist",
        components=None,
    )
    assert response.data is None
    assert queued_body(project) == '"x"'
