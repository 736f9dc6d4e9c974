"""bindings.azure.signalr: the REST calls the binding really makes, received by a local HTTP
server that checks each request's HS256 token against the access key, as the service does."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import jwt
import pytest
from pydantic import ValidationError
from werkzeug.wrappers import Response

from portabind.bindings.azure.signalr import SignalRMetadata, SignalROutput, binding
from portabind.components import REFERENCE
from portabind.errors import BindingError
from portabind.events import Metadata

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer
    from werkzeug.wrappers import Request

KEY = "c2lnbmFsci1hY2Nlc3Mta2V5LW9mLWF0LWxlYXN0LTMyLWJ5dGVz"
MESSAGE = b'{"target":"newOrder","arguments":[{"id":7}]}'


def service(httpserver: HTTPServer) -> list[dict[str, str]]:
    """Accept a POST whose bearer token the access key signed for exactly the URL called,
    as the SignalR service does; record what each request carried."""
    seen: list[dict[str, str]] = []

    def handle(request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, KEY, algorithms=["HS256"], audience=request.url)
        except jwt.InvalidTokenError as error:
            return Response(f"invalid token: {error}", status=401)
        seen.append(
            {
                "path": request.path,
                "query": request.query_string.decode(),
                "body": request.get_data(as_text=True),
                "type": request.headers["Content-Type"],
                "ttl": str(claims["exp"] - int(time.time())),
            }
        )
        return Response(status=202)

    httpserver.expect_request("").respond_with_handler(handle)
    return seen


def signalr(httpserver: HTTPServer, **values: str) -> SignalROutput:
    endpoint = httpserver.url_for("/").rstrip("/")
    fields = {"connectionString": f"Endpoint={endpoint};AccessKey={KEY};Version=1.0;", **values}
    return SignalROutput("hub", SignalRMetadata.model_validate(fields))


@pytest.mark.parametrize(
    ("metadata", "path"),
    [
        ({}, "/api/hubs/orders/:send"),
        ({"group": "eu"}, "/api/hubs/orders/groups/eu/:send"),
        ({"user": "ann"}, "/api/hubs/orders/users/ann/:send"),
        ({"group": "eu", "user": "ann"}, "/api/hubs/orders/groups/eu/:send"),
        ({"hub": "Other"}, "/api/hubs/other/:send"),
    ],
)
def test_create_sends_to_all_a_group_or_a_user_with_a_signed_token(
    httpserver: HTTPServer, metadata: dict[str, str], path: str
) -> None:
    seen = service(httpserver)

    response = signalr(httpserver, hub="Orders").invoke("create", MESSAGE, Metadata(metadata))

    assert response.data is None
    ((request),) = seen
    assert (request["path"], request["query"]) == (path, "api-version=2022-11-01")
    assert request["body"] == MESSAGE.decode()  # as given
    assert request["type"] == "application/json; charset=utf-8"
    assert 14 * 60 <= int(request["ttl"]) <= 15 * 60


def test_client_negotiate_returns_the_client_url_and_a_user_token(httpserver: HTTPServer) -> None:
    output = signalr(httpserver, hub="orders")
    endpoint = httpserver.url_for("/").rstrip("/")

    response = output.invoke("clientNegotiate", b"", Metadata({"user": "ann"}))

    negotiated = response.json()
    assert negotiated["url"] == f"{endpoint}/client/?hub=orders"
    claims = jwt.decode(
        negotiated["accessToken"], KEY, algorithms=["HS256"], audience=negotiated["url"]
    )
    assert claims["sub"] == "ann"
    assert httpserver.log == []  # signed locally: no call to the service


def test_endpoint_and_access_key_fields_work_without_a_connection_string(
    httpserver: HTTPServer,
) -> None:
    seen = service(httpserver)
    output = SignalROutput(
        "hub",
        SignalRMetadata.model_validate(
            {"endpoint": httpserver.url_for("/"), "accessKey": KEY, "hub": "orders"}
        ),
    )
    output.invoke("create", MESSAGE, Metadata())
    assert [r["path"] for r in seen] == ["/api/hubs/orders/:send"]


def test_a_refused_call_is_an_error_that_does_not_show_the_key(httpserver: HTTPServer) -> None:
    service(httpserver)
    wrong = signalr(httpserver, hub="orders", accessKey="another-key-of-at-least-32-bytes!!")
    with pytest.raises(BindingError, match="failed with code 401") as caught:
        wrong.invoke("create", MESSAGE, Metadata())
    assert KEY not in str(caught.value)


def test_a_hub_is_required(httpserver: HTTPServer) -> None:
    with pytest.raises(BindingError, match="missing hub"):
        signalr(httpserver).invoke("create", MESSAGE, Metadata())


@pytest.mark.parametrize(
    ("connection_string", "message"),
    [
        (f"Endpoint=https://x.service.signalr.net;AccessKey={KEY};Version=2.0;", "Version"),
        ("Endpoint=https://x.service.signalr.net;AuthType=key;", "AuthType"),
        ("Endpoint=https://x.service.signalr.net;garbage", "malformed"),
        ("Endpoint=https://x.service.signalr.net;Version=1.0;", "no AccessKey"),
        (f"AccessKey={KEY};Version=1.0;", "missing endpoint"),
    ],
)
def test_a_bad_connection_string_is_refused_without_showing_it(
    connection_string: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        SignalRMetadata.model_validate({"connectionString": connection_string})
    assert KEY not in str(caught.value)


def test_an_unresolved_reference_passes_the_build_check() -> None:
    metadata = SignalRMetadata.model_validate({"connectionString": REFERENCE, "hub": "h"})
    assert metadata.hub == "h"


def test_an_entra_connection_string_sets_the_entra_fields() -> None:
    metadata = SignalRMetadata.model_validate(
        {
            "connectionString": "Endpoint=https://x.service.signalr.net;AuthType=aad;"
            "ClientId=c1;ClientSecret=s3cr3t;TenantId=t1;Version=1.0;"
        }
    )
    assert metadata.key() is None
    entra = metadata.entra()
    assert (entra.azure_client_id, entra.azure_tenant_id) == ("c1", "t1")
    assert entra.secret("azure_client_secret") == "s3cr3t"
    assert "s3cr3t" not in repr(entra)


def test_binding_is_output_only_with_dapr_operations() -> None:
    assert binding.directions == {"output"}
    assert binding.output is not None
    assert binding.output.operations == ("create", "clientNegotiate")
    assert json.loads(MESSAGE)["target"] == "newOrder"
