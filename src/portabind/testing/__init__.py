"""In-process tests of a portabind app: `TestClient` sends events in each platform's real
shape through the entry a build generates, and records the output calls; the event
generators are `portabind.testing.events`.

Tooling, like the CLI: a build never bundles it."""

from portabind.testing.client import TestClient
from portabind.testing.results import OutputCall, SendResult

__all__ = ["OutputCall", "SendResult", "TestClient"]
