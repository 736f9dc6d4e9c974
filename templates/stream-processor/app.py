"""A stream processor: each reading on `readings` becomes the device's latest value in `latest`.

Records arrive in order per device (Kinesis partition key, Event Hubs partition key, Pub/Sub
ordering key). A malformed reading fails only its own record: the platform retries or
dead-letters that record, and the others of the batch are acknowledged.
"""

from pydantic import BaseModel

from portabind import App, Output

app = App()


class Reading(BaseModel):
    device: str
    seq: int
    value: float


@app.binding("readings")
def on_reading(reading: Reading, latest: Output) -> None:
    latest.invoke(
        "create",
        data=reading.model_dump(),
        metadata={"key": f"devices/{reading.device}.json"},
    )
