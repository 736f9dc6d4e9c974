"""`portabind build --target gcp`: a Cloud Functions (gen2) source directory.

OUT/ holds `main.py` (one functions-framework function per input handler: `@cloud_event` for
Pub/Sub and for Cloud Storage objects (the bucket trigger extension, deployed with
`--trigger-event-filters` on the event type and the bucket), `@http` for the HTTP trigger
extension and for cron),
`requirements.txt`, the user's code and components, the portabind parts they need
(vendored as OUT/portabind, so Cloud Build installs nothing else), and the deployment:
`deploy.yaml` (each function's entry point, runtime, region, trigger, retry policy,
environment and Secret Manager references) and `deploy.sh` (the same as `gcloud functions
deploy --gen2` commands). Secrets stay references: each `secretKeyRef` becomes
`--set-secrets ENV=SECRET:latest`, ENV being the variable `secret_env_name` names.

Cron (docs/triggers.md): a Cloud Scheduler job calls the function's URL (an HTTP target
with an OIDC token, so the function stays private) on the schedule translated exactly to
unix-cron (`portabind.tooling.crontab`), in the schedule's `CRON_TZ` zone (else Etc/UTC).
HTTP rather than Pub/Sub: no topic to create, and the request carries the job name and the
scheduled time. A failed tick is not retried (the job's default), as in Dapr. deploy.sh
creates or updates the job after deploying the function and lets the job's service account
(annotation `serviceAccount`, else the project's default compute account) invoke it.

Settings (component annotations, `portabind.io/` prefix): `region` (default us-central1),
`secret` (the Secret Manager secret id for a reference, as `field=secret-id,...`), `project`
(for cron and HTTP functions; default: gcloud's configured project), `serviceAccount` (cron).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from portabind import registry
from portabind.adapters.gcp.annotations import (
    BY_TYPE,
    COMMON,
    Region,
    SchedulerJob,
    SecretIds,
)
from portabind.adapters.gcp.annotations import Project as ProjectId
from portabind.adapters.gcp.runtime import PUBSUB_EVENT_TYPE, Function
from portabind.annotations import field_name
from portabind.bindings.gcp.bucket import BucketTrigger
from portabind.bindings.http import component_trigger
from portabind.components import parse_metadata, placeholder_values
from portabind.errors import BuildError, UserError
from portabind.resiliency import INBOUND, Policies, Retry, policies
from portabind.secrets import secret_env_name
from portabind.secretstores import store_settings
from portabind.tooling import bundle, entry
from portabind.tooling.crontab import Untranslatable, unix_cron
from portabind.tooling.deployment import shell_line, shell_word
from portabind.tooling.targets import Target, Trigger, cannot_express

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.components import Component
    from portabind.tooling.project import Project

#: Cloud Scheduler's zone when the schedule names none (Dapr's `Local` on a UTC machine).
DEFAULT_TIME_ZONE = "Etc/UTC"

RUNTIME = "python312"


def function_name(component: str) -> str:
    """A Cloud Functions name: lower-case letters, digits and hyphens, starting with a
    letter, at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", component.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"fn-{name}"
    return name[:63].rstrip("-")


def entry_point(component: str) -> str:
    """The Python function in main.py for a component."""
    return "on_" + re.sub(r"\W+", "_", component).strip("_").lower()


def _usable_as_output(component: Component) -> bool:
    return not component.direction or "output" in component.direction


def _needs(component: Component) -> list[str]:
    """What the binding declares (a GCP type its one SDK, not the whole `gcp` extra)."""
    if component.type == "bindings.gcp.pubsub" and not _usable_as_output(component):
        return []  # an input-only Pub/Sub component arrives as a CloudEvent: no SDK needed
    return bundle.binding_requirements(component)


def requirements(project: Project) -> list[str]:
    return bundle.requirements(project, ["functions-framework"], _needs)


# --- deployment -----------------------------------------------------------------------------


def _trigger(component: Component) -> tuple[str, str]:
    """(project, topic id) the function is triggered by."""
    binding = registry.binding_for(component)
    metadata: Any = parse_metadata(component, binding.metadata, placeholder_values(component))
    topic = metadata.topic
    if not topic:
        raise component.error(
            "a Cloud Functions Pub/Sub trigger needs the topic",
            field="topic",
            hint="set `topic`: Eventarc subscribes the function to it (the Dapr "
            "`subscription` is not used on this target)",
        )
    project = str(metadata.project_id)
    if topic.startswith("projects/"):
        _, project, _, topic = topic.split("/", 3)
    return project, str(topic)


