"""bindings.http against a real local HTTP(S) server (pytest-httpserver)."""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.http import HttpInput, HttpMetadata, HttpOutput, HttpStatusError, binding
from portabind.errors import BindingError
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from pytest_httpserver import HTTPServer
    from werkzeug import Request

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")


@pytest.fixture
def client(httpserver: HTTPServer) -> Iterator[Callable[..., HttpOutput]]:
    made: list[HttpOutput] = []

    def make(**fields: Any) -> HttpOutput:
        values = {"url": httpserver.url_for("/api"), **fields}
        output = HttpOutput("web", HttpMetadata.model_validate(values))
        made.append(output)
        return output

    yield make
    for output in made:
        output.close()


@pytest.mark.parametrize(
    ("operation", "verb", "sends_body"),
    [
        ("create", "POST", True),
        ("post", "POST", True),
        ("put", "PUT", True),
        ("patch", "PATCH", True),
        ("get", "GET", False),
        ("delete", "DELETE", False),
        ("options", "OPTIONS", False),
        ("trace", "TRACE", False),
    ],
)
def test_operation_selects_the_verb_and_only_post_put_patch_send_the_data(
    httpserver: HTTPServer,
    client: Callable[..., HttpOutput],
    operation: str,
    verb: str,
    sends_body: bool,
) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Any:
        from werkzeug import Response

        seen.append(request)
        return Response(b'{"ok":true}', status=201, content_type="application/json")

    httpserver.expect_request("/api/items", method=verb).respond_with_handler(handler)

    response = client().invoke(operation, b'{"n":1}', Metadata({"path": "/items"}))

    assert response.data == b'{"ok":true}'
    assert response.metadata["statusCode"] == "201"
    assert response.metadata["status"] == "201 CREATED"
    assert response.metadata["Content-Type"] == "application/json"
    (request,) = seen
    assert request.get_data() == (b'{"n":1}' if sends_body else b"")
    assert request.headers["Accept"] == "application/json; charset=utf-8"
    if sends_body:
        assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    else:
        assert "Content-Type" not in request.headers


