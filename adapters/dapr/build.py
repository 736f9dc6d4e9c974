"""`portabind build --target dapr`: the app as a container beside a Dapr sidecar on Kubernetes,
scaled by KEDA, applied with `kubectl apply -k OUT`.

OUT holds the image context and the manifests:

- `Dockerfile` (a slim Python base, `requirements.txt` installed, the user's code, components
  and the vendored portabind), whose entrypoint serves the app to daprd over Dapr's app
  protocol (`portabind.adapters.dapr.runtime`) on `APP_PORT`: HTTP, or gRPC with
  `--app-protocol grpc` (then, and only then, the image installs grpcio and the `dapr`
  package's protos);
- `deployment.yaml`: one Deployment named after the app id with Dapr's annotations, the
  environment portabind's own listeners read their secrets from;
- `components.yaml`: the components as Dapr `Component` resources scoped to the app; secret
  references resolve in the Kubernetes secret store (a local file or env store of the
  profile is left out, Kubernetes' built-in store takes its place);
- `resiliency.yaml`: the Resiliency documents, when the profile has any;
- `keda.yaml`: one ScaledObject on the Deployment with a trigger per input binding KEDA can
  watch, and a TriggerAuthentication per trigger that needs the component's secrets;
- `kustomization.yaml`, generating each Kubernetes Secret the references name from
  `secrets/<secret>.env` (the user fills it; `.gitignore` keeps it out of git; the build
  never writes a value, `secrets/<secret>.env.example` lists the keys).

One ScaledObject rather than one per input: KEDA refuses a second ScaledObject on the same
Deployment, and one Deployment keeps one app id for the components' scopes. KEDA scales on
the busiest trigger; the Deployment scales to zero only when every trigger can wake it.

Cron maps to KEDA's cron scaler as a window from `CRON_LEAD_MINUTES` before each tick to
`CRON_TAIL_MINUTES` after it: the pod and its sidecar must be up before the tick, since a
daprd that starts late waits for the next one, and the window's end leaves the handler time to
finish before KEDA scales down (after its cool-down). A schedule that is not one tick at a set
minute (every minute, `*/5`, seconds) gets no window: one replica stays up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from portabind import registry
from portabind.adapters.dapr.runtime import APP_PROTOCOLS, Function
from portabind.bindings.http import LISTEN_HOST_VARIABLE, HttpAnnotations
from portabind.components import parse_metadata, placeholder_values
from portabind.errors import UserError
from portabind.secrets import secret_env_name
from portabind.tooling import bundle
from portabind.tooling.crontab import Untranslatable, unix_cron
from portabind.tooling.targets import BuildOption, Target, Trigger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.components import Component, SecretKeyRef, Value
    from portabind.tooling.project import Project

PYTHON_IMAGE = "python:3.12-slim"
#: The port daprd calls the app on (not the HTTP trigger's default, 8080).
APP_PORT = 3000
#: Secret stores that read the developer's machine: on the cluster, Kubernetes' store.
_LOCAL_STORES = ("secretstores.local.file", "secretstores.local.env")
KUBERNETES_STORE = "kubernetes"
CRON_LEAD_MINUTES = 2
CRON_TAIL_MINUTES = 3
SECRETS_DIR = "secrets"
#: What the entrypoint needs to serve Dapr's gRPC app protocol (portabind declares both).
GRPC_REQUIREMENTS = ("grpcio", "dapr")


@dataclass(frozen=True)
class Scaler:
    """A KEDA trigger for one input binding."""

    type: str
    metadata: dict[str, str]
    #: KEDA's authentication parameter → the Kubernetes secret (name, key) holding it.
    auth: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: The scaler wakes a Deployment at zero replicas (it has an activation threshold).
    activates: bool = True
    #: What the scaler cannot take from the component (said by `build`).
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScalerMap:
    """How one binding type's component becomes a KEDA trigger."""

    type: str
    #: KEDA trigger metadata → the Dapr fields giving it (the first given wins).
    metadata: dict[str, tuple[str, ...]]
    #: KEDA authentication parameter → the Dapr fields giving it; a literal value goes into
    #: the trigger metadata instead when KEDA reads it there (`literal_in_metadata`).
    auth: dict[str, tuple[str, ...]] = field(default_factory=dict)
    literal_in_metadata: frozenset[str] = frozenset()
    fixed: dict[str, str] = field(default_factory=dict)
    activates: bool = True
    notes: tuple[str, ...] = ()