def secret_references(project: Project) -> tuple[dict[str, str], list[str]]:
    """({ENV: "secret-id:latest"} for each secretKeyRef, [variables each envRef reads])."""
    secrets: dict[str, str] = {}
    passthrough: list[str] = []
    for component in project.components.bindings():
        overrides = TARGET.parse_annotations(component)[SecretIds].secret_ids
        store = store_settings(project.components, component, "secretstores.gcp.secretmanager")
        for field, value in component.binding_values().items():
            if value.secret_ref is not None:
                ref = value.secret_ref
                default = (
                    ref.name if not ref.key or ref.key == ref.name else f"{ref.name}-{ref.key}"
                )
                secret = re.sub(r"[^A-Za-z0-9_-]", "-", overrides.get(field, default))
                if store is not None and field not in overrides:
                    # A Secret Manager store's GetSecret(name) is {name: payload}.
                    secret = f"projects/{store.project_id}/secrets/{ref.name}"
                secrets[secret_env_name(component.name, field)] = f"{secret}:latest"
            elif value.env_ref is not None:
                passthrough.append(value.env_ref)
    return secrets, sorted(set(passthrough))


def _pubsub_trigger(component: Component) -> dict[str, Any]:
    gcp_project, topic = _trigger(component)
    return {
        "project": gcp_project,
        "trigger": {
            "eventType": PUBSUB_EVENT_TYPE,
            "pubsubTopic": f"projects/{gcp_project}/topics/{topic}",
            "topic": topic,
            "retryPolicy": "RETRY_POLICY_RETRY",
        },
    }


#: Pub/Sub's bounds: delivery attempts before dead-lettering, and the retry back-off.
DELIVERY_ATTEMPTS = (5, 100)
MAX_BACKOFF_SECONDS = 600
#: Cloud Functions' longest timeout: event-driven, and HTTP (cron arrives over HTTP).
MAX_TIMEOUT = {"event": 540, "http": 3600}


def _seconds(value: float) -> str:
    return f"{math.ceil(value)}s"


def _subscription_policies(
    function: dict[str, Any], retry: Retry, cannot: Callable[[str, str], None]
) -> None:
    """A Pub/Sub trigger's retry policy: no retry for maxRetries 0; else the Eventarc
    subscription's dead-letter topic after maxRetries + 1 deliveries and its back-off."""
    trigger = function["trigger"]
    if retry.max_retries == 0:
        trigger["retryPolicy"] = "RETRY_POLICY_DO_NOT_RETRY"
        return
    if retry.max_retries > 0:
        low, high = DELIVERY_ATTEMPTS
        attempts = min(max(retry.max_retries + 1, low), high)
        if attempts != retry.max_retries + 1:
            cannot(
                "retry",
                f"maxRetries {retry.max_retries}: Pub/Sub delivers {low} to {high} "
                f"times before dead-lettering; it delivers {attempts} times",
            )
        trigger["deadLetterPolicy"] = {
            "deadLetterTopic": f"{trigger['pubsubTopic']}-dead-letter",
            "maxDeliveryAttempts": attempts,
        }
    low_wait, high_wait = (
        (retry.initial_interval, retry.max_interval)
        if retry.exponential
        else (retry.duration, retry.duration)
    )
    if high_wait > MAX_BACKOFF_SECONDS:
        cannot("retry", f"waits over {MAX_BACKOFF_SECONDS} s: Pub/Sub's back-off stops there")
    if retry.exponential:
        cannot(
            "retry",
            f"multiplier {retry.multiplier:g} and randomizationFactor "
            f"{retry.randomization_factor:g}: Pub/Sub grows its back-off its own way",
        )
    trigger["subscriptionRetryPolicy"] = {
        "minimumBackoff": _seconds(min(low_wait, MAX_BACKOFF_SECONDS)),
        "maximumBackoff": _seconds(min(high_wait, MAX_BACKOFF_SECONDS)),
    }