def test_head_returns_status_and_headers_without_data(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    httpserver.expect_request("/api", method="HEAD").respond_with_data(
        "", headers={"X-Version": "7"}
    )

    response = client().invoke("head", b"", Metadata())

    assert response.data == b""
    assert response.metadata["statusCode"] == "200"
    assert response.metadata["X-Version"] == "7"


def test_path_is_joined_with_one_slash_and_keeps_its_query(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    httpserver.expect_request(
        "/api/orders/7", method="GET", query_string="full=1"
    ).respond_with_data("found")

    output = client(url=httpserver.url_for("/api/"))
    response = output.invoke("get", b"", Metadata({"path": "//orders/7?full=1"}))

    assert response.data == b"found"


def test_path_with_dot_dot_is_refused_before_any_request(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    with pytest.raises(BindingError, match="invalid path"):
        client().invoke("get", b"", Metadata({"path": "../admin"}))
    assert httpserver.log == []


def test_capitalised_metadata_keys_become_headers_and_the_rest_do_not(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    httpserver.expect_request("/api", method="POST").respond_with_data("ok")

    client(securityToken="s3cret", securityTokenHeader="X-Token").invoke(
        "post",
        b"plain text",
        Metadata(
            {
                "Content-Type": "text/plain",
                "Accept": "text/plain",
                "X-Request-Id": "r-1",
                "lowercase": "not a header",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            }
        ),
    )

    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"] == "text/plain"
    assert request.headers["Accept"] == "text/plain"
    assert request.headers["X-Request-Id"] == "r-1"
    assert request.headers["X-Token"] == "s3cret"
    assert request.headers["traceparent"].startswith("00-0af7651916cd43dd")
    assert "lowercase" not in request.headers


def test_repeated_response_headers_are_joined_under_canonical_names(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    from werkzeug import Response
    from werkzeug.datastructures import Headers

    headers = Headers([("x-multi-value", "a"), ("x-multi-value", "b")])
    httpserver.expect_request("/api").respond_with_response(Response("x", headers=headers))

    response = client().invoke("get", b"", Metadata())

    assert "X-Multi-Value" in list(response.metadata)
    assert response.metadata["X-Multi-Value"] == "a, b"


def test_non_2xx_is_an_error_that_still_carries_the_response(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    httpserver.expect_request("/api").respond_with_data("missing", status=404)

    with pytest.raises(HttpStatusError, match="received status code 404") as caught:
        client().invoke("get", b"", Metadata())

    assert caught.value.response.metadata["statusCode"] == "404"
    assert caught.value.response.metadata["status"] == "404 NOT FOUND"
    assert caught.value.response.data == b"missing"


def test_error_if_not_2xx_can_be_switched_off_per_component_and_per_request(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    httpserver.expect_request("/api").respond_with_data("teapot", status=418)

    off = client(errorIfNot2XX="false").invoke("get", b"", Metadata())
    per_request = client().invoke("get", b"", Metadata({"errorIfNot2XX": "no"}))
    with pytest.raises(HttpStatusError):
        client(errorIfNot2XX="false").invoke("get", b"", Metadata({"errorIfNot2XX": "yes"}))

    assert off.metadata["statusCode"] == per_request.metadata["statusCode"] == "418"
    assert per_request.data == b"teapot"


def test_response_body_is_cut_at_max_response_body_size(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    httpserver.expect_request("/api").respond_with_data(b"x" * 5000)

    assert client(maxResponseBodySize="1Ki").invoke("get", b"", Metadata()).data == b"x" * 1024
    assert len(client(maxResponseBodySize="0").invoke("get", b"", Metadata()).data or b"") == 5000


def test_response_timeout_fails_a_slow_request(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    answered = threading.Event()

    def slow(request: Request) -> Any:
        from werkzeug import Response

        answered.wait(3)  # released once the client gave up, so the server is free again
        return Response("late")

    httpserver.expect_request("/api").respond_with_handler(slow)

    started = time.monotonic()
    try:
        with pytest.raises(BindingError, match="Timeout"):
            client(responseTimeout="300ms").invoke("get", b"", Metadata())
        assert time.monotonic() - started < 1.4
    finally:
        answered.set()


def test_response_timeout_bounds_the_whole_request_not_each_read(
    httpserver: HTTPServer, client: Callable[..., HttpOutput]
) -> None:
    def dripping(request: Request) -> Any:
        from werkzeug import Response

        def body() -> Iterator[bytes]:
            for _ in range(8):
                time.sleep(0.1)  # each read is quick; the whole body takes 0.8 s
                yield b"drop "

        return Response(body())

    httpserver.expect_request("/api").respond_with_handler(dripping)

    with pytest.raises(BindingError, match="responseTimeout elapsed"):
        client(responseTimeout="350ms").invoke("get", b"", Metadata())
    assert client().invoke("get", b"", Metadata()).data == b"drop " * 8


def test_module_exports_the_output_and_the_trigger_extension() -> None:
    # Dapr's http binding is output only; the input is portabind's HTTP trigger extension
    # (tests/bindings/test_http_inbound.py).
    assert binding.output is HttpOutput
    assert binding.input is HttpInput
    assert binding.directions == {"input", "output"}


def test_unreachable_server_is_a_binding_error() -> None:
    output = HttpOutput("web", HttpMetadata.model_validate({"url": "http://127.0.0.1:9/"}))
    with pytest.raises(BindingError, match="ConnectError"):
        output.invoke("get", b"", Metadata())


def test_metadata_rejects_half_a_client_pair_and_a_bad_size() -> None:
    with pytest.raises(ValueError, match="MTLSClientCert and MTLSClientKey"):
        HttpMetadata.model_validate({"url": "https://x", "MTLSClientCert": "cert.pem"})
    with pytest.raises(ValueError, match="not a byte size"):
        HttpMetadata.model_validate({"url": "https://x", "maxResponseBodySize": "lots"})


# --- TLS: a private CA, a server certificate and a client certificate -----------------------


def _pem_pair(name: str, issuer: Any = None) -> tuple[Any, Any, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer or (None, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return (
        cert,
        key,
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """An HTTPS server that requires a client certificate signed by the same private CA."""
    pytest.importorskip("cryptography")
    from pytest_httpserver import HTTPServer

    ca_cert, ca_key, ca_pem, _ = _pem_pair("portabind test CA")
    _, _, server_pem, server_key = _pem_pair("localhost", (ca_cert, ca_key))
    _, _, client_pem, client_key = _pem_pair("client", (ca_cert, ca_key))
    for name, content in {
        "ca.pem": ca_pem,
        "server.pem": server_pem,
        "server.key": server_key,
        "client.pem": client_pem,
        "client.key": client_key,
    }.items():
        (tmp_path / name).write_bytes(content)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.load_verify_locations(tmp_path / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = HTTPServer(host="localhost", ssl_context=context)
    server.start()
    try:
        yield (
            server,
            {
                "ca": ca_pem.decode(),
                "ca_path": str(tmp_path / "ca.pem"),
                "cert": client_pem.decode(),
                "key": client_key.decode(),
                "cert_path": str(tmp_path / "client.pem"),
                "key_path": str(tmp_path / "client.key"),
            },
        )
    finally:
        server.clear()
        server.stop()


def test_mtls_with_pem_text_and_with_file_paths(tls_server: tuple[Any, dict[str, str]]) -> None:
    server, pems = tls_server
    server.expect_request("/secure").respond_with_data("hello over mTLS")
    url = server.url_for("/secure")

    for fields in (
        {"MTLSRootCA": pems["ca"], "MTLSClientCert": pems["cert"], "MTLSClientKey": pems["key"]},
        {
            "mtlsRootCA": pems["ca_path"],
            "mtlsClientCert": pems["cert_path"],
            "mtlsClientKey": pems["key_path"],
            "MTLSRenegotiation": "RenegotiateOnceAsClient",
        },
    ):
        output = HttpOutput("secure", HttpMetadata.model_validate({"url": url, **fields}))
        try:
            assert output.invoke("get", b"", Metadata()).data == b"hello over mTLS"
        finally:
            output.close()


def test_tls_fails_without_the_private_root_ca_or_without_a_client_cert(
    tls_server: tuple[Any, dict[str, str]],
) -> None:
    server, pems = tls_server
    server.expect_request("/secure").respond_with_data("never")
    url = server.url_for("/secure")

    for fields in ({}, {"MTLSRootCA": pems["ca"]}):
        output = HttpOutput("secure", HttpMetadata.model_validate({"url": url, **fields}))
        try:
            with pytest.raises(BindingError):
                output.invoke("get", b"", Metadata())
        finally:
            output.close()
