"""`bindings.twilio.sendgrid`: send an email through SendGrid, output only
(Dapr's: components-contrib `bindings/twilio/sendgrid/sendgrid.go`).

`create` sends the payload as HTML content. Every component field but `apiKey` can be
overridden by the same request-metadata key; a request `emailFromName`/`emailToName` counts
only together with a request `emailFrom`/`emailTo`, exactly as in Dapr. The sendgrid SDK is
imported when the client is made.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, OutputBinding
from portabind.errors import BindingError
from portabind.events import BindingResponse, unquote
from portabind.metadata import BindingMetadata, Secret, field_validator, setting

if TYPE_CHECKING:
    from portabind.events import Metadata


def _template_data(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError as error:
        raise ValueError(f"dynamicTemplateData is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("dynamicTemplateData must be a JSON object")
    return data


class SendGridMetadata(BindingMetadata):
    binding_type = "bindings.twilio.sendgrid"

    api_key: Secret = setting("apiKey", secret=True, description="SendGrid API key")
    email_from: str | None = setting("emailFrom", None, description="default sender address")
    email_from_name: str | None = setting("emailFromName", None)
    email_to: str | None = setting("emailTo", None, description="default recipient address")
    email_to_name: str | None = setting("emailToName", None)
    subject: str | None = setting("subject", None)
    email_cc: str | None = setting("emailCc", None, description="one CC address")
    email_bcc: str | None = setting("emailBcc", None, description="one BCC address")
    dynamic_template_id: str | None = setting("dynamicTemplateId", None)
    dynamic_template_data: str | None = setting(
        "dynamicTemplateData", None, description="JSON object of template data"
    )
    endpoint: str | None = setting(
        "endpoint",
        None,
        description="portabind extension (not in Dapr), for local testing: base URL of the "
        "SendGrid API instead of https://api.sendgrid.com",
    )

    @field_validator("dynamic_template_data")
    @classmethod
    def _json_object(cls, value: str | None) -> str | None:
        _template_data(value)
        return value


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


class SendGridOutput(OutputBinding[SendGridMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: SendGridMetadata) -> None:
        super().__init__(name, metadata)
        from sendgrid import SendGridAPIClient

        self._client = SendGridAPIClient(
            api_key=metadata.secret("api_key"),
            host=(metadata.endpoint or "https://api.sendgrid.com").rstrip("/"),
        )

    def _party(self, metadata: Metadata, key: str, default: str | None, name: str | None) -> Any:
        """A sender or recipient: the request's address (with the request's name only), else
        the component's address and name."""
        if metadata.get(key):
            return _address(metadata[key], metadata.get(key + "Name"))
        return _address(default, name) if default else None

    def message(self, data: bytes, metadata: Metadata) -> dict[str, Any]:
        """The v3 `mail/send` body for one `create` call."""
        component = self.metadata

        def pick(key: str, default: str | None) -> str | None:
            return metadata.get(key) or default

        sender = self._party(metadata, "emailFrom", component.email_from, component.email_from_name)
        recipient = self._party(metadata, "emailTo", component.email_to, component.email_to_name)
        subject = pick("subject", component.subject)
        for value, what in ((sender, "from email"), (recipient, "to email"), (subject, "subject")):
            if not value:
                raise BindingError(self.name, "create", f"error SendGrid {what} not supplied")
        personalization: dict[str, Any] = {"to": [recipient], "subject": subject}
        cc = pick("emailCc", component.email_cc)
        if cc:
            personalization["cc"] = [{"email": cc}]
        bcc = pick("emailBcc", component.email_bcc)
        if bcc:
            personalization["bcc"] = [{"email": bcc}]
        try:
            template_data = _template_data(
                pick("dynamicTemplateData", component.dynamic_template_data)
            )
        except ValueError as error:
            raise BindingError(self.name, "create", str(error)) from None
        if template_data is not None:
            personalization["dynamic_template_data"] = template_data
        message: dict[str, Any] = {"from": sender, "personalizations": [personalization]}
        body = unquote(data).decode("utf-8", errors="replace")
        if body:  # Go's SendGrid client omits an empty content value too
            message["content"] = [{"type": "text/html", "value": body}]
        template_id = pick("dynamicTemplateId", component.dynamic_template_id)
        if template_id:
            message["template_id"] = template_id
        return message

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from python_http_client.exceptions import HTTPError

        message = self.message(data, metadata)
        try:
            self._client.send(message)
        except HTTPError as error:
            raise BindingError(
                self.name,
                "create",
                f"error from SendGrid, sending email failed: {error.status_code} "
                + _errors(error.body),
            ) from error
        except OSError as error:
            raise BindingError(self.name, "create", f"SendGrid request failed: {error}") from error
        return BindingResponse()


def _errors(body: bytes | str) -> str:
    """SendGrid's `errors[].message`, one per line, or the raw body if it has none."""
    try:
        errors = json.loads(body).get("errors", [])
        return "\n".join(str(error.get("message", error)) for error in errors)
    except (ValueError, AttributeError):
        return body.decode(errors="replace") if isinstance(body, bytes) else body


binding = Binding(metadata=SendGridMetadata, output=SendGridOutput)
