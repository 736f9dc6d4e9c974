"""The AWS Lambda side of a built app: what the generated entry module calls.

`load` imports the bundled app and components once per execution environment (cold start)
and attaches a `Runtime`; SAM hands each secret to the function as the environment variable
`secret_env_name` names, which the runtime's resolver reads before any secret store.

`Function.sqs(component)` returns the Lambda handler of an SQS trigger. Each record is
normalized by `bindings.aws.sqs.event_from_message`, the function the local listener uses,
and handed to the app. Powertools' `BatchProcessor` runs the records and reports only the
failed ones in `batchItemFailures` (the template turns on `ReportBatchItemFailures`), so SQS
deletes the rest and redelivers the failures after their visibility timeout.

Import cost is cold-start latency: this module imports only the core; the SQS mapping and
Powertools are imported when a handler is made. The generated entry imports Powertools'
batch module before anything imports pydantic: otherwise Powertools also builds its pydantic
event parser models, which this handler does not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portabind.project import load_bundle

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from portabind.app import App
    from portabind.runtime import Runtime


@dataclass(frozen=True)
class Function:
    """A built app, loaded at cold start and reused by every invocation."""

    app: App
    runtime: Runtime

    def sqs(self, component: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        """The Lambda handler for SQS batches delivered to input binding `component`."""
        from aws_lambda_powertools.utilities.batch import (
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        from portabind.bindings.aws.sqs import event_from_message

        processor = BatchProcessor(event_type=EventType.SQS)
        app = self.app

        def record_handler(record: Any) -> None:
            # `raw_event` is the record as Lambda sent it; the mapping reads that shape.
            app.handle(event_from_message(component, record.raw_event))

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return dict(
                process_partial_response(
                    event=event, record_handler=record_handler, processor=processor, context=context
                )
            )

        return handler


def load(
    directory: Path | str, *, app_ref: str = "app:app", components: str = "components"
) -> Function:
    """Load the app and components bundled in `directory`, outputs ready to use."""
    return Function(*load_bundle(directory, app_ref=app_ref, components=components))