def secret_key(ref: SecretKeyRef) -> tuple[str, str]:
    """The Kubernetes Secret and key a `secretKeyRef` reads: the secret's name in the
    lower-case letters, digits, `-` and `.` Kubernetes allows in a name (a local store's
    `STORAGE_ACCOUNT_KEY` → `storage-account-key`), and the key as given, else the name as
    given (the key Dapr reads of a reference without one)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", ref.name.lower()).strip("-.")
    return name, ref.key or ref.name


def _secret_key_ref(ref: SecretKeyRef) -> dict[str, str]:
    name, key = secret_key(ref)
    return {"name": name, "key": key}


def _given(component: Component, keys: tuple[str, ...]) -> Value | None:
    found = component.first_of(keys)
    return found[1] if found else None


def _mapped(mapping: ScalerMap) -> Callable[[Component], Scaler]:
    def scaler(component: Component) -> Scaler:
        metadata = dict(mapping.fixed)
        auth: dict[str, tuple[str, str]] = {}
        notes = list(mapping.notes)
        for name, keys in mapping.metadata.items():
            value = _given(component, keys)
            if value is not None and value.literal is not None:
                metadata[name] = value.literal
            elif value is not None:
                notes.append(f"KEDA reads {name} only as a literal, but {keys[0]} is a reference")
        for name, keys in mapping.auth.items():
            value = _given(component, keys)
            if value is None:
                continue
            if value.secret_ref is not None:
                auth[name] = secret_key(value.secret_ref)
            elif value.literal is not None and name in mapping.literal_in_metadata:
                metadata[name] = value.literal
            else:
                notes.append(f"give {keys[0]} as a secretKeyRef so KEDA can read it as {name}")
        return Scaler(mapping.type, metadata, auth, mapping.activates, tuple(notes))

    return scaler


_KAFKA = _mapped(
    ScalerMap(
        "kafka",
        {"bootstrapServers": ("brokers",), "consumerGroup": ("consumerGroup",)},
        {"username": ("saslUsername",), "password": ("saslPassword",)},
        fixed={"lagThreshold": "10"},
    )
)
#: Dapr's `saslMechanism` → KEDA's `sasl`.
_KAFKA_SASL = {"PLAINTEXT": "plaintext", "SHA-256": "scram_sha256", "SHA-512": "scram_sha512"}


def kafka_scaler(component: Component) -> Scaler:
    """The kafka trigger, with the SASL mechanism and TLS Dapr's password authentication
    uses: KEDA reads the user and password only with `sasl` set, and speaks TLS only when
    told."""
    scaler = _KAFKA(component)
    kafka: Any = parse_metadata(
        component, registry.binding_for(component).metadata, placeholder_values(component)
    )
    if kafka.auth_type != "password":
        return scaler
    metadata = {
        **scaler.metadata,
        "sasl": _KAFKA_SASL[kafka.sasl_mechanism],
        "tls": "disable" if kafka.disable_tls else "enable",
    }
    return Scaler(scaler.type, metadata, scaler.auth, scaler.activates, scaler.notes)


_AWS_AUTH: dict[str, tuple[str, ...]] = {
    "awsAccessKeyID": ("accessKey",),
    "awsSecretAccessKey": ("secretKey",),
    "awsSessionToken": ("sessionToken",),
}
_SCALERS: dict[str, Callable[[Component], Scaler]] = {
    "bindings.aws.sqs": _mapped(
        ScalerMap(
            "aws-sqs-queue",
            {"queueURL": ("queueName",), "awsRegion": ("region",), "awsEndpoint": ("endpoint",)},
            _AWS_AUTH,
            fixed={"queueLength": "5"},
        )
    ),
    "bindings.aws.kinesis": _mapped(
        ScalerMap(
            "aws-kinesis-stream",
            {"streamName": ("streamName",), "awsRegion": ("region",), "awsEndpoint": ("endpoint",)},
            _AWS_AUTH,
            fixed={"shardCount": "1"},
            # A stream always has a shard: the scaler's activation never falls to zero.
            activates=False,
        )
    ),
    "bindings.kafka": kafka_scaler,
    "bindings.rabbitmq": _mapped(
        ScalerMap(
            "rabbitmq",
            {"queueName": ("queueName",)},
            {"host": ("host",)},
            literal_in_metadata=frozenset({"host"}),
            fixed={"mode": "QueueLength", "value": "5"},
        )
    ),
    "bindings.azure.storagequeues": _mapped(
        ScalerMap(
            "azure-queue",
            {"queueName": ("queue", "queueName"), "accountName": ("accountName", "storageAccount")},
            fixed={"queueLength": "5"},
            notes=(
                "KEDA's azure-queue scaler reads a connection string or a workload identity, "
                "not the account key: add either to the TriggerAuthentication",
            ),
        )
    ),
    "bindings.azure.servicebusqueues": _mapped(
        ScalerMap(
            "azure-servicebus",
            {"queueName": ("queueName",), "namespace": ("namespaceName",)},
            {"connection": ("connectionString",)},
            fixed={"messageCount": "5"},
        )
    ),
    "bindings.azure.eventhubs": _mapped(
        ScalerMap(
            "azure-eventhub",
            {
                "eventHubName": ("eventHub", "eventHubName"),
                "eventHubNamespace": ("eventHubNamespace",),
                "consumerGroup": ("consumerGroup", "consumerID"),
                "blobContainer": ("storageContainerName",),
                "storageAccountName": ("storageAccountName",),
            },
            {"connection": ("connectionString",)},
            fixed={"checkpointStrategy": "dapr", "unprocessedEventThreshold": "64"},
        )
    ),
    "bindings.gcp.pubsub": _mapped(
        ScalerMap(
            "gcp-pubsub",
            {"subscriptionName": ("subscription",)},
            fixed={"mode": "SubscriptionSize", "value": "10"},
            notes=(
                "KEDA's gcp-pubsub scaler reads a service account key as one JSON document "
                "or a workload identity: add either to the TriggerAuthentication",
            ),
        )
    ),
}


def _cron_window(expression: str) -> tuple[str, str] | None:
    """KEDA cron's (start, end) around each tick of a unix-cron expression with one minute
    and, when the window crosses an hour, every hour; None otherwise."""
    minute, hour, *rest = expression.split()
    if not minute.isdigit():
        return None
    tick = int(minute)
    start, end = tick - CRON_LEAD_MINUTES, tick + CRON_TAIL_MINUTES
    if (start < 0 or end > 59) and hour != "*":
        return None
    return (
        " ".join([str(start % 60), hour, *rest]),
        " ".join([str(end % 60), hour, *rest]),
    )


def cron_scaler(component: Component) -> Scaler:
    cron: Any = parse_metadata(
        component, registry.binding_for(component).metadata, placeholder_values(component)
    )
    schedule = cron.parsed()
    try:
        window = _cron_window(unix_cron(schedule))
    except Untranslatable:
        window = None
    if window is None:
        return Scaler(
            "cron",
            {},
            activates=False,
            notes=(
                f"schedule {schedule.source!r} is not one tick at a set minute with its window "
                "inside the hour, which KEDA's cron scaler can open around: one replica",
            ),
        )
    start, end = window
    return Scaler(
        "cron",
        {
            "timezone": schedule.timezone or "Etc/UTC",
            "start": start,
            "end": end,
            "desiredReplicas": "1",
        },
    )


def _no_scaler(component: Component) -> None:
    """The writer of an input KEDA has no scaler for: no trigger."""


#: Inputs daprd delivers, with the KEDA trigger watching each (None: no KEDA scaler).
_DELIVERED: dict[str, Callable[[Component], Scaler] | None] = {
    **_SCALERS,
    "bindings.cron": cron_scaler,
    "bindings.mqtt3": None,
    "bindings.kubernetes": None,
    "bindings.twitter": None,
    "bindings.azure.eventgrid": None,
}
#: Inputs Dapr has no input direction for: portabind's own listener runs in the container.
_LISTENED = (
    "bindings.http",
    "bindings.aws.s3",
    "bindings.aws.sns",
    "bindings.aws.dynamodb",
    "bindings.azure.blobstorage",
    "bindings.azure.cosmosdb",
    "bindings.gcp.bucket",
)


def _triggers() -> Iterator[Trigger[Any]]:
    for binding_type, scaler in _DELIVERED.items():
        yield Trigger(
            binding_type,
            "daprd" + (" + KEDA" if scaler is not None else ""),
            Function.delivered,
            scaler or _no_scaler,
        )
    for binding_type in _LISTENED:
        yield Trigger(
            binding_type,
            "portabind listener (extension)",
            Function.listener,
            _no_scaler,
            extension=True,
        )


def app_id(project: Project) -> str:
    """The Dapr app id, also the Deployment's name: `--app-id`, else the project folder's
    name, in the lower-case letters, digits and hyphens Kubernetes names allow."""
    name = project.app_id or project.directory.resolve().name
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return cleaned if cleaned[:1].isalpha() else f"app-{cleaned}".rstrip("-")


def _inputs(project: Project) -> list[tuple[Component, Trigger[Any]]]:
    """Each handled component with its trigger here."""
    found = []
    for name in project.app.handlers:
        component = project.components.get(name)
        trigger = TARGET.trigger(component.type)
        if trigger is None:
            raise UserError(
                f"the dapr build has no input for {component.type} ({name!r})",
                hint="pick a binding type Dapr or portabind delivers (`portabind bindings`)",
            )
        found.append((component, trigger))
    return found


def listened(project: Project) -> list[str]:
    """The inputs portabind's own listeners take in the container."""
    return [c.name for c, trigger in _inputs(project) if trigger.entry is Function.listener]