def _with_policies(
    component: Component, function: dict[str, Any], parsed: Policies, warnings: list[UserError]
) -> dict[str, Any]:
    """The component's inbound Resiliency policies on its function: retries on a Pub/Sub
    trigger, the timeout as the function's; what it cannot take is a warning."""
    policy = parsed.policy(component.name, INBOUND)

    def cannot(kind: str, why: str) -> None:
        warnings.append(cannot_express(component, TARGET.name, kind, policy.names()[kind], why))

    if policy.retry is not None:
        if "eventType" in function["trigger"]:
            _subscription_policies(function, policy.retry, cannot)
        else:
            cannot(
                "retry",
                "Cloud Functions never retries an HTTP function (cron arrives over "
                "HTTP from its Cloud Scheduler job, which this build gives no retries)",
            )
    if policy.timeout is not None and policy.timeout > 0:
        longest = MAX_TIMEOUT["event" if "eventType" in function["trigger"] else "http"]
        if policy.timeout > longest:
            cannot("timeout", f"{policy.timeout:g}s: the function runs at most {longest} s")
        function["timeout"] = _seconds(min(policy.timeout, longest))
    if policy.breaker is not None:
        cannot(
            "circuitBreaker",
            "Cloud Functions has no circuit breaker on a trigger "
            "(outbound breakers apply in the function)",
        )
    return function


def _storage_trigger(component: Component) -> dict[str, Any]:
    """A CloudEvent function on the bucket's object events (one event type a function)."""
    trigger = TARGET.parse_annotations(component)[BucketTrigger]
    if not trigger.trigger:
        raise component.error(
            "bindings.gcp.bucket is output-only in Dapr; its Cloud Storage trigger is a "
            "portabind extension",
            field=field_name("trigger"),
            hint='add the annotation portabind.io/trigger: "true" to use it',
        )
    if len(trigger.events) > 1:
        raise component.error(
            "a Cloud Function has one event type",
            field=field_name("events"),
            hint="use one component per event type",
        )
    binding = registry.binding_for(component)
    metadata: Any = parse_metadata(component, binding.metadata, placeholder_values(component))
    return {
        "project": str(metadata.project_id),
        "trigger": {
            "eventType": trigger.events[0].event_type,
            "eventFilters": {"bucket": metadata.bucket},
            "retryPolicy": "RETRY_POLICY_RETRY",
        },
    }


def _http_trigger(component: Component) -> dict[str, Any]:
    trigger = component_trigger(component)
    return {
        "project": TARGET.parse_annotations(component)[ProjectId].project,
        "trigger": {
            "type": "http",
            "path": trigger.path,
            "methods": list(trigger.methods),
            "allowUnauthenticated": trigger.auth_level == "anonymous",
        },
    }


def _scheduler_trigger(component: Component) -> dict[str, Any]:
    binding = registry.binding_for(component)
    metadata: Any = parse_metadata(component, binding.metadata, placeholder_values(component))
    schedule = metadata.parsed()
    try:
        expression = unix_cron(schedule)
    except Untranslatable as error:
        raise component.error(f"schedule {schedule.source!r}: {error}", field="schedule") from None
    annotations = TARGET.parse_annotations(component)
    return {
        "project": annotations[ProjectId].project,
        "trigger": {
            "type": "scheduler",
            "job": function_name(component.name),
            "schedule": expression,
            "timeZone": schedule.timezone or DEFAULT_TIME_ZONE,
            "target": "http",
            "httpMethod": "POST",
            "serviceAccount": annotations[SchedulerJob].service_account,
        },
    }


def _entry_function(function: dict[str, Any]) -> entry.EntryFunction:
    """main.py's function for one deployed function: a CloudEvent function for Pub/Sub, an
    HTTP function otherwise."""
    trigger = function["trigger"]
    found = TARGET.trigger(function["type"])
    assert found is not None  # `_functions` refused components without a trigger
    if "eventType" in trigger:
        decorator, parameter = "@functions_framework.cloud_event", "cloud_event"
        on = trigger.get("pubsubTopic") or f"bucket {trigger['eventFilters']['bucket']}"
        described = f"{trigger['eventType']} on {on}"
    else:
        decorator, parameter = "@functions_framework.http", "request"
        described = (
            f"HTTP trigger, {','.join(trigger['methods']) or 'any method'} {trigger['path']}"
            if trigger["type"] == "http"
            else f"Cloud Scheduler job {trigger['job']} ({trigger['schedule']})"
        )
    return entry.EntryFunction(
        name=function["entryPoint"],
        component=function["component"],
        entry=found.entry,
        parameters=(parameter,),
        decorators=(decorator,),
        doc=f"{function['type']} component {function['component']!r}: {described}.",
    )


