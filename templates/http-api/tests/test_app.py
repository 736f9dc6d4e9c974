"""The API on each cloud's HTTP request, outputs recorded (no cloud account, no emulator)."""

import json
from pathlib import Path

import pytest
from portabind.testing import TestClient

from app import app

COMPONENTS = Path(__file__).parent.parent / "components"
#: The request line: what the platform routes to the function.
NOTES = {"method": "POST", "path": "/notes"}


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_note_is_stored_and_its_key_returned(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        response = client.send("api", {"title": "groceries", "body": "milk"}, NOTES)

        assert response.status == 200
        key = json.loads(response.body)["key"]
        [stored] = client.outputs["notes"]
        assert stored.metadata["key"] == key
        assert json.loads(stored.data) == {"title": "groceries", "body": "milk"}


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_note_without_a_title_is_refused_and_not_stored(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        response = client.send("api", {"body": "no title"}, NOTES)

        assert response.status == 500
        assert not client.outputs.get("notes")
