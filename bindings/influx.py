"""`bindings.influx`: write points to and query InfluxDB 2.x, output only
(Dapr's: components-contrib `bindings/influx/influx.go`).

`create` takes `{"measurement": ..., "tags": "k=v,...", "values": "f=v,..."}` and writes the
line `measurement,tags values` with a blocking write. `query` runs the Flux query in request
metadata `raw` and returns the annotated CSV as the server sent it. influxdb-client is
imported when the client is made.
"""

from __future__ import annotations

import json
from typing import Any

from portabind.binding import Binding, OutputBinding
from portabind.errors import BindingError
from portabind.events import BindingResponse, Metadata
from portabind.metadata import BindingMetadata, Secret, setting


class InfluxMetadata(BindingMetadata):
    binding_type = "bindings.influx"
    # Listed in Dapr's metadata.yaml, read by no code there.
    no_effect = {"measurement": "each point of `create` names its measurement, as in Dapr"}

    url: str = setting("url", description="server URL, e.g. http://localhost:8086")
    token: Secret = setting("token", secret=True, description="API token")
    org: str = setting("org", description="organization")
    bucket: str = setting("bucket", description="bucket that `create` writes to")


def line_protocol(data: bytes) -> str:
    """The line for one `create` payload; ValueError when it is not that JSON shape."""
    try:
        point = json.loads(data)
    except ValueError:
        point = None
    if not isinstance(point, dict):
        raise ValueError("expected a JSON object with measurement, tags and values")
    parts = {key: point.get(key) for key in ("measurement", "tags", "values")}
    for key in ("measurement", "values"):
        if not isinstance(parts[key], str) or not parts[key]:
            raise ValueError(f"{key!r} must be a non-empty string")
    if parts["tags"] is not None and not isinstance(parts["tags"], str):
        raise ValueError("'tags' must be a string such as \"host=a,region=x\"")
    series = f"{parts['measurement']},{parts['tags']}" if parts["tags"] else parts["measurement"]
    return f"{series} {parts['values']}"


class InfluxOutput(OutputBinding[InfluxMetadata]):
    operations = ("create", "query")

    def __init__(self, name: str, metadata: InfluxMetadata) -> None:
        super().__init__(name, metadata)
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self._client = InfluxDBClient(
            url=metadata.url, token=metadata.secret("token") or "", org=metadata.org
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._query = self._client.query_api()

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            line = line_protocol(data)
        except ValueError as error:
            raise BindingError(
                self.name, "create", f"influx error: Cannot convert request data: {error}"
            ) from None
        try:
            self._write.write(bucket=self.metadata.bucket, org=self.metadata.org, record=line)
        except Exception as error:  # ApiException or a urllib3 transport error
            raise BindingError(
                self.name, "create", f"influx error: Cannot write point: {_reason(error)}"
            ) from error
        return BindingResponse()

    def query(self, data: bytes, metadata: Metadata) -> BindingResponse:
        flux = metadata.get("raw", "")
        if not flux:
            raise BindingError(self.name, "query", "required metadata not set: raw")
        try:
            response = self._query.query_raw(flux, org=self.metadata.org)
            csv: bytes = response.data
        except Exception as error:  # ApiException or a urllib3 transport error
            raise BindingError(self.name, "query", f"influx error: {_reason(error)}") from error
        return BindingResponse(csv, Metadata({"operation": "query", "raw": flux}))


def _reason(error: Exception) -> str:
    """The server's message for an ApiException (its JSON `message`), else the error."""
    body: Any = getattr(error, "body", None)
    if body:
        try:
            return f"{getattr(error, 'status', '')} {json.loads(body)['message']}".strip()
        except (ValueError, KeyError, TypeError):
            return f"{getattr(error, 'status', '')} {body}".strip()
    return str(error)


binding = Binding(metadata=InfluxMetadata, output=InfluxOutput)