def _functions(project: Project, warnings: list[UserError] | None = None) -> list[dict[str, Any]]:
    """The functions to deploy; what they cannot express of the inbound Resiliency policies
    is added to `warnings`."""
    parsed = policies(project.components.resiliency)
    found: list[UserError] = []
    functions = []
    for name in project.app.handlers:
        component = project.components.get(name)
        trigger = TARGET.trigger(component.type)
        if trigger is None:
            supported = ", ".join(sorted(t.binding_type for t in TARGET.triggers))
            raise BuildError(
                f"component {name!r} ({component.type}) has no Cloud Functions trigger",
                hint=f"types with one: {supported}; run this input as a "
                "long-running listener with `portabind run` (for example on Cloud Run), or "
                "bridge it to a Pub/Sub topic",
            )
        function = {
            "name": function_name(name),
            "component": name,
            "type": component.type,
            "entryPoint": entry_point(name),
            "runtime": RUNTIME,
            "region": TARGET.parse_annotations(component)[Region].region,
            **trigger.write(component),
        }
        functions.append(_with_policies(component, function, parsed, found))
    if warnings is not None:
        warnings += found
    if not functions:
        raise BuildError(
            "the app has no input handlers, so there is no function to deploy",
            hint="register one with @app.binding('<input component>')",
        )
    return functions


def _project_flag(function: dict[str, Any]) -> list[str]:
    return ["--project=" + function["project"]] if function["project"] else []


def _where(function: dict[str, Any]) -> list[str]:
    return [*_project_flag(function), "--region=" + function["region"]]


# The gcloud commands, as arguments after `gcloud`: deploy.sh writes them as shell lines and
# `portabind deploy` (adapters/gcp/deploy.py) runs them. `${NAME}` stands for a value the
# deploying shell holds: an environment variable a component's envRef reads, the function's
# URL, the scheduler job's account.


def deploy_arguments(
    function: dict[str, Any], secrets: dict[str, str], env: list[str], source: str
) -> list[str]:
    """`gcloud functions deploy` for one function, its code in directory `source`."""
    trigger = function["trigger"]
    args = [
        "functions",
        "deploy",
        function["name"],
        "--gen2",
        *_where(function),
        "--runtime=" + function["runtime"],
        "--source=" + source,
        "--entry-point=" + function["entryPoint"],
    ]
    if "eventType" in trigger:
        if "topic" in trigger:
            args.append("--trigger-topic=" + trigger["topic"])
        else:
            filters = {"type": trigger["eventType"], **trigger["eventFilters"]}
            args += [f"--trigger-event-filters={k}={v}" for k, v in filters.items()]
        if trigger["retryPolicy"] == "RETRY_POLICY_RETRY":
            args.append("--retry")
    else:
        args.append("--trigger-http")
        public = trigger.get("allowUnauthenticated", False)
        args.append("--allow-unauthenticated" if public else "--no-allow-unauthenticated")
    if "timeout" in function:
        args.append("--timeout=" + function["timeout"])
    if env:
        args.append("--set-env-vars=" + ",".join(f"{v}=${{{v}}}" for v in env))
    if secrets:
        args.append("--set-secrets=" + ",".join(f"{k}={v}" for k, v in secrets.items()))
    return args


#: `gcloud functions describe`'s flag printing only the function's URL.
URL_FORMAT = "--format=value(serviceConfig.uri)"


def function_arguments(function: dict[str, Any], verb: str) -> list[str]:
    """`gcloud functions describe` or `delete` (the generation is the function's own)."""
    return ["functions", verb, function["name"], *_where(function)]


def invoker_arguments(function: dict[str, Any], account: str) -> list[str]:
    """Let service account `account` invoke the (private) function."""
    return [
        "functions",
        "add-invoker-policy-binding",
        function["name"],
        *_where(function),
        "--member=serviceAccount:" + account,
    ]


