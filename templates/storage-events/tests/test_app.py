"""The handler on each cloud's object-created event, outputs recorded (no cloud account, no
emulator)."""

import json
from pathlib import Path

import pytest
from portabind.testing import TestClient

from app import app

COMPONENTS = Path(__file__).parent.parent / "components"


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_new_object_is_read_and_summarised(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("uploads", b"a,b\n1,2\n")

        assert result.ok
        [read] = client.outputs["uploads"]
        assert read.operation == "get"
        [summary] = client.outputs["summaries"]
        assert summary.operation == "create"
        name = read.metadata["key"]
        assert json.loads(summary.data)["object"] == name
        assert summary.metadata["key"] == f"summaries/{name.rsplit('/', 1)[-1]}.json"
