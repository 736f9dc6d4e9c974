"""bindings.influx: `create` against VictoriaMetrics (it serves InfluxDB's /api/v2/write);
`query` against a local HTTP server that receives the SDK's real Flux request and answers
annotated CSV (no installable server speaks Flux)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.emulators import free_port
from portabind.bindings.influx import InfluxMetadata, InfluxOutput, binding
from portabind.errors import BindingError
from portabind.events import Metadata
from tests.helpers import http_status, require_server, server_fixture, serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pytest_httpserver import HTTPServer

pytest.importorskip("influxdb_client")

INSTALL = "apt-get update && apt-get install -y victoria-metrics"
CSV = (
    b"#datatype,string,long,dateTime:RFC3339,double,string\r\n"
    b"#group,false,false,false,false,true\r\n"
    b"#default,_result,,,,\r\n"
    b",result,table,_time,_value,_field\r\n"
    b",,0,2024-01-02T15:04:05Z,0.5,cpu\r\n\r\n"
)


@server_fixture("victoria-metrics", scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A VictoriaMetrics server on a free port with its data in a temp dir; yields its URL."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        require_server("victoria-metrics", "the binary is not on PATH", INSTALL)
    data: Path = tmp_path_factory.mktemp("victoria-metrics")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [binary, "-httpListenAddr", f"127.0.0.1:{port}", "-storageDataPath", str(data)]
    with serving(command, port, data / "log", ready=lambda: http_status(url + "/health") == 200):
        yield url


def _influx(url: str, **fields: Any) -> InfluxOutput:
    values = {"url": url, "token": "t0ken", "org": "acme", "bucket": "metrics", **fields}
    return InfluxOutput("metrics", InfluxMetadata.model_validate(values))


def _exported(url: str, metric: str) -> list[dict[str, Any]]:
    """The stored series matching `metric`; VictoriaMetrics makes new series searchable
    about a second after a flush, so this polls for up to 10 s."""
    urllib.request.urlopen(url + "/internal/force_flush", timeout=5).close()
    query = f"{url}/api/v1/export?match[]={{__name__=~%22{metric}%22}}"
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(query, timeout=5) as response:
            rows = [json.loads(line) for line in response.read().splitlines() if line]
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_create_writes_the_line_protocol_point(victoria_metrics: str) -> None:
    influx = _influx(victoria_metrics)
    point = {"measurement": "cpu", "tags": "host=h1,region=eu", "values": "usage=0.5,load=2"}

    response = influx.invoke("create", json.dumps(point).encode(), Metadata())

    assert response.data is None
    # VictoriaMetrics stores each field as its own series, `<measurement>_<field>`.
    series = {
        row["metric"]["__name__"]: (row["metric"], row["values"])
        for row in _exported(victoria_metrics, "cpu_.*")
    }
    assert series == {
        "cpu_usage": ({"__name__": "cpu_usage", "host": "h1", "region": "eu"}, [0.5]),
        "cpu_load": ({"__name__": "cpu_load", "host": "h1", "region": "eu"}, [2]),
    }


def test_create_without_tags_writes_a_plain_series(victoria_metrics: str) -> None:
    _influx(victoria_metrics).invoke(
        "create", b'{"measurement": "temperature", "values": "celsius=21.5"}', Metadata()
    )

    (row,) = _exported(victoria_metrics, "temperature_.*")
    assert row["metric"]["__name__"] == "temperature_celsius"
    assert row["values"] == [21.5]


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[1,2]", b'{"measurement": "m"}', b'{"measurement": "", "values": "v=1"}'],
)
def test_create_refuses_data_that_is_not_a_point(victoria_metrics: str, data: bytes) -> None:
    with pytest.raises(BindingError, match="influx error: Cannot convert request data"):
        _influx(victoria_metrics).invoke("create", data, Metadata())


def test_create_reports_a_write_the_server_refuses(httpserver: HTTPServer) -> None:
    # VictoriaMetrics accepts any token; InfluxDB's refusal is played by a local server.
    httpserver.expect_request("/api/v2/write", method="POST").respond_with_json(
        {"code": "unauthorized", "message": "unauthorized access"}, status=401
    )
    point = {"measurement": "cpu", "tags": "host=h1", "values": "usage=1"}

    with pytest.raises(BindingError, match="Cannot write point: 401 unauthorized access"):
        _influx(httpserver.url_for("/")).invoke("create", json.dumps(point).encode(), Metadata())
    ((request, _),) = httpserver.log
    assert request.args["bucket"] == "metrics"
    assert request.get_data() == b"cpu,host=h1 usage=1"


def test_create_against_no_server_is_a_binding_error() -> None:
    point = {"measurement": "cpu", "tags": "host=h1", "values": "usage=1"}
    influx = _influx(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(BindingError, match="Cannot write point"):
        influx.invoke("create", json.dumps(point).encode(), Metadata())


def test_query_sends_flux_and_returns_the_annotated_csv(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v2/query", method="POST").respond_with_data(
        CSV, content_type="text/csv; charset=utf-8"
    )
    flux = 'from(bucket:"metrics") |> range(start: -1h)'

    response = _influx(httpserver.url_for("/")).invoke("query", b"", Metadata({"raw": flux}))

    assert response.data == CSV
    assert dict(response.metadata) == {"operation": "query", "raw": flux}
    ((request, _),) = httpserver.log
    assert request.args["org"] == "acme"
    assert request.headers["Authorization"] == "Token t0ken"
    body = json.loads(request.get_data())
    assert body["query"] == flux
    assert body["dialect"]["annotations"] == ["datatype", "group", "default"]


def test_query_needs_raw_and_reports_server_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v2/query").respond_with_json(
        {"code": "invalid", "message": "compilation failed: undefined identifier"}, status=400
    )
    influx = _influx(httpserver.url_for("/"))

    with pytest.raises(BindingError, match="required metadata not set: raw"):
        influx.invoke("query", b"", Metadata())
    with pytest.raises(BindingError, match="400 compilation failed"):
        influx.invoke("query", b"", Metadata({"raw": "nonsense"}))


def test_metadata_fields_match_dapr() -> None:
    assert InfluxMetadata.required_names() == ["url", "token", "org", "bucket"]
    assert InfluxMetadata.secret_names() == {"token"}
    assert binding.output is InfluxOutput
    assert binding.output.operations == ("create", "query")
