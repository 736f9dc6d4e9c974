"""`portabind deploy --target aws`: the SAM application in OUT onto AWS with the SAM CLI.

`sam build` (from OUT/template.yaml into OUT/.aws-sam/build), then `sam deploy` of the
CloudFormation stack named after the deployment, which creates or updates it: IAM roles for
the functions (`CAPABILITY_IAM`), the artifact uploaded to the bucket SAM manages
(`--resolve-s3`, shared by every SAM app of the account and region, so never deleted here) or
to `--bucket`. Secrets stay the template's `{{resolve:secretsmanager:...}}` references, which
CloudFormation resolves. `destroy` runs `sam delete`, which deletes the stack with everything
the template created (an SQS trigger's queue, ...) and the artifacts it uploaded; resources the
components name as existing (`portabind.io/existing`) are not part of the stack.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from portabind.errors import UserError
from portabind.tooling.deployment import Deployer, Probe, Resource, Step

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.tooling.deployment import DeployOptions

#: CloudFormation's rule for a stack name.
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
#: What `sam list stack-outputs` and `sam delete` print for a stack that does not exist.
_NO_STACK = r"does not exist on Cloudformation"


def plan(out: Path, options: DeployOptions) -> list[Step]:
    stack = options.name
    if not _STACK_NAME.fullmatch(stack):
        raise UserError(
            f"{stack!r} is not a CloudFormation stack name",
            hint="--name: letters, digits and hyphens, starting with a letter (128 at most)",
        )
    region = ("--region", options.region) if options.region else ()
    built = out / ".aws-sam" / "build"
    upload = ("--s3-bucket", options.bucket) if options.bucket else ("--resolve-s3",)
    deploy = (
        "sam",
        "deploy",
        "--template-file",
        str(built / "template.yaml"),
        "--stack-name",
        stack,
        *region,
        "--capabilities",
        "CAPABILITY_IAM",
        *upload,
        "--no-fail-on-empty-changeset",  # a second deploy of the same build changes nothing
        "--guided" if options.guided else "--no-confirm-changeset",
    )
    return [
        Step(
            "build the SAM application",
            (
                "sam",
                "build",
                "--template-file",
                str(out / "template.yaml"),
                "--build-dir",
                str(built),
            ),
        ),
        Step(
            f"deploy the CloudFormation stack {stack}",
            deploy,
            creates=(
                Resource(
                    "CloudFormation stack",
                    stack,
                    delete=("sam", "delete", "--stack-name", stack, *region, "--no-prompts"),
                ),
            ),
            probe=Probe(
                ("sam", "list", "stack-outputs", "--stack-name", stack, *region), _NO_STACK
            ),
            update=deploy,
        ),
    ]


DEPLOYER = Deployer(
    tools={
        "sam": "install the AWS SAM CLI: `pip install aws-sam-cli` (best in a virtualenv of its "
        "own), then sign in with AWS credentials (`aws configure`, or AWS_PROFILE)"
    },
    plan=plan,
    options=frozenset({"region", "bucket", "guided"}),
)
