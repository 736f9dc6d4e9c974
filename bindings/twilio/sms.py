"""`bindings.twilio.sms`: send a text message through Twilio, output only
(Dapr's: components-contrib `bindings/twilio/sms/sms.go`).

`create` sends the payload (a JSON string loses its quotes, as Dapr's `utils.Unquote` does)
to the component's `toNumber`, or to the request's `toNumber` when the component has none.
The twilio SDK is imported when the client is made.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from portabind.binding import Binding, OutputBinding
from portabind.errors import BindingError
from portabind.events import BindingResponse, unquote
from portabind.metadata import BindingMetadata, Duration, Secret, setting

if TYPE_CHECKING:
    from portabind.events import Metadata


class SmsMetadata(BindingMetadata):
    binding_type = "bindings.twilio.sms"

    account_sid: str = setting("accountSid", description="Twilio account SID")
    auth_token: Secret = setting("authToken", secret=True, description="Twilio auth token")
    from_number: str = setting("fromNumber", description="sender number")
    to_number: str | None = setting(
        "toNumber", None, description="recipient; request metadata `toNumber` is used if unset"
    )
    timeout: Duration = setting(
        "timeout", timedelta(minutes=5), description="HTTP timeout of a send"
    )
    endpoint: str | None = setting(
        "endpoint",
        None,
        description="portabind extension (not in Dapr), for local testing: base URL of the "
        "Twilio REST API instead of https://api.twilio.com",
    )


class SmsOutput(OutputBinding[SmsMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: SmsMetadata) -> None:
        super().__init__(name, metadata)
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self._client = Client(
            metadata.account_sid,
            metadata.secret("auth_token"),
            http_client=TwilioHttpClient(timeout=metadata.timeout.total_seconds()),
        )
        if metadata.endpoint:
            self._client.api.base_url = metadata.endpoint.rstrip("/")

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        to_number = self.metadata.to_number or metadata.get("toNumber", "")
        if not to_number:
            raise BindingError(
                self.name,
                "create",
                "no recipient: set toNumber in the component or in the request metadata",
            )
        try:
            self._client.api.v2010.accounts(self.metadata.account_sid).messages.create(
                to=to_number,
                from_=self.metadata.from_number,
                body=unquote(data).decode("utf-8", errors="replace"),
            )
        except TwilioRestException as error:
            raise BindingError(
                self.name, "create", f"error from Twilio ({error.status}): {error.msg}"
            ) from error
        except (TwilioException, OSError) as error:
            raise BindingError(self.name, "create", f"Twilio request failed: {error}") from error
        return BindingResponse()


binding = Binding(metadata=SmsMetadata, output=SmsOutput)