def http_triggers(project: Project) -> dict[str, int]:
    """The port of each HTTP trigger the app handles, each behind a Service of its own."""
    ports: dict[str, int] = {}
    for name in listened(project):
        component = project.components.get(name)
        if component.type != "bindings.http":
            continue
        port = TARGET.parse_annotations(component)[HttpAnnotations].port
        if port == APP_PORT or port in ports.values():
            raise component.error(
                f"port {port} is taken by "
                + ("the app channel daprd calls" if port == APP_PORT else "another trigger"),
                field="metadata.annotations.portabind.io/port",
                hint="give each HTTP trigger a port of its own",
            )
        ports[name] = port
    return ports


def _services(project: Project) -> list[dict[str, Any]]:
    name = app_id(project)
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{trigger}"},
            "spec": {
                "selector": {"app": name},
                "ports": [{"name": "http", "port": 80, "targetPort": port}],
            },
        }
        for trigger, port in http_triggers(project).items()
    ]


def _scalers(project: Project) -> dict[str, Scaler | None]:
    """The KEDA trigger of each handled component (None: KEDA cannot watch it)."""
    return {component.name: trigger.write(component) for component, trigger in _inputs(project)}


def _kubernetes_refs(project: Project, component: Component) -> bool:
    """Whether the component's secret references resolve in Kubernetes' secret store."""
    store = project.components.components.get(component.secret_store or "")
    return store is None or store.type in _LOCAL_STORES