def job_arguments(function: dict[str, Any], verb: str, url: str, account: str) -> list[str]:
    """`gcloud scheduler jobs <verb>` for a scheduled function's job: `describe` and
    `delete` name it, `create http` and `update http` set it to call `url` as `account`."""
    trigger = function["trigger"]
    location = [*_project_flag(function), "--location=" + function["region"]]
    if verb in ("describe", "delete"):
        return ["scheduler", "jobs", verb, trigger["job"], *location]
    return [
        "scheduler",
        "jobs",
        verb,
        "http",
        trigger["job"],
        *location,
        "--schedule=" + trigger["schedule"],
        "--time-zone=" + trigger["timeZone"],
        "--uri=" + url,
        "--http-method=" + trigger["httpMethod"],
        "--oidc-service-account-email=" + account,
        "--oidc-token-audience=" + url,
    ]


def _gcloud(args: list[str], *, indent: str = "", lead: int = 3) -> str:
    """A gcloud command for deploy.sh: its first `lead` words on the first line, then one
    flag a line."""
    words = [shell_word(a) for a in args]
    return f" \\\n{indent}  ".join(["gcloud " + " ".join(words[:lead]), *words[lead:]])


def subscription_commands(function: dict[str, Any]) -> str:
    """After a Pub/Sub function is deployed: its Eventarc subscription's dead-letter topic
    (created when missing) and retry back-off, from deploy.yaml."""
    trigger = function["trigger"]
    project = _project_flag(function)
    location = [*project, "--location=" + function["region"]]
    lines = [
        'TRIGGER="$('
        + shell_line(
            [
                "gcloud",
                *function_arguments(function, "describe"),
                "--format=value(eventTrigger.trigger)",
            ]
        )
        + ')"',
        'SUBSCRIPTION="$('
        + shell_line(
            [
                "gcloud",
                "eventarc",
                "triggers",
                "describe",
                "${TRIGGER##*/}",
                *location,
                "--format=value(transport.pubsub.subscription)",
            ]
        )
        + ')"',
    ]
    update = ["pubsub", "subscriptions", "update", "${SUBSCRIPTION}", *project]
    dead_letter = trigger.get("deadLetterPolicy")
    if dead_letter:
        topic = dead_letter["deadLetterTopic"]
        lines.append(
            f"gcloud pubsub topics describe {shell_word(topic)} >/dev/null 2>&1 || "
            + shell_line(["gcloud", "pubsub", "topics", "create", topic])
        )
        update += [
            "--dead-letter-topic=" + topic,
            f"--max-delivery-attempts={dead_letter['maxDeliveryAttempts']}",
        ]
    backoff = trigger["subscriptionRetryPolicy"]
    update += [
        "--min-retry-delay=" + backoff["minimumBackoff"],
        "--max-retry-delay=" + backoff["maximumBackoff"],
    ]
    lines.append(_gcloud(update, lead=4))
    return "\n".join(lines)


def gcloud_command(function: dict[str, Any], secrets: dict[str, str], env: list[str]) -> str:
    """The `gcloud functions deploy` command for one function (run from OUT/)."""
    return _gcloud(deploy_arguments(function, secrets, env, "${HERE}"))


def scheduler_commands(function: dict[str, Any]) -> str:
    """After the function is deployed: let the job's service account invoke it, then
    create (or update) the Cloud Scheduler job calling its URL with an OIDC token."""
    trigger = function["trigger"]
    project = "".join(" " + shell_word(flag) for flag in _project_flag(function))
    account = (
        shell_word(trigger["serviceAccount"])
        if trigger["serviceAccount"]
        else f'"$(default_service_account{project})"'
    )
    exists = shell_line(job_arguments(function, "describe", "", ""))
    lines = [
        f'URL="$({shell_line(["gcloud", *function_arguments(function, "describe"), URL_FORMAT])})"',
        f"ACCOUNT={account}",
        shell_line(["gcloud", *invoker_arguments(function, "${ACCOUNT}")]),
        f"if gcloud {exists} >/dev/null 2>&1; then",
        "  "
        + _gcloud(job_arguments(function, "update", "${URL}", "${ACCOUNT}"), indent="  ", lead=5),
        "else",
        "  "
        + _gcloud(job_arguments(function, "create", "${URL}", "${ACCOUNT}"), indent="  ", lead=5),
        "fi",
    ]
    return "\n".join(lines)


