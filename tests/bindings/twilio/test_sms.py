"""bindings.twilio.sms: the twilio SDK's real request, received by a local HTTP server."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest

from portabind.bindings.twilio.sms import SmsMetadata, SmsOutput, binding
from portabind.errors import BindingError
from portabind.events import Metadata

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer

pytest.importorskip("twilio")
pytest.importorskip("pytest_httpserver")

SID = "AC0123456789abcdef0123456789abcdef"
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"


def _sms(httpserver: HTTPServer, **fields: Any) -> SmsOutput:
    values = {
        "accountSid": SID,
        "authToken": "tok3n",
        "fromNumber": "+15550000001",
        "endpoint": httpserver.url_for("/"),
        **fields,
    }
    return SmsOutput("sms", SmsMetadata.model_validate(values))


def _accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(
        {"sid": "SM1", "status": "queued", "account_sid": SID}, status=201
    )


def test_create_posts_the_message_form_with_basic_auth(httpserver: HTTPServer) -> None:
    _accepted(httpserver)

    response = _sms(httpserver, toNumber="+15550000002").invoke(
        "create", b'"Your code is 1234"', Metadata()
    )

    assert response.data is None
    ((request, _),) = httpserver.log
    form = parse_qs(request.get_data(as_text=True))
    assert form == {
        "To": ["+15550000002"],
        "From": ["+15550000001"],
        "Body": ["Your code is 1234"],  # the JSON string lost its quotes, as in Dapr
    }
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{SID}:tok3n".encode()).decode()
    )


def test_request_to_number_is_used_only_when_the_component_has_none(
    httpserver: HTTPServer,
) -> None:
    _accepted(httpserver)

    _sms(httpserver).invoke("create", b"hi", Metadata({"toNumber": "+15550000003"}))
    _sms(httpserver, toNumber="+15550000002").invoke(
        "create", b"hi", Metadata({"toNumber": "+15550000003"})
    )

    recipients = [parse_qs(r.get_data(as_text=True))["To"] for r, _ in httpserver.log]
    assert recipients == [["+15550000003"], ["+15550000002"]]


def test_a_json_object_body_is_sent_as_is(httpserver: HTTPServer) -> None:
    _accepted(httpserver)

    _sms(httpserver, toNumber="+15550000002").invoke("create", b'{"a":1}', Metadata())

    ((request, _),) = httpserver.log
    assert parse_qs(request.get_data(as_text=True))["Body"] == ['{"a":1}']


def test_no_recipient_is_an_error_before_any_request(httpserver: HTTPServer) -> None:
    with pytest.raises(BindingError, match="toNumber"):
        _sms(httpserver).invoke("create", b"hi", Metadata())
    assert httpserver.log == []


def test_twilio_rejection_is_a_binding_error_with_status_and_message(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_data(
        json.dumps({"code": 21211, "message": "The 'To' number is not valid.", "status": 400}),
        status=400,
        content_type="application/json",
    )

    with pytest.raises(BindingError, match=r"error from Twilio \(400\).*not valid"):
        _sms(httpserver, toNumber="bogus").invoke("create", b"hi", Metadata())


def test_metadata_requires_daprs_fields_and_hides_the_token() -> None:
    with pytest.raises(ValueError, match="fromNumber"):
        SmsMetadata.model_validate({"accountSid": SID, "authToken": "t"})
    metadata = SmsMetadata.model_validate(
        {"accountSid": SID, "authToken": "t", "fromNumber": "+1", "timeout": "30s"}
    )
    assert "t'" not in repr(metadata)
    assert metadata.timeout.total_seconds() == 30
    assert SmsMetadata.secret_names() == {"authToken"}
    assert binding.directions == {"output"}
