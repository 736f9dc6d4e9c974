"""The handler API: parameters, outputs, sync and async handlers, errors."""

from __future__ import annotations

import asyncio
import copy
import pickle
from typing import Annotated

import pytest
from pydantic import BaseModel

from portabind import App, BindingEvent, Output
from portabind.app import PayloadError
from portabind.errors import AppError
from portabind.events import BindingResponse, Metadata


class Order(BaseModel):
    id: int


def event(data: bytes, name: str = "orders") -> BindingEvent:
    return BindingEvent(name, data, {"messageId": "m-1"})


def test_event_metadata_keys_compare_case_insensitively() -> None:
    received = event(b"{}")
    assert received.metadata["MESSAGEID"] == "m-1"
    assert list(received.metadata) == ["messageId"]
    assert received.metadata == {"messageid": "m-1"}


def test_deferred_metadata_is_made_once_when_first_read() -> None:
    made: list[str] = []

    def build() -> dict[str, str]:
        made.append("made")
        return {"messageId": "m-1"}

    received = BindingEvent("orders", b"", Metadata.deferred(build))
    assert made == []
    assert received.metadata["MESSAGEID"] == "m-1"
    assert dict(received.metadata) == {"messageId": "m-1"}
    assert made == ["made"]
    assert pickle.loads(pickle.dumps(received)) == event(b"")


def test_events_and_responses_are_immutable_values() -> None:
    received = event(b"x")
    assert received == BindingEvent("orders", b"x", {"MessageId": "m-1"})
    assert received != BindingEvent("orders", b"y", {"messageId": "m-1"})
    assert repr(received) == (
        "BindingEvent(name='orders', data=b'x', metadata=Metadata({'messageId': 'm-1'}))"
    )
    assert copy.deepcopy(received) == pickle.loads(pickle.dumps(received)) == received
    with pytest.raises(AttributeError):
        received.data = b"y"
    response = BindingResponse(b"1", {"key": "k"})
    assert response == BindingResponse(b"1", Metadata({"KEY": "k"}))
    assert BindingResponse().data is None
    assert BindingResponse().metadata == {}


def test_handler_gets_a_validated_pydantic_model() -> None:
    app = App()
    seen: list[Order] = []
    app.add_handler("orders", seen.append)  # unannotated: the event itself
    app.add_handler("typed", lambda order: seen.append(order))

    @app.binding("models")
    def on_model(order: Order) -> int:
        return order.id * 2

    assert app.handle(event(b'{"id": 21}', "models")) == 42
    with pytest.raises(PayloadError, match="not a valid Order"):
        app.handle(event(b'{"id": "x"}', "models"))


def test_async_handlers_run_and_their_errors_propagate() -> None:
    app = App()

    @app.binding("orders")
    async def on_order(order: BindingEvent) -> str:
        await asyncio.sleep(0)
        if order.json()["fail"]:
            raise RuntimeError("boom")
        return order.text()

    assert app.handle(event(b'{"fail": false}')) == '{"fail": false}'
    with pytest.raises(RuntimeError, match="boom"):
        app.handle(event(b'{"fail": true}'))


def test_outputs_are_injected_by_parameter_name_or_annotation() -> None:
    app = App()

    @app.binding("orders")
    def on_order(
        data: bytes, receipts: Output, audit: Annotated[Output, "audit-log"]
    ) -> tuple[str, str]:
        return receipts.name, audit.name

    assert app.handle(event(b"x")) == ("receipts", "audit-log")


def test_a_component_takes_one_handler() -> None:
    app = App()
    app.add_handler("orders", print)
    with pytest.raises(AppError, match="already has a handler"):
        app.add_handler("orders", repr)


def test_unsupported_parameter_type_is_reported_at_registration() -> None:
    app = App()
    with pytest.raises(AppError, match=r"test_app\.py:\d+ .*on_order: cannot pass an event as"):

        @app.binding("orders")
        def on_order(value: int) -> None: ...


def test_invoking_without_components_says_how_to_attach() -> None:
    with pytest.raises(AppError, match="no components attached"):
        App().invoke_binding("receipts", "create", data={"a": 1})
