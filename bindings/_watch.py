"""Watching a listing for changes: the local listeners of object stores (Azure blobs, Cloud
Storage objects), which have no notifications the emulators deliver.

Every `interval` the listener lists what it watches (`snapshot`: key → (version, item)) and
compares it with the listing before. A key that appears, or whose version changed, or that
disappeared gives events (`changes`); what existed when the listener started gives none.
When the handler fails, the listener keeps the old version, so the change is offered again
at the next look. A change made and undone between two looks is not seen.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

    from portabind.events import BindingEvent

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class Watch(Generic[Item]):
    """One watched listing (module docstring)."""

    def __init__(
        self,
        name: str,
        snapshot: Callable[[], Mapping[str, tuple[Any, Item]]],
        changes: Callable[[Item | None, Item | None], list[BindingEvent]],
        errors: tuple[type[Exception], ...],
    ) -> None:
        self.name = name
        self.snapshot = snapshot
        self.changes = changes
        self.errors = errors

    def run(
        self, deliver: Callable[[BindingEvent], Any], stop: threading.Event, interval: float
    ) -> None:
        known = dict(self.snapshot())
        while not stop.wait(interval):
            try:
                current = self.snapshot()
            except self.errors as error:
                log.warning("%s: listing failed: %s", self.name, error)
                continue
            for key in sorted(known.keys() | current.keys()):
                before, after = known.get(key), current.get(key)
                if (before[0] if before else None) == (after[0] if after else None):
                    continue
                try:
                    for event in self.changes(
                        before[1] if before else None, after[1] if after else None
                    ):
                        deliver(event)
                except Exception:
                    log.exception("%s: handler failed on %s; offered again", self.name, key)
                    continue
                if after is None:
                    known.pop(key)
                else:
                    known[key] = after
