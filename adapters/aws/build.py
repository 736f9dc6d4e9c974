"""`portabind build --target aws`: an AWS SAM application in OUT.

OUT holds `template.yaml`, the entry module `portabind_lambda.py`, the user's app modules,
the components profile (YAML only: a secrets file next to it is never copied), the parts of
portabind the app runs on (core, the binding modules its components use, this adapter's
runtime) and `requirements.txt`, so `sam build && sam deploy` needs nothing else.

The template:
- one `AWS::Serverless::Function` per input binding with a handler, its native event source
  (`TRIGGERS`) with `FunctionResponseTypes: [ReportBatchItemFailures]`, batch size and
  window from the `portabind.io/batchSize` / `portabind.io/batchWindow` annotations;
- an SQS trigger's queue is created by the stack, as SAM users usually own it, with a dead
  letter queue (`<queue>-dlq`) after `portabind.io/maxReceiveCount` (default 5) failed
  receives, so a poison message cannot loop forever. Annotate `portabind.io/existing: "true"`
  to subscribe to a queue that exists already (referenced by ARN, nothing created);
- least-privilege SAM policy templates for every output-capable AWS component of the
  profile (the app may call any of them): `S3CrudPolicy`, `SQSSendMessagePolicy`, …;
- each `secretKeyRef` as an environment variable (`secret_env_name`) whose value is a
  Secrets Manager dynamic reference, `{{resolve:secretsmanager:<name>:SecretString:<key>}}`:
  CloudFormation resolves it at deploy time; the template never holds a secret value.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import importlib.util
import py_compile
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from portabind import registry
from portabind.errors import BuildError
from portabind.metadata import parse_duration
from portabind.secrets import secret_env_name

if TYPE_CHECKING:
    from portabind.components import Component
    from portabind.project import Project

#: Dapr type → SAM event type of its native Lambda trigger.
TRIGGERS = {"bindings.aws.sqs": "SQS"}
#: Output type → (SAM policy template, its parameter, the Dapr field giving the value).
POLICIES = {
    "bindings.aws.s3": ("S3CrudPolicy", "BucketName", "bucket"),
    "bindings.aws.sqs": ("SQSSendMessagePolicy", "QueueName", "queueName"),
    "bindings.aws.sns": ("SNSPublishMessagePolicy", "TopicName", "topicArn"),
    "bindings.aws.dynamodb": ("DynamoDBWritePolicy", "TableName", "table"),
    "bindings.aws.kinesis": ("KinesisCrudPolicy", "StreamName", "streamName"),
}
ENTRY_MODULE = "portabind_lambda"
SUPPORTED_RUNTIMES = ("python3.11", "python3.12", "python3.13")
DEFAULT_RUNTIME = "python3.12"
#: Function timeout; SQS needs the queue's visibility timeout at least this long, and AWS
#: advises six times it so retries of a throttled batch do not redeliver early.
TIMEOUT_SECONDS = 30
VISIBILITY_TIMEOUT = 6 * TIMEOUT_SECONDS
DEFAULT_MAX_RECEIVE_COUNT = 5
FOURTEEN_DAYS = 14 * 24 * 3600
#: Extras whose packages every Lambda needs: boto3 and Powertools (the SQS batch handler).
BASE_EXTRA = "aws"


def _logical_id(name: str, suffix: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    base = "".join(w[0].upper() + w[1:] for w in words) or "Binding"
    return ("C" + base if base[0].isdigit() else base) + suffix


def _handler_name(component: str) -> str:
    return "handle_" + re.sub(r"\W", "_", component)


def _runtime() -> str:
    """The build interpreter's Lambda runtime when Lambda has it: the bytecode compiled
    here then loads as is (the read-only task root cannot cache it at cold start)."""
    current = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return current if current in SUPPORTED_RUNTIMES else DEFAULT_RUNTIME


def _literal(component: Component, field: str) -> str:
    """A component field that must be a literal to appear in the template (a resource name)."""
    names = registry.binding_for(component).metadata.dapr_names()
    for key, value in component.binding_values().items():
        if names.get(key.lower()) == field:
            if value.literal:
                return value.literal
            raise component.error(
                "must be a literal value for the AWS build (it names a resource in the template)",
                field=key,
            )
    raise component.error("is required", field=field)


def _annotation_int(component: Component, key: str, default: int | None) -> int | None:
    raw = component.annotation(key)
    if raw is None:
        return default
    try:
        return int(raw) if key != "batchWindow" else int(parse_duration(raw).total_seconds())
    except ValueError:
        raise component.error(
            f"annotation portabind.io/{key} must be a whole number, got {raw!r}",
            field=f"metadata.annotations.portabind.io/{key}",
        ) from None


def _sqs_event(component: Component, resources: dict[str, Any]) -> dict[str, Any]:
    """The SQS event of a trigger, adding its queue and dead letter queue to `resources`
    unless the component subscribes to an existing queue."""
    queue_name = _literal(component, "queueName")
    fifo = queue_name.endswith(".fifo")
    if (component.annotation("existing") or "").lower() == "true":
        queue_arn: Any = {
            "Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:"
            f"{queue_name}"
        }
    else:
        queue_id = _logical_id(component.name, "Queue")
        dlq_id = _logical_id(component.name, "DeadLetterQueue")
        fifo_props = {"FifoQueue": True} if fifo else {}
        dlq_name = queue_name.removesuffix(".fifo") + "-dlq" + (".fifo" if fifo else "")
        resources[dlq_id] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": dlq_name,
                "MessageRetentionPeriod": FOURTEEN_DAYS,
                **fifo_props,
            },
        }
        resources[queue_id] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue_name,
                "VisibilityTimeout": VISIBILITY_TIMEOUT,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                    "maxReceiveCount": _annotation_int(
                        component, "maxReceiveCount", DEFAULT_MAX_RECEIVE_COUNT
                    ),
                },
                **fifo_props,
            },
        }
        queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    properties: dict[str, Any] = {"Queue": queue_arn}
    batch_size = _annotation_int(component, "batchSize", None)
    window = _annotation_int(component, "batchWindow", None)
    limit = 10 if fifo else 10000
    if batch_size is not None and not 1 <= batch_size <= limit:
        raise component.error(
            f"portabind.io/batchSize must be 1..{limit} for this queue, got {batch_size}",
            field="metadata.annotations.portabind.io/batchSize",
        )
    if batch_size is not None and batch_size > 10 and not window:
        raise BuildError(
            f"component {component.name!r}: an SQS batch larger than 10 needs a batching window",
            hint='add the annotation portabind.io/batchWindow (e.g. "5s")',
        )
    if batch_size is not None:
        properties["BatchSize"] = batch_size
    if window is not None:
        properties["MaximumBatchingWindowInSeconds"] = window
    properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    return {"Type": "SQS", "Properties": properties}


def _policies(project: Project) -> list[dict[str, Any]]:
    policies = []
    for component in project.components.bindings():
        binding = registry.binding_for(component)
        wanted = component.direction or binding.directions
        if binding.output is None or "output" not in wanted or component.type not in POLICIES:
            continue
        template, parameter, field = POLICIES[component.type]
        value = _literal(component, field)
        if field == "topicArn":  # the policy template takes the topic's name
            value = value.rsplit(":", 1)[-1]
        policy = {template: {parameter: value}}
        if policy not in policies:
            policies.append(policy)
    return policies


def _secret_variables(project: Project) -> dict[str, str]:
    variables = {}
    for component in project.components.bindings():
        for key, value in component.binding_values().items():
            ref = value.secret_ref
            if ref is not None:
                variables[secret_env_name(component.name, key)] = (
                    f"{{{{resolve:secretsmanager:{ref.name}:SecretString:{ref.key or ref.name}}}}}"
                )
    return variables


def template(project: Project) -> dict[str, Any]:
    """The SAM template of the project, as a mapping."""
    resources: dict[str, Any] = {}
    functions: dict[str, Any] = {}
    environment = _secret_variables(project)
    policies = _policies(project)
    for name in project.app.handlers:
        component = project.components.get(name)
        if component.type not in TRIGGERS:
            native = ", ".join(sorted(TRIGGERS))
            raise BuildError(
                f"input binding {name!r} ({component.type}) has no AWS Lambda trigger",
                hint=f"run it with `portabind run` (a local listener), or use a type with a "
                f"Lambda trigger: {native}",
            )
        properties: dict[str, Any] = {
            "Runtime": _runtime(),
            "Handler": f"{ENTRY_MODULE}.{_handler_name(name)}",
            "CodeUri": ".",
            "Timeout": TIMEOUT_SECONDS,
            "Description": f"portabind: input binding {name} ({component.type})",
        }
        if environment:
            properties["Environment"] = {"Variables": environment}
        if policies:
            properties["Policies"] = policies
        properties["Events"] = {TRIGGERS[component.type]: _sqs_event(component, resources)}
        functions[_logical_id(name, "Function")] = {
            "Type": "AWS::Serverless::Function",
            "Properties": properties,
        }
    if not functions:
        raise BuildError(
            "the app registers no input handler, so there is no function to deploy",
            hint='decorate a handler with @app.binding("<input component>")',
        )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"portabind app {project.directory.resolve().name}",
        "Resources": {**functions, **resources},
    }


def _entry(project: Project) -> str:
    lines = [
        f'"""AWS Lambda entry points of {project.app_ref}, written by `portabind build`."""',
        "",
        "from pathlib import Path",
        "",
        "# First, before pydantic: imported after it, Powertools' batch module also builds its",
        "# pydantic event parser models (tens of ms of cold start) that this handler never uses.",
        "import aws_lambda_powertools.utilities.batch  # noqa: F401",
        "",
        "from portabind.adapters.aws.runtime import load",
        "",
        f"function = load(Path(__file__).parent, app_ref={project.app_ref!r})",
    ]
    lines += [f"{_handler_name(name)} = function.sqs({name!r})" for name in project.app.handlers]
    return "\n".join(lines) + "\n"


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise BuildError(f"cannot find module {name} to bundle")
    return Path(spec.origin)


def _portabind_files(project: Project) -> dict[str, Path]:
    """Relative destination in OUT → source: core, used bindings (with their vendor's
    shared `_*.py` modules), this runtime."""
    files: dict[str, Path] = {}
    core = _module_file("portabind").parent
    for source in sorted(core.glob("*.py")):
        files[f"portabind/{source.name}"] = source
    modules = {"portabind.adapters", "portabind.adapters.aws", "portabind.adapters.aws.runtime"}
    for component in project.components.bindings():
        module = "portabind.bindings" + component.type.removeprefix("bindings")
        parts = module.split(".")
        modules.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        vendor = _module_file(".".join(parts[:-1])).parent
        modules.update(
            ".".join([*parts[:-1], shared.stem])
            for shared in vendor.glob("_*.py")
            if not shared.name.startswith("__")
        )
    for module in sorted(modules):
        source = _module_file(module)
        relative = module.replace(".", "/")
        files[relative + ("/__init__.py" if source.name == "__init__.py" else ".py")] = source
    return files


def _app_files(project: Project, out: Path) -> dict[str, Path]:
    """The user's modules: top-level `*.py` files and packages of the project directory."""
    files: dict[str, Path] = {}
    root = project.directory.resolve()
    skip = {out.resolve(), project.components.directory.resolve()}
    for path in sorted(root.iterdir()):
        if path.suffix == ".py" and path.is_file():
            files[path.name] = path
        elif path.is_dir() and (path / "__init__.py").is_file() and path.resolve() not in skip:
            for source in sorted(path.rglob("*.py")):
                if "__pycache__" not in source.parts:
                    files[str(source.relative_to(root))] = source
    return files


