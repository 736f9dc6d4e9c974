"""Cloud Functions (gen2) events: the CloudEvents and HTTP requests functions-framework
hands a function.

Pub/Sub and Cloud Storage events are `cloudevents.http.CloudEvent`s in the shape Eventarc
delivers (`google.cloud.pubsub.topic.v1.messagePublished`,
`google.cloud.storage.object.v1.finalized`); HTTP functions (the HTTP trigger, and a cron
component's Cloud Scheduler job) receive a Flask request. A payload is bytes, text, or
anything JSON-serialisable, as `app.invoke_binding` takes it. Needs the `gcp` extra.

```python
from portabind.testing.events import gcp

event = gcp.pubsub({"id": 1}, attributes={"tenant": "acme"}, ordering_key="customer-7")
```
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from portabind.events import to_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping

    import flask
    from cloudevents.http import CloudEvent

PROJECT = "my-project"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"


def _rfc3339(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def pubsub(
    data: Any,
    *,
    attributes: Mapping[str, str] | None = None,
    ordering_key: str | None = None,
    topic: str = "my-topic",
    subscription: str = "my-subscription",
) -> CloudEvent:
    """A Pub/Sub message as the `messagePublished` CloudEvent of a push subscription."""
    from cloudevents.http import CloudEvent

    message_id = str(uuid.uuid4().int)[:16]
    published = _rfc3339()
    message: dict[str, Any] = {
        "data": base64.b64encode(to_bytes(data)).decode("ascii"),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": published,
        "publish_time": published,
    }
    if attributes:
        message["attributes"] = dict(attributes)
    if ordering_key:
        message["orderingKey"] = ordering_key
    return CloudEvent(
        {
            "type": PUBSUB_PUBLISHED,
            "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic}",
            "id": message_id,
            "time": published,
            "datacontenttype": "application/json",
        },
        {
            "message": message,
            "subscription": f"projects/{PROJECT}/subscriptions/{subscription}",
        },
    )


def storage(
    name: str,
    *,
    bucket: str = "my-bucket",
    size: int = 0,
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
    event_type: str = STORAGE_FINALIZED,
) -> CloudEvent:
    """A Cloud Storage object event (default: a new object `name` finalized in `bucket`);
    its data is the object's resource as the JSON API shows it."""
    from cloudevents.http import CloudEvent

    generation = str(int(datetime.now(timezone.utc).timestamp() * 1_000_000))
    created = _rfc3339()
    resource: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{name}",
        "name": name,
        "bucket": bucket,
        "generation": generation,
        "metageneration": "1",
        "contentType": content_type,
        "timeCreated": created,
        "updated": created,
        "storageClass": "STANDARD",
        "size": str(size),
        "md5Hash": base64.b64encode(uuid.uuid4().bytes).decode("ascii"),
        "etag": base64.b64encode(uuid.uuid4().bytes[:6]).decode("ascii"),
    }
    if metadata:
        resource["metadata"] = dict(metadata)
    return CloudEvent(
        {
            "type": event_type,
            "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
            "subject": f"objects/{name}",
            "id": str(uuid.uuid4().int)[:16],
            "time": created,
            "datacontenttype": "application/json",
        },
        resource,
    )


def http_request(
    method: str = "POST",
    path: str = "/",
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> flask.Request:
    """A request to an HTTP function, with the `Function-Execution-Id` header Cloud
    Functions adds."""
    from flask import Request
    from werkzeug.test import EnvironBuilder

    # Header names title-cased, so that one given in any case replaces a default.
    sent = {
        "Content-Type": "application/json",
        "Function-Execution-Id": uuid.uuid4().hex[:12],
        **{name.title(): value for name, value in (headers or {}).items()},
    }
    builder = EnvironBuilder(
        method=method,
        path=path,
        query_string=urlencode(dict(query or {})),
        headers=list(sent.items()),
        data=b"" if body is None else to_bytes(body),
    )
    try:
        return Request(builder.get_environ())
    finally:
        builder.close()


def scheduler_request(
    job_name: str = "my-job", schedule_time: datetime | None = None
) -> flask.Request:
    """The POST a Cloud Scheduler job makes to a cron component's function, with the job's
    name and schedule time headers."""
    return http_request(
        "POST",
        headers={
            "User-Agent": "Google-Cloud-Scheduler",
            "X-CloudScheduler": "true",
            "X-CloudScheduler-JobName": job_name,
            "X-CloudScheduler-ScheduleTime": _rfc3339(schedule_time),
        },
    )