def secrets_needed(project: Project) -> dict[str, list[str]]:
    """The keys of each Kubernetes Secret the components and KEDA read."""
    needed: dict[str, set[str]] = {}
    for component in project.components.bindings():
        if not _kubernetes_refs(project, component):
            continue
        for value in component.binding_values().values():
            if value.secret_ref is not None:
                name, key = secret_key(value.secret_ref)
                needed.setdefault(name, set()).add(key)
    return {name: sorted(keys) for name, keys in sorted(needed.items())}


def _component_resource(project: Project, component: Component) -> dict[str, Any]:
    metadata: list[dict[str, Any]] = []
    for key, value in component.values.items():
        entry: dict[str, Any] = {"name": key}
        if value.secret_ref is not None:
            entry["secretKeyRef"] = _secret_key_ref(value.secret_ref)
        elif value.env_ref is not None:
            entry["envRef"] = value.env_ref
        else:
            entry["value"] = value.literal
        metadata.append(entry)
    resource: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": component.name},
        "spec": {"type": component.type, "version": component.version, "metadata": metadata},
        "scopes": [app_id(project)],
    }
    if component.annotations:
        resource["metadata"]["annotations"] = dict(component.annotations)
    if any(v.secret_ref for v in component.values.values()):
        kubernetes = _kubernetes_refs(project, component)
        resource["auth"] = {
            "secretStore": KUBERNETES_STORE if kubernetes else component.secret_store
        }
    return resource


