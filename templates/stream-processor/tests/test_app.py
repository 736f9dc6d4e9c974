"""The processor on each cloud's stream event, outputs recorded (no cloud account, no emulator)."""

import json
from pathlib import Path

import pytest
from portabind.testing import TestClient

from app import app

COMPONENTS = Path(__file__).parent.parent / "components"


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_reading_becomes_the_devices_latest_value(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("readings", {"device": "d1", "seq": 3, "value": 21.5})

        assert result.ok
        [stored] = client.outputs["latest"]
        assert stored.metadata["key"] == "devices/d1.json"
        assert json.loads(stored.data) == {"device": "d1", "seq": 3, "value": 21.5}


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_malformed_reading_fails_only_itself(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        bad = client.send("readings", {"device": "d1", "seq": 4})
        good = client.send("readings", {"device": "d1", "seq": 5, "value": 1.0})

        assert bad.failed
        assert good.ok
        assert [c.metadata["key"] for c in client.outputs["latest"]] == ["devices/d1.json"]
