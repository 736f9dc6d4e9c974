"""What a `TestClient` reports: the output calls a handler made, and each send's outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portabind.events import Metadata


@dataclass(frozen=True)
class OutputCall:
    """One call of an output binding, as the handler made it."""

    operation: str
    data: bytes
    metadata: dict[str, str]

    def text(self) -> str:
        return self.data.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SendResult:
    """What the platform saw of one `send`: `ok` when nothing failed (the platform would
    acknowledge everything), `failed` the ids of the records it would deliver again, `error`
    the first exception the handler (or the entry) raised. HTTP triggers add the response:
    `status`, `body`, `headers`. `response` is what the platform callable returned."""

    failed: list[str] = field(default_factory=list)
    error: BaseException | None = None
    response: Any = None
    status: int | None = None
    body: bytes = b""
    #: Compared case-insensitively, as HTTP headers are.
    headers: Metadata = field(default_factory=Metadata)

    @property
    def ok(self) -> bool:
        """Nothing failed, and an HTTP response is not an error status (as `requests` has
        it)."""
        return self.error is None and not self.failed and (self.status or 0) < 400

    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)
