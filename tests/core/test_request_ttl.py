"""Dapr's request TTL rule (`metadata.TryGetTTL`), shared by the bindings that take one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portabind.errors import UserError
from portabind.metadata import request_ttl


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, None),
        ({"ttlInSeconds": "10"}, timedelta(seconds=10)),
        ({"TTL": "1m30s"}, timedelta(seconds=90)),
        ({"ttlinseconds": "250ms"}, timedelta(milliseconds=250)),
        ({"ttl": "-5s"}, timedelta(0)),  # a negative duration is clamped, not refused
        ({"ttl": "0"}, timedelta(0)),  # Go parses a bare 0 as a duration
        ({"ttl": ""}, None),
        ({"ttlInSeconds": "10", "ttl": "20"}, timedelta(seconds=20)),  # Dapr reads ttl first
    ],
)
def test_request_ttl_reads_durations_and_seconds(
    metadata: dict[str, str], expected: timedelta | None
) -> None:
    assert request_ttl(metadata) == expected


@pytest.mark.parametrize("value", ["-1", "00", "ten"])
def test_request_ttl_refuses_non_positive_seconds_and_garbage(value: str) -> None:
    with pytest.raises(UserError, match="ttl"):
        request_ttl({"ttl": value})
