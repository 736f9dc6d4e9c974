"""What `portabind run` prints: readable lines, colour only on a terminal, no secrets."""

from __future__ import annotations

import io

from portabind.adapters.local.console import Console
from portabind.events import BindingEvent, Metadata


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_text_when_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(out)
    console.received(BindingEvent("orders", b"{}", Metadata({"messageId": "m-1"})))
    console.handled("on_order", 0.012)
    assert out.getvalue() == "▸ orders  received  messageId=m-1\n✓ on_order  12 ms\n"


def test_colour_on_a_terminal() -> None:
    out = _Terminal()
    Console(out).handled("on_order", 0.001)
    assert "\033[32m✓\033[0m on_order" in out.getvalue()


def test_output_calls_hide_credentials_in_request_metadata() -> None:
    out = io.StringIO()
    Console(out).output(
        "api", "post", Metadata({"Authorization": "Bearer abc123", "key": "receipts/1.json"})
    )
    assert out.getvalue() == "→ api.post  Authorization=***  key=receipts/1.json\n"


def test_a_failure_shows_the_first_line_of_the_error() -> None:
    out = io.StringIO()
    Console(out).failed("on_order", ValueError("not a valid Order\n  detail line\n  more"))
    assert out.getvalue() == "✗ on_order  ValueError: not a valid Order (left for redelivery)\n"