DEFAULT_ACCOUNT_FUNCTION = """\
# The project's default compute service account (the job's identity unless the component
# names one with the annotation portabind.io/serviceAccount).
default_service_account() {
  project="$(gcloud config get-value project 2>/dev/null)"
  for arg in "$@"; do project="${arg#--project=}"; done
  number="$(gcloud projects describe "$project" --format='value(projectNumber)')"
  echo "${number}-compute@developer.gserviceaccount.com"
}"""


def build(project: Project, out: Path) -> list[Path]:
    out = Path(out)
    functions = _functions(project)
    secrets, env = secret_references(project)
    bundled = bundle.bundle(project, out, TARGET.name)

    main = entry.module(
        doc="Cloud Functions (gen2) entry points, generated by `portabind build`.\n\n"
        "Deploy with deploy.sh (the same settings are listed in deploy.yaml).\n",
        runtime=Function.__module__,
        app_ref=project.app_ref,
        functions=[_entry_function(function) for function in functions],
        imports=("import functions_framework",),
    )
    (out / "main.py").write_text(main, encoding="utf-8")
    (out / "requirements.txt").write_text("\n".join(requirements(project)) + "\n")

    manifest = {
        "runtime": RUNTIME,
        "source": ".",
        "functions": [
            {
                **{k: v for k, v in function.items() if k not in ("component", "type")},
                "environmentVariables": {v: f"${{{v}}}" for v in env},
                "secretEnvironmentVariables": [
                    {"key": k, "secret": v.rsplit(":", 1)[0], "version": "latest"}
                    for k, v in secrets.items()
                ],
            }
            for function in functions
        ],
    }
    header = (
        "# Cloud Functions (gen2) deployment, generated by `portabind build --target gcp`.\n"
        "# Secrets are Secret Manager references (never values); deploy.sh runs the same.\n"
    )
    (out / "deploy.yaml").write_text(header + yaml.safe_dump(manifest, sort_keys=False))
    script = ["#!/bin/sh", "# Generated by `portabind build --target gcp`.", "set -eu"]
    script.append('HERE="$(cd "$(dirname "$0")" && pwd)"')
    scheduled = [f for f in functions if f["trigger"].get("type") == "scheduler"]
    if any(not f["trigger"]["serviceAccount"] for f in scheduled):
        script.append(DEFAULT_ACCOUNT_FUNCTION)
    for function in functions:
        script.append(gcloud_command(function, secrets, env))
        if "subscriptionRetryPolicy" in function["trigger"]:
            script.append(subscription_commands(function))
        if function in scheduled:
            script.append(scheduler_commands(function))
    (out / "deploy.sh").write_text("\n".join(script) + "\n")
    (out / "deploy.sh").chmod(0o755)
    return [
        out / name for name in ("main.py", "requirements.txt", "deploy.yaml", "deploy.sh")
    ] + bundled


def _cannot_express(project: Project) -> list[UserError]:
    """What the deployment cannot express of the inbound Resiliency policies (a project the
    build refuses has its error from the build)."""
    found: list[UserError] = []
    try:
        _functions(project, found)
    except UserError:
        return found
    return found


TARGET = Target(
    name="gcp",
    build=build,
    triggers=(
        Trigger("bindings.gcp.pubsub", PUBSUB_EVENT_TYPE, Function.pubsub, _pubsub_trigger),
        Trigger(
            "bindings.cron", "Cloud Scheduler job → HTTP", Function.scheduled, _scheduler_trigger
        ),
        Trigger("bindings.http", "HTTP (extension)", Function.http, _http_trigger, extension=True),
        Trigger(
            "bindings.gcp.bucket",
            "google.cloud.storage.object.v1.finalized (extension)",
            Function.storage,
            _storage_trigger,
            extension=True,
        ),
    ),
    fallbacks={
        "bindings.azure.eventgrid": "a bindings.http webhook trigger, or `portabind run`",
    },
    annotations=BY_TYPE,
    common_annotations=COMMON,
    cannot_express=_cannot_express,
)
