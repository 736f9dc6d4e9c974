"""Storage events: each object created in `uploads` is read and summarised into `summaries`.

The event names the object: metadata `key` on S3 and Cloud Storage, `blobName` on Azure Blob
Storage. What `data` holds differs (the S3 record, the Cloud Storage object's description, the
blob's content), so the handler reads the object through the same component, which works
alike everywhere.
"""

from portabind import App, BindingEvent, Output

app = App()


def object_name(event: BindingEvent) -> str:
    return event.metadata.get("key") or event.metadata["blobName"]


@app.binding("uploads")
def on_upload(event: BindingEvent, uploads: Output, summaries: Output) -> None:
    name = object_name(event)
    content = uploads.invoke("get", metadata={"key": name}).data or b""
    summary = {"object": name, "bytes": len(content), "lines": len(content.splitlines())}
    base = name.rsplit("/", 1)[-1]
    summaries.invoke("create", data=summary, metadata={"key": f"summaries/{base}.json"})
