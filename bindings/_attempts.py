"""Bounded redelivery for listeners whose source has no redelivery limit of its own.

A polled search (twitter) or a watched resource list (kubernetes) would hand a failing item
to the handler forever; `Attempts` counts failures per item so the listener gives up after
`limit` of them, logs it, and moves on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

#: Failed deliveries of one item before it is dropped.
DEFAULT_LIMIT = 3


class Attempts:
    def __init__(self, binding: str, log: logging.Logger, limit: int = DEFAULT_LIMIT) -> None:
        self.binding = binding
        self.log = log
        self.limit = limit
        self._failures: dict[str, int] = {}

    def failed(self, key: str, error: BaseException) -> bool:
        """Record a failed delivery of `key`; True when it has failed `limit` times and is
        dropped (the caller then treats it as done)."""
        count = self._failures[key] = self._failures.get(key, 0) + 1
        if count < self.limit:
            self.log.warning("%s: %s failed (%s); will retry", self.binding, key, error)
            return False
        self.log.error("%s: %s failed %d times (%s); dropped", self.binding, key, count, error)
        del self._failures[key]
        return True

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
