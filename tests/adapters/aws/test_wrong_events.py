"""The built Lambda entry, as the Lambda runtime runs it: a failed SQS record is in the
function's log with its id and traceback, and an event of another trigger is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from portabind.testing.events import aws
from portabind.tooling.cli import main
from portabind.tooling.scaffold import scaffold

if TYPE_CHECKING:
    from pathlib import Path

#: Imports the entry as the Lambda runtime does (its root logger writes the function's log)
#: and prints the reply to one event: argv[1] the handler's name, stdin the event.
INVOKE = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
import portabind_lambda
print(json.dumps(getattr(portabind_lambda, sys.argv[1])(json.load(sys.stdin), None)))
"""


def built_worker(tmp_path: Path) -> Path:
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    out = app / "out" / "aws"
    components = app / "components" / "aws"
    built = main(["build", str(app), "--components", str(components), "--target", "aws",
                  "--out", str(out)])  # fmt: skip
    assert built == 0
    return out


def invoke(out: Path, event: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", INVOKE, "handle_jobs"],
        cwd=out,
        input=json.dumps(event),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_failed_record_is_logged_with_its_id_and_traceback(tmp_path: Path) -> None:
    event = aws.sqs({"id": "no-number"})
    message_id = event["Records"][0]["messageId"]

    done = invoke(built_worker(tmp_path), event)

    # Every record of the batch failed: the invocation fails, Lambda retries the batch.
    assert done.returncode == 1
    assert f"message {message_id} failed; SQS delivers it again" in done.stderr
    assert "Traceback" in done.stderr
    assert "KeyError: 'n'" in done.stderr


def test_an_sns_event_at_the_sqs_function_is_refused(tmp_path: Path) -> None:
    done = invoke(built_worker(tmp_path), aws.sns({"id": "a1", "n": 7}))

    assert done.returncode == 1
    assert "WrongEvent: jobs: the SQS function got an event whose eventSource is None" in (
        done.stderr
    )


def test_an_event_without_records_is_refused(tmp_path: Path) -> None:
    done = invoke(built_worker(tmp_path), {"detail-type": "Scheduled Event"})

    assert done.returncode == 1
    assert "the SQS function got an event without Records" in done.stderr
