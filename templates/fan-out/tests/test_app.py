"""The fan-out on each cloud's queue event, outputs recorded (no cloud account, no emulator)."""

import json
from pathlib import Path

import pytest
from portabind.testing import TestClient

from app import app

COMPONENTS = Path(__file__).parent.parent / "components"


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_each_line_item_is_published_once(cloud: str) -> None:
    order = {"id": 7, "items": [{"sku": "tea", "qty": 2}, {"sku": "mug"}]}
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("orders", order)

        assert result.ok
        published = [json.loads(call.data) for call in client.outputs["items"]]
        assert published == [
            {"orderId": 7, "line": 1, "sku": "tea", "qty": 2},
            {"orderId": 7, "line": 2, "sku": "mug", "qty": 1},
        ]


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_an_order_without_items_list_fails(cloud: str) -> None:
    with TestClient(app, components=str(COMPONENTS / cloud), target=cloud) as client:
        result = client.send("orders", {"id": 8})

        assert result.failed
        assert not client.outputs.get("items")