def _requirements(project: Project) -> list[str]:
    """The SDKs of the bundled bindings, from portabind's own extras (the family's extra
    name is the type's vendor), plus the core's dependencies."""
    requires = importlib.metadata.requires("portabind") or []
    extras = {BASE_EXTRA}
    for component in project.components.bindings():
        family = component.type.split(".")[1]
        extras.add("mqtt" if family.startswith("mqtt") else family)
    wanted: list[str] = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        needed = (extra is None and not marker.strip()) or (extra and extra.group(1) in extras)
        if needed and "portabind" not in requirement and requirement.strip() not in wanted:
            wanted.append(requirement.strip())
    return wanted


def build(project: Project, out: Path) -> list[Path]:
    """Write the SAM application for `project` into `out`; returns the files written."""
    document = template(project)  # first: raises before anything is written
    out.mkdir(parents=True, exist_ok=True)
    for owned in ("portabind", "components"):
        shutil.rmtree(out / owned, ignore_errors=True)
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    def copy(relative: str, source: Path) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        written.append(path)

    write("template.yaml", yaml.safe_dump(document, sort_keys=False, width=100))
    write(f"{ENTRY_MODULE}.py", _entry(project))
    write("requirements.txt", "\n".join(_requirements(project)) + "\n")
    for relative, source in {**_portabind_files(project), **_app_files(project, out)}.items():
        copy(relative, source)
    for source in sorted(project.components.directory.iterdir()):
        if source.suffix in (".yaml", ".yml") and source.is_file():
            copy(f"components/{source.name}", source)
    if _runtime() == f"python{sys.version_info.major}.{sys.version_info.minor}":
        # Hash-checked bytecode stays valid when `sam build` copies the files (new mtimes).
        compileall.compile_dir(
            out,
            quiet=1,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
    return written
