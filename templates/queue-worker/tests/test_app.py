"""The worker on each cloud's queue event, outputs recorded (no cloud account, no emulator)."""

import json
from pathlib import Path

import pytest
from portabind.testing import TestClient

from app import app

COMPONENTS = Path(__file__).parent.parent / "components"


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_job_result_is_stored_under_its_id(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("jobs", {"id": "a1", "n": 7})

        assert result.ok
        [stored] = client.outputs["results"]
        assert stored.operation == "create"
        assert stored.metadata["key"] == "results/a1.json"
        assert json.loads(stored.data) == {"id": "a1", "result": 49}


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_job_without_a_number_fails_and_stores_nothing(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("jobs", {"id": "a2"})

        assert result.failed
        assert not client.outputs.get("results")