def _components(project: Project) -> list[dict[str, Any]]:
    """The bindings and the secret stores the cluster has no stand-in for."""
    kept = [
        c
        for c in project.components.components.values()
        if c.type.startswith("bindings.")
        or (c.type.startswith("secretstores.") and c.type not in _LOCAL_STORES)
    ]
    return [_component_resource(project, component) for component in kept]


def _resiliency(project: Project) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Resiliency",
            "metadata": {"name": document.name},
            "spec": document.spec,
            "scopes": [app_id(project)],
        }
        for document in project.components.resiliency
    ]


def _deployment(project: Project, app_protocol: str) -> dict[str, Any]:
    name = app_id(project)
    command = ["python", "-m", Function.__module__, "--port", str(APP_PORT)]
    if app_protocol != "http":  # the entrypoint's default
        command += ["--app-protocol", app_protocol]
    for listener in listened(project):
        command += ["--listen", listener]
    environment = [
        {
            "name": secret_env_name(component.name, key),
            "valueFrom": {"secretKeyRef": _secret_key_ref(ref)},
        }
        for component in map(project.components.get, listened(project))
        for key, value in component.binding_values().items()
        if (ref := value.secret_ref) is not None
    ]
    if http_triggers(project):
        environment.append({"name": LISTEN_HOST_VARIABLE, "value": "0.0.0.0"})
    ports = [APP_PORT, *http_triggers(project).values()]
    always_up = any(scaler is None or not scaler.activates for scaler in _scalers(project).values())
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            # KEDA sets the count once it takes over; this is the count before it does.
            "replicas": 1 if always_up else 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {
                        "dapr.io/enabled": "true",
                        "dapr.io/app-id": name,
                        "dapr.io/app-port": str(APP_PORT),
                        "dapr.io/app-protocol": app_protocol,
                        "dapr.io/config": name,
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": name,
                            "command": command,
                            "ports": [{"containerPort": port} for port in ports],
                            # Ready once the app channel accepts connections, as daprd
                            # waits for it: neither protocol has a readiness route.
                            "readinessProbe": {
                                "tcpSocket": {"port": APP_PORT},
                                "periodSeconds": 2,
                            },
                            **({"env": environment} if environment else {}),
                        }
                    ]
                },
            },
        },
    }


def _configuration(project: Project) -> dict[str, Any]:
    """The Dapr Configuration `dapr.io/config` names (the sidecar's defaults)."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": app_id(project)},
        "spec": {},
    }


def _keda(project: Project) -> list[dict[str, Any]]:
    name = app_id(project)
    scalers = {c: s for c, s in _scalers(project).items() if s is not None and s.metadata}
    if not scalers:
        return []
    resources: list[dict[str, Any]] = []
    triggers = []
    for component, scaler in scalers.items():
        trigger: dict[str, Any] = {
            "type": scaler.type,
            "name": component,
            "metadata": scaler.metadata,
        }
        if scaler.auth:
            auth_name = f"{name}-{component}"
            trigger["authenticationRef"] = {"name": auth_name}
            resources.append(
                {
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "TriggerAuthentication",
                    "metadata": {"name": auth_name},
                    "spec": {
                        "secretTargetRef": [
                            {"parameter": parameter, "name": secret, "key": key}
                            for parameter, (secret, key) in scaler.auth.items()
                        ]
                    },
                }
            )
        triggers.append(trigger)
    every_input_watched = all(s is not None for s in _scalers(project).values())
    scale_to_zero = every_input_watched and all(s.activates for s in scalers.values())
    resources.append(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"name": name},
                "minReplicaCount": 0 if scale_to_zero else 1,
                "triggers": triggers,
            },
        }
    )
    return resources


DOCKERFILE = """\
# Generated by `portabind build --target dapr`: the app served to its Dapr sidecar.
FROM {image}
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
USER 65532
EXPOSE {ports}
ENTRYPOINT {entrypoint}
"""


def requirements(project: Project, app_protocol: str) -> list[str]:
    """The SDKs of the inputs portabind listens to itself (outputs go through the sidecar),
    and gRPC's when the app protocol is gRPC."""
    listening = set(listened(project))

    def needs(component: Component) -> list[str]:
        return bundle.binding_requirements(component) if component.name in listening else []

    base = GRPC_REQUIREMENTS if app_protocol == "grpc" else ()
    return bundle.requirements(project, base, needs)


