"""bindings.twilio.sendgrid: the sendgrid SDK's real request, received by a local server."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.twilio.sendgrid import SendGridMetadata, SendGridOutput, binding
from portabind.errors import BindingError
from portabind.events import Metadata

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer

pytest.importorskip("sendgrid")
pytest.importorskip("pytest_httpserver")

SEND = "/v3/mail/send"


def _mailer(httpserver: HTTPServer, **fields: Any) -> SendGridOutput:
    values = {"apiKey": "SG.key", "endpoint": httpserver.url_for("/"), **fields}
    return SendGridOutput("mail", SendGridMetadata.model_validate(values))


def _sent(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


@pytest.fixture
def accepting(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request(SEND, method="POST").respond_with_data("", status=202)
    return httpserver


def test_create_sends_the_component_defaults_as_a_v3_mail(accepting: HTTPServer) -> None:
    mailer = _mailer(
        accepting,
        emailFrom="shop@example.com",
        emailFromName="Shop",
        emailTo="ann@example.com",
        emailToName="Ann",
        subject="Your order",
        emailCc="cc@example.com",
        emailBcc="audit@example.com",
    )

    response = mailer.invoke("create", b'"<h1>Thanks!</h1>"', Metadata())

    assert response.data is None
    ((request, _),) = accepting.log
    assert request.headers["Authorization"] == "Bearer SG.key"
    assert json.loads(request.get_data()) == {
        "from": {"email": "shop@example.com", "name": "Shop"},
        "personalizations": [
            {
                "to": [{"email": "ann@example.com", "name": "Ann"}],
                "subject": "Your order",
                "cc": [{"email": "cc@example.com"}],
                "bcc": [{"email": "audit@example.com"}],
            }
        ],
        "content": [{"type": "text/html", "value": "<h1>Thanks!</h1>"}],
    }


def test_request_metadata_overrides_and_names_follow_their_address(
    accepting: HTTPServer,
) -> None:
    mailer = _mailer(
        accepting,
        emailFrom="shop@example.com",
        emailFromName="Shop",
        emailTo="ann@example.com",
        emailToName="Ann",
        subject="default",
    )

    mailer.invoke(
        "create",
        b"body",
        Metadata({"emailTo": "bob@example.com", "subject": "Hello Bob", "emailFromName": "X"}),
    )

    (message,) = _sent(accepting)
    # a request emailTo without a name drops the component's name; a request emailFromName
    # without a request emailFrom is ignored
    assert message["personalizations"][0]["to"] == [{"email": "bob@example.com"}]
    assert message["personalizations"][0]["subject"] == "Hello Bob"
    assert message["from"] == {"email": "shop@example.com", "name": "Shop"}


def test_dynamic_template_id_and_data(accepting: HTTPServer) -> None:
    mailer = _mailer(
        accepting,
        emailFrom="a@example.com",
        emailTo="b@example.com",
        subject="s",
        dynamicTemplateId="d-123",
        dynamicTemplateData='{"name": "Ann"}',
    )

    mailer.invoke("create", b"", Metadata())
    mailer.invoke("create", b"", Metadata({"dynamicTemplateData": '{"name": "Bob"}'}))

    first, second = _sent(accepting)
    assert first["template_id"] == "d-123"
    assert "content" not in first
    assert first["personalizations"][0]["dynamic_template_data"] == {"name": "Ann"}
    assert second["personalizations"][0]["dynamic_template_data"] == {"name": "Bob"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"emailTo": "b@example.com", "subject": "s"}, "from email not supplied"),
        ({"emailFrom": "a@example.com", "subject": "s"}, "to email not supplied"),
        ({"emailFrom": "a@example.com", "emailTo": "b@example.com"}, "subject not supplied"),
    ],
)
def test_missing_required_parts_fail_before_any_request(
    httpserver: HTTPServer, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(BindingError, match=message):
        _mailer(httpserver, **fields).invoke("create", b"x", Metadata())
    assert httpserver.log == []


def test_sendgrid_rejection_carries_its_error_messages(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEND, method="POST").respond_with_json(
        {"errors": [{"message": "The from address does not match a verified Sender."}]},
        status=403,
    )
    mailer = _mailer(httpserver, emailFrom="a@example.com", emailTo="b@example.com", subject="s")

    with pytest.raises(BindingError, match="failed: 403 The from address does not match"):
        mailer.invoke("create", b"x", Metadata())


def test_invalid_template_data_fails_validation() -> None:
    with pytest.raises(ValueError, match="dynamicTemplateData"):
        SendGridMetadata.model_validate({"apiKey": "k", "dynamicTemplateData": "{nope"})
    with pytest.raises(ValueError, match="JSON object"):
        SendGridMetadata.model_validate({"apiKey": "k", "dynamicTemplateData": "[1]"})
    assert SendGridMetadata.secret_names() == {"apiKey"}
    assert binding.directions == {"output"}
