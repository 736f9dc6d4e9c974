"""The job on each cloud's timer event, outputs recorded (no cloud account, no emulator)."""

import json
from pathlib import Path

import pytest
from portabind.testing import TestClient

from app import app

COMPONENTS = Path(__file__).parent.parent / "components"


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_a_tick_writes_the_report_of_its_day(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("nightly", b"")

        assert result.ok
        [report] = client.outputs["reports"]
        body = json.loads(report.data)
        assert report.metadata["key"] == f"reports/{body['day']}.json"
        assert body["generatedAt"].startswith(body["day"])
        assert body["status"] == "ok"