def _yaml(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_text(
        "# Generated by `portabind build --target dapr`.\n"
        + yaml.safe_dump_all(documents, sort_keys=False),
        encoding="utf-8",
    )
    return path


def build(project: Project, out: Path, app_protocol: str = "http") -> list[Path]:
    out = Path(out)
    bundled = bundle.bundle(project, out, TARGET.name)
    deployment = _deployment(project, app_protocol)
    entrypoint = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    (out / "Dockerfile").write_text(
        DOCKERFILE.format(
            image=PYTHON_IMAGE,
            ports=" ".join(str(p) for p in (APP_PORT, *http_triggers(project).values())),
            entrypoint=json.dumps(entrypoint),
        )
    )
    lines = requirements(project, app_protocol)
    (out / "requirements.txt").write_text("".join(f"{line}\n" for line in lines))
    # The image holds no secret and no manifest (`*.yaml` at the top only: components/ stays).
    (out / ".dockerignore").write_text(f"{SECRETS_DIR}/\n*.yaml\n")
    (out / ".gitignore").write_text(f"{SECRETS_DIR}/*.env\n")
    written = [out / n for n in ("Dockerfile", "requirements.txt", ".dockerignore", ".gitignore")]
    resources = ["deployment.yaml", "configuration.yaml", "components.yaml"]
    written += [
        _yaml(out / "deployment.yaml", [deployment]),
        _yaml(out / "configuration.yaml", [_configuration(project)]),
        _yaml(out / "components.yaml", _components(project)),
    ]
    for optional, documents in (
        ("services.yaml", _services(project)),
        ("resiliency.yaml", _resiliency(project)),
        ("keda.yaml", _keda(project)),
    ):
        (out / optional).unlink(missing_ok=True)
        if documents:
            written.append(_yaml(out / optional, documents))
            resources.append(optional)
    needed = secrets_needed(project)
    (out / SECRETS_DIR).mkdir(exist_ok=True)
    for secret, keys in needed.items():
        example = out / SECRETS_DIR / f"{secret}.env.example"
        example.write_text("".join(f"{key}=\n" for key in keys))
        written.append(example)
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    if needed:
        kustomization["secretGenerator"] = [
            {"name": secret, "envs": [f"{SECRETS_DIR}/{secret}.env"]} for secret in needed
        ]
        # The components name each Secret as written: no hash suffix.
        kustomization["generatorOptions"] = {"disableNameSuffixHash": True}
    written.append(_yaml(out / "kustomization.yaml", [kustomization]))
    return written + bundled


def notices(project: Project) -> list[UserError]:
    """What `build` tells of the deployment: inputs portabind listens to, inputs KEDA cannot
    wake, what a scaler cannot take from a component, the Secrets to fill."""
    found: list[UserError] = []
    try:
        scalers = _scalers(project)
    except UserError:
        return found  # the build reports it
    for name, scaler in scalers.items():
        component = project.components.get(name)
        if name in listened(project):
            found.append(
                component.error(
                    f"Dapr has no input for {component.type}: portabind's own listener "
                    "takes it in the container"
                )
            )
        if scaler is None:
            found.append(
                component.error("KEDA has no scaler for it: the Deployment keeps one replica")
            )
            continue
        if not scaler.activates:
            found.append(
                component.error(
                    f"the KEDA {scaler.type} trigger cannot wake it from zero: the "
                    "Deployment keeps one replica"
                )
            )
        found += [component.error(note) for note in scaler.notes]
    for secret, keys in secrets_needed(project).items():
        found.append(
            UserError(
                f"fill {SECRETS_DIR}/{secret}.env in the build output with "
                f"{', '.join(keys)} (KEY=value lines) before `kubectl apply -k`"
            )
        )
    return found


TARGET = Target(
    name="dapr",
    build=build,
    triggers=tuple(_triggers()),
    cannot_express=notices,
    options=(
        BuildOption(
            "app-protocol",
            APP_PROTOCOLS,
            "http",
            "the protocol daprd delivers input events to the app over",
        ),
    ),
)
