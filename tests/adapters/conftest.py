"""Shared by the adapter tests: an app whose handlers record the events they receive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

RECORDER = '''
import json
import os

from portabind import App, BindingEvent

app = App()


def record(event: BindingEvent) -> None:
    """Append the event as the handler saw it to $RECORD_PATH (one JSON line)."""
    with open(os.environ["RECORD_PATH"], "a") as file:
        line = {"name": event.name, "data": event.data.hex(), "metadata": dict(event.metadata)}
        file.write(json.dumps(line) + "\\n")
'''


@pytest.fixture(scope="session")
def recording_app() -> Callable[[str], str]:
    """The source of app.py: `record(event)` plus the given handlers."""
    return lambda handlers: RECORDER + handlers
