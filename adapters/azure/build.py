"""`portabind build --target azure`: an Azure Functions Python v2 app.

OUT/
  function_app.py        one function per input binding with a handler (one per topic for
                         kafka): queue_trigger, timer_trigger (cron), route (the HTTP trigger
                         extension), kafka_trigger, generic_trigger rabbitMQTrigger
  host.json              extension bundle; queue settings (messageEncoding "none", see below);
                         routePrefix "" so an HTTP trigger answers on its path, as elsewhere
  local.settings.json    the setting names, with Azurite or empty values: never a secret
  appsettings.json       the settings to give the deployed app (`az functionapp config
                         appsettings set --settings @appsettings.json`): identity-based
                         trigger connections and Key Vault references for secrets
  requirements.txt       what Azure's remote build installs
  functionapp.zip        all of the above but local.settings.json, as `az functionapp
                         deployment source config-zip` publishes it (`portabind deploy`)
  app.py, ...            the user's code; components/ the chosen profile
  portabind/             the parts of portabind the app uses (core, its bindings, this runtime)

Trigger connection: `<CONN>__queueServiceUri` (the storage account's queue URL) makes the host
read the queue with the function app's managed identity (role "Storage Queue Data Message
Processor"), so no account key is needed by the trigger. Secrets (`secretKeyRef`) become app
settings named by `secret_env_name`, whose values are Key Vault references; the vault is the
component annotation `portabind.io/keyVault`, or a placeholder to fill in.

Other triggers (docs/triggers.md): cron's schedule becomes the exact NCRONTAB expression
(`portabind.tooling.crontab`), its `CRON_TZ=` zone the app setting WEBSITE_TIME_ZONE; kafka
and rabbitmq connection fields become app settings the trigger names (secrets: the Key Vault
references above); kafka retries a failed record as the local listener does (`@app.retry`).

Queue messages: host.json sets `extensions.queues.messageEncoding` to `none`. The host's default
(base64) would reject or alter messages written by Dapr and by this project's storagequeues
output, which send the text as given; with `none` the same message gives the same data on the
local listener, a Dapr sidecar and Azure Functions.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from portabind import registry
from portabind.adapters.azure.annotations import (
    BY_TYPE,
    COMMON,
    EventHubsHost,
    KeyVault,
    QueueHost,
)
from portabind.adapters.azure.runtime import Function
from portabind.annotations import ExtensionTrigger, field_name
from portabind.bindings.azure.blobstorage import BlobSource, BlobTrigger
from portabind.bindings.azure.cosmosdb import CosmosAnnotations
from portabind.bindings.azure.eventhubs import EventHubsAnnotations
from portabind.bindings.http import component_trigger
from portabind.components import parse_metadata, placeholder_values
from portabind.errors import BuildError, UserError
from portabind.resiliency import INBOUND, Policies, Retry, policies
from portabind.secrets import secret_env_name
from portabind.secretstores import store_settings
from portabind.tooling import bundle, entry
from portabind.tooling.crontab import Untranslatable, ncrontab
from portabind.tooling.entry import literal as _literal
from portabind.tooling.targets import Target, Trigger, cannot_express

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.components import Component
    from portabind.tooling.project import Project

EXTENSION_BUNDLE = {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
#: The app as published; local.settings.json is for the local Functions host only.
PACKAGE = "functionapp.zip"
#: The Event Grid subscriptions `portabind deploy` creates after publishing the app.
SUBSCRIPTIONS = "eventgrid.json"
_NOT_PUBLISHED = frozenset({PACKAGE, SUBSCRIPTIONS, "local.settings.json", "__pycache__"})


def connection_setting(component: str) -> str:
    """The app setting the trigger's `connection` names."""
    return "PORTABIND_" + re.sub(r"[^0-9A-Za-z]+", "_", component).strip("_").upper() + "_STORAGE"


def _timespan(value: timedelta) -> str:
    seconds = value.total_seconds()
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    whole = f"{int(hours):02d}:{int(minutes):02d}:{int(secs):02d}"
    fraction = round(secs % 1, 3)
    return whole + (f"{fraction:.3f}"[1:] if fraction else "")


def _triggered(project: Project) -> list[tuple[Component, Trigger[FunctionWriter]]]:
    """The input components with a handler, each with its Azure trigger."""
    found = []
    for name in project.app.handlers:
        component = project.components.get(name)
        trigger = TARGET.trigger(component.type)
        if trigger is None:
            supported = ", ".join(sorted(t.binding_type for t in TARGET.triggers))
            raise component.error(
                f"{component.type} has no Azure Functions trigger",
                field="spec.type",
                hint=f"Azure triggers exist for: {supported}; run this input with "
                "`portabind run` (or a Dapr sidecar) instead",
            )
        found.append((component, trigger))
    if not found:
        raise BuildError(
            "the app has no input handlers, so there is no function to build",
            hint="register a handler with @app.binding('<input component>')",
        )
    return found


def _metadata(component: Component) -> Any:
    binding = registry.binding_for(component)
    return parse_metadata(component, binding.metadata, placeholder_values(component))


def _queue_retries(component: Component, host: QueueHost, settings: _Settings) -> QueueHost:
    """A queue trigger's inbound retry policy as the host's queue settings, where annotations
    do not set them: `maxRetries` + 1 dequeues before the poison queue, a constant policy's
    duration as the visibility timeout (the wait before a failed message comes back)."""
    retry = settings.resiliency.policy(component.name, INBOUND).retry
    if retry is None:
        return host
    changes: dict[str, Any] = {}
    if "max_dequeue_count" not in host.model_fields_set:
        if retry.max_retries < 0:
            settings.cannot(
                component,
                "retry",
                "maxRetries -1: the host moves a message to the "
                f"poison queue after maxDequeueCount ({host.max_dequeue_count}) dequeues",
            )
        else:
            changes["max_dequeue_count"] = retry.max_retries + 1
    if "visibility_timeout" not in host.model_fields_set:
        if retry.exponential:
            settings.cannot(
                component,
                "retry",
                "its exponential back-off: a failed queue "
                "message comes back after the fixed visibilityTimeout",
            )
        else:
            changes["visibility_timeout"] = timedelta(seconds=retry.duration)
    return host.model_copy(update=changes)


def _host_queue_settings(components: list[Component], settings: _Settings) -> dict[str, Any]:
    """The app-wide `extensions.queues` section; settings the components disagree on are an
    error, since host.json applies to every queue trigger."""
    chosen: dict[str, tuple[Any, str]] = {}
    for component in components:
        metadata = _metadata(component)
        host = _queue_retries(component, TARGET.parse_annotations(component)[QueueHost], settings)
        wanted: dict[str, Any] = {
            "visibilityTimeout": _timespan(host.visibility_timeout or metadata.visibility_timeout),
            "maxPollingInterval": _timespan(host.max_polling_interval or metadata.polling_interval),
            "maxDequeueCount": host.max_dequeue_count,
            "batchSize": host.batch_size,
        }
        if host.new_batch_threshold is not None:
            wanted["newBatchThreshold"] = host.new_batch_threshold
        for key, value in wanted.items():
            if key in chosen and chosen[key][0] != value:
                raise BuildError(
                    f"host.json queue setting {key} is app-wide, and components "
                    f"{chosen[key][1]!r} ({chosen[key][0]}) and {component.name!r} ({value}) "
                    "ask for different values",
                    hint="give both components the same value, or build them as separate apps",
                )
            chosen.setdefault(key, (value, component.name))
    section = {key: value for key, (value, _) in chosen.items()}
    section["messageEncoding"] = "none"
    return section


class _Settings:
    """The app settings the build emits: local.settings.json `Values` (never a secret) and
    the deployed app settings (appsettings.json)."""

    def __init__(self) -> None:
        self.local = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
        self.deployed: list[dict[str, Any]] = []
        #: host.json `extensions` sections the triggers need.
        self.extensions: dict[str, dict[str, Any]] = {}
        #: The Event Grid subscriptions the deploy creates (eventgrid.json).
        self.subscriptions: list[dict[str, Any]] = []
        self._chosen: dict[str, tuple[str, str]] = {}
        #: The profile's Resiliency policies, the inbound timeouts they ask for (host.json's
        #: `functionTimeout` is app-wide), and what the build cannot express of them.
        self.resiliency = Policies()
        self.timeouts: dict[str, float] = {}
        self.warnings: list[UserError] = []

    def cannot(self, component: Component, kind: str, why: str) -> None:
        """Say that the component's inbound `kind` policy (or part of it) is not expressed."""
        name = self.resiliency.policy(component.name, INBOUND).names()[kind]
        self.warnings.append(cannot_express(component, TARGET.name, kind, name, why))

    def add(self, name: str, value: str, *, local: str | None = None) -> None:
        self.local[name] = value if local is None else local
        self.deployed.append({"name": name, "value": value})

    def agree(self, key: str, value: str, component: Component, what: str) -> bool:
        """Whether `key` (app-wide on Azure) is set for the first time; components asking
        for different values fail the build."""
        if key in self._chosen and self._chosen[key][0] != value:
            other, first = self._chosen[key][1], self._chosen[key][0]
            raise BuildError(
                f"{what} is app-wide on Azure Functions, and components {other!r} ({first}) "
                f"and {component.name!r} ({value}) ask for different values",
                hint="give both the same value, or build them as separate apps",
            )
        first_time = key not in self._chosen
        self._chosen.setdefault(key, (value, component.name))
        return first_time

    def holding(self, component: Component, field: str) -> str:
        """The name of an app setting holding the component's `field` (the Azure triggers
        take setting names, never values): a secret's is the Key Vault reference the build
        emits for every secret; a literal gets its own setting."""
        found = component.first_of(registry.binding_for(component).metadata.field_keys()[field])
        if found is None:
            raise component.error(f"the Azure trigger needs {field}", field=field)
        key, value = found
        if value.secret_ref is not None:
            return secret_env_name(component.name, key)
        name = app_setting(component.name, field)
        self.add(name, value.literal or "")
        return name


def app_setting(component: str, field: str) -> str:
    """The app setting that holds a component field for a trigger."""
    return "PORTABIND_" + re.sub(r"[^0-9A-Za-z]+", "_", f"{component}_{field}").strip("_").upper()


def _function(
    component: Component,
    entry_point: Callable[..., Any],
    decorators: list[str],
    parameters: tuple[str, ...],
    *,
    returns: str = "None",
    name: str | None = None,
) -> entry.EntryFunction:
    """One function of the app, `name` (default: the component's) in the Functions host."""
    function_name = entry.identifier(name or component.name)
    return entry.EntryFunction(
        name=function_name,
        component=component.name,
        entry=entry_point,
        parameters=parameters,
        decorators=(f"@app.function_name(name={_literal(function_name)})", *decorators),
        returns=returns,
    )


def _queue_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    setting = connection_setting(component.name)
    settings.local[setting] = "UseDevelopmentStorage=true"
    settings.deployed.append(
        {"name": f"{setting}__queueServiceUri", "value": _metadata(component).account_url("queue")}
    )
    decorators = [
        "@app.queue_trigger(",
        '    arg_name="message",',
        f"    queue_name={_literal(_metadata(component).queue_name)},",
        f"    connection={_literal(setting)},",
        ")",
    ]
    return [_function(component, Function.queue, decorators, ("message: func.QueueMessage",))]


def _timer_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    schedule = _metadata(component).parsed()
    try:
        expression = ncrontab(schedule)
    except Untranslatable as error:
        raise component.error(f"schedule {schedule.source!r}: {error}", field="schedule") from None
    # Linux plans other than Consumption read WEBSITE_TIME_ZONE (an IANA name); it is the
    # zone of every timer in the app, as Dapr's `Local` is the machine's.
    if schedule.timezone and settings.agree(
        "WEBSITE_TIME_ZONE", schedule.timezone, component, "the timer zone (CRON_TZ)"
    ):
        settings.add("WEBSITE_TIME_ZONE", schedule.timezone)
    decorators = [f'@app.timer_trigger(arg_name="timer", schedule={_literal(expression)})']
    parameters = ("timer: func.TimerRequest", "context: func.Context")
    return [_function(component, Function.timer, decorators, parameters)]


def _route_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    trigger = component_trigger(component)
    methods = f"[{', '.join(_literal(m) for m in trigger.methods)}]" if trigger.methods else None
    decorators = [
        "@app.route(",
        f"    route={_literal(trigger.path.lstrip('/'))},",
        f"    methods={methods},",
        f"    auth_level=func.AuthLevel.{trigger.auth_level.upper()},",
        ")",
    ]
    parameters = ("req: func.HttpRequest", "context: func.Context")
    return [
        _function(component, Function.http, decorators, parameters, returns="func.HttpResponse")
    ]


def _extension(component: Component, model: type[ExtensionTrigger]) -> Any:
    """The annotations of a trigger portabind adds to an output-only type, refused unless
    `portabind.io/trigger` turns it on."""
    found = TARGET.parse_annotations(component)[model]
    if not found.trigger:
        raise component.error(
            f"{component.type} is output-only in Dapr; its Azure trigger is a portabind extension",
            field=field_name("trigger"),
            hint='add the annotation portabind.io/trigger: "true" to use it',
        )
    return found


def _subscription_name(component: Component, given: str | None = None) -> str:
    """An event subscription name (3-64 letters, digits and hyphens)."""
    name = given or re.sub(r"[^A-Za-z0-9-]+", "-", component.name).strip("-")
    return (name + "-sub" if len(name) < 3 else name)[:64]


def _event_grid_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    metadata = _metadata(component)
    if not metadata.scope:
        raise component.error(
            "the deploy subscribes the function to the events of `scope`, which is not set",
            field="scope",
            hint="set scope to the resource id of the topic (or system topic) to subscribe to",
        )
    function = _function(
        component,
        Function.event_grid,
        ['@app.event_grid_trigger(arg_name="event")'],
        ("event: func.EventGridEvent",),
    )
    settings.subscriptions.append(
        {
            "name": _subscription_name(component, metadata.event_subscription_name),
            "function": function.name,
            "endpointType": "azurefunction",
            "source": metadata.scope,
            # As Dapr's input subscribes: CloudEvents; the trigger takes both schemas.
            "schema": "cloudeventschemav1_0",
        }
    )
    return [function]


def _cosmos_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    trigger: CosmosAnnotations = _extension(component, CosmosAnnotations)
    metadata = _metadata(component)
    setting = app_setting(component.name, "cosmos")
    settings.local[setting] = ""
    # Identity-based: the app's identity needs a Cosmos DB data role, no key is stored.
    settings.deployed.append({"name": f"{setting}__accountEndpoint", "value": metadata.url})
    poll = int(trigger.feed_poll_delay.total_seconds() * 1000)
    decorators = [
        # As the local listener: a failing batch is retried until the handler succeeds.
        '@app.retry(strategy="fixed_delay", max_retry_count="-1", delay_interval="00:00:05")',
        "@app.cosmos_db_trigger(",
        '    arg_name="documents",',
        f"    connection={_literal(setting)},",
        f"    database_name={_literal(metadata.database)},",
        f"    container_name={_literal(metadata.collection)},",
        f"    lease_container_name={_literal(trigger.lease_container)},",
        "    create_lease_container_if_not_exists=True,",
        f"    start_from_beginning={trigger.start_from_beginning},",
        f"    feed_poll_delay={poll},",
        ")",
    ]
    parameters = ("documents: func.DocumentList",)
    return [_function(component, Function.cosmosdb, decorators, parameters)]


def _blob_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    trigger: BlobTrigger = _extension(component, BlobTrigger)
    metadata = _metadata(component)
    setting = connection_setting(component.name)
    settings.local[setting] = "UseDevelopmentStorage=true"
    for service in ("blob", "queue"):  # the trigger keeps its receipts in queues
        uri = metadata.account_url(service)
        settings.deployed.append({"name": f"{setting}__{service}ServiceUri", "value": uri})
    source = "EVENT_GRID" if trigger.source is BlobSource.EVENT_GRID else "LOGS_AND_CONTAINER_SCAN"
    decorators = [
        "@app.blob_trigger(",
        '    arg_name="stream",',
        f"    path={_literal(metadata.container_name + '/' + trigger.path)},",
        f"    connection={_literal(setting)},",
        f"    source=func.BlobSource.{source},",
        ")",
    ]
    function = _function(component, Function.blob, decorators, ("stream: func.InputStream",))
    if trigger.source is BlobSource.EVENT_GRID:
        prefix, suffix = trigger.path.split("{name}")
        settings.subscriptions.append(
            {
                "name": _subscription_name(component),
                "function": function.name,
                "endpointType": "blobs_extension",
                "storageAccount": metadata.account_name,
                "subjectBeginsWith": (
                    f"/blobServices/default/containers/{metadata.container_name}/blobs/{prefix}"
                ),
                "subjectEndsWith": suffix,
                "eventTypes": ["Microsoft.Storage.BlobCreated"],
            }
        )
    return [function]


#: Dapr `saslMechanism` → the Kafka trigger's authentication mode.
_KAFKA_MECHANISMS = {"PLAINTEXT": "PLAIN", "SHA-256": "SCRAMSHA256", "SHA-512": "SCRAMSHA512"}


def _kafka_functions(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    metadata = _metadata(component)
    topics = [topic.strip() for topic in (metadata.topics or "").split(",") if topic.strip()]
    if not topics:
        raise component.error("a Kafka trigger needs the topics to consume", field="topics")
    if not metadata.consumer_group:
        raise component.error("a Kafka trigger needs a consumer group", field="consumerGroup")
    unsupported = [
        field
        for field, value in (
            ("authType", metadata.auth_type not in ("none", "password")),
            ("caCert", metadata.ca_cert),
            ("skipVerify", metadata.skip_verify),
        )
        if value
    ]
    if unsupported:
        raise component.error(
            "not translated to the Azure Kafka trigger (authType none or password, with the "
            "broker's certificate from a public CA)",
            field=unsupported[0],
            hint="run this input with `portabind run` instead",
        )
    tls = metadata.auth_type != "none" and not metadata.disable_tls
    arguments = [
        f"    broker_list={_literal(settings.holding(component, 'brokers'))},",
        f"    consumer_group={_literal(metadata.consumer_group)},",
    ]
    if metadata.auth_type == "password":
        mechanism = _KAFKA_MECHANISMS[metadata.sasl_mechanism]
        arguments += [
            f"    username={_literal(settings.holding(component, 'saslUsername'))},",
            f"    password={_literal(settings.holding(component, 'saslPassword'))},",
            f"    authentication_mode=BrokerAuthenticationMode.{mechanism},",
            f"    protocol=BrokerProtocol.{'SASLSSL' if tls else 'SASLPLAINTEXT'},",
        ]
    else:
        arguments.append(f"    protocol=BrokerProtocol.{'SSL' if tls else 'PLAINTEXT'},")
    if metadata.dead_letter_topic:
        raise component.error(
            "the Azure Kafka trigger has no dead-letter topic: after its retries the "
            "checkpoint moves on and the record is lost",
            field="deadLetterTopic",
            hint="drop deadLetterTopic (the record is then retried until the handler "
            "succeeds, as the local listener does), or run this input with `portabind run`",
        )
    # As the local listener: a failing record is retried until the handler succeeds, after
    # Dapr's back-off (docs/delivery.md); Azure's exponential back-off has its own growth.
    if metadata.backoff_policy == "constant":
        retry = (
            '@app.retry(strategy="fixed_delay", max_retry_count="-1", '
            f'delay_interval="{_timespan(metadata.backoff_duration)}")'
        )
    else:
        retry = (
            '@app.retry(strategy="exponential_backoff", max_retry_count="-1", '
            f'minimum_interval="{_timespan(metadata.backoff_initial_interval)}", '
            f'maximum_interval="{_timespan(metadata.backoff_max_interval)}")'
        )
    return [
        _function(
            component,
            Function.kafka,
            [
                retry,
                "@app.kafka_trigger(",
                '    arg_name="record",',
                f"    topic={_literal(topic)},",
                *arguments,
                "    data_type=func.DataType.BINARY,",
                ")",
            ],
            ("record: func.KafkaEvent",),
            name=None if len(topics) == 1 else f"{component.name}_{topic}",
        )
        for topic in topics
    ]


def _rabbitmq_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    metadata = _metadata(component)
    if metadata.prefetch_count and settings.agree(
        "rabbitMQ.prefetchCount", str(metadata.prefetch_count), component, "prefetchCount"
    ):
        settings.extensions["rabbitMQ"] = {"prefetchCount": metadata.prefetch_count}
    decorators = [
        "@app.generic_trigger(",
        '    arg_name="message",',
        '    type="rabbitMQTrigger",',
        f"    queue_name={_literal(metadata.queue_name)},",
        f"    connection_string_setting={_literal(settings.holding(component, 'host'))},",
        "    data_type=func.DataType.BINARY,",
        ")",
    ]
    return [_function(component, Function.rabbitmq, decorators, ("message: bytes",))]


def _messaging_connection(
    component: Component, settings: _Settings, namespace: str | None, *, kind: str
) -> str:
    """The app setting a Service Bus or Event Hubs trigger's `connection` names: the Key
    Vault reference of a referenced connection string, or (with the namespace, for Entra ID)
    `<setting>__fullyQualifiedNamespace`, which makes the host sign in with the app's
    managed identity. A connection string written in the component would put its key in the
    app settings: refused."""
    names = registry.binding_for(component).metadata.dapr_names()
    given = {names.get(key.lower()): value for key, value in component.binding_values().items()}
    value = given.get("connectionString")
    if value is not None and value.literal:
        raise component.error(
            "the connection string is written in the component, and the build would put its "
            "key in the app settings",
            field="connectionString",
            hint="give it as a secretKeyRef (the build emits a Key Vault reference), or name "
            "the namespace instead to sign in with the app's managed identity",
        )
    if value is not None:
        return settings.holding(component, "connectionString")
    setting = app_setting(component.name, kind)
    settings.add(f"{setting}__fullyQualifiedNamespace", namespace or "")
    return setting


def _host_setting(
    settings: _Settings, component: Component, extension: str, key: str, value: Any
) -> None:
    """A host.json `extensions.<extension>` setting: app-wide, so components must agree."""
    if settings.agree(f"{extension}.{key}", json.dumps(value), component, f"host.json {key}"):
        settings.extensions.setdefault(extension, {})[key] = value


def _service_bus_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    metadata = _metadata(component)
    connection = _messaging_connection(component, settings, metadata.namespace(), kind="servicebus")
    # Dapr's receive settings as the host's: handlers at once (0: the host's default),
    # messages held beyond them, and how long a lock is renewed while a handler runs
    # (handlerTimeoutInSec; lockRenewalInSec 0 renews none).
    if metadata.max_concurrent_handlers:
        _host_setting(
            settings,
            component,
            "serviceBus",
            "maxConcurrentCalls",
            metadata.max_concurrent_handlers,
        )
    prefetch = max(metadata.max_active_messages - (metadata.max_concurrent_handlers or 1), 0)
    _host_setting(settings, component, "serviceBus", "prefetchCount", prefetch)
    if not metadata.lock_renewal_in_sec:
        _host_setting(settings, component, "serviceBus", "maxAutoLockRenewalDuration", "00:00:00")
    elif metadata.handler_timeout_in_sec:
        renewal = _timespan(timedelta(seconds=metadata.handler_timeout_in_sec))
        _host_setting(settings, component, "serviceBus", "maxAutoLockRenewalDuration", renewal)
    decorators = [
        "@app.service_bus_queue_trigger(",
        '    arg_name="message",',
        f"    queue_name={_literal(metadata.queue_name)},",
        f"    connection={_literal(connection)},",
        "    data_type=func.DataType.BINARY,",
        ")",
    ]
    parameters = ("message: func.ServiceBusMessage",)
    return [_function(component, Function.service_bus, decorators, parameters)]


def _event_hubs_function(component: Component, settings: _Settings) -> list[entry.EntryFunction]:
    metadata = _metadata(component)
    hub = metadata.hub()
    if hub is None:
        raise component.error(
            "the trigger names its event hub, and the build cannot read the EntityPath of a "
            "connection string given as a reference",
            field="eventHub",
            hint="set eventHub to the hub's name",
        )
    if not metadata.consumer_id:
        raise component.error("an Event Hubs trigger needs its consumer group", field="consumerID")
    connection = _messaging_connection(component, settings, metadata.namespace(), kind="eventhubs")
    host = TARGET.parse_annotations(component)
    start = host[EventHubsAnnotations].initial_offset
    # The host keeps its checkpoints in AzureWebJobsStorage, one after each invocation that
    # succeeded: a failing one is retried (below) and checkpoints nothing.
    for key, value in (
        ("maxEventBatchSize", host[EventHubsHost].max_event_batch_size),
        ("batchCheckpointFrequency", 1),
        ("initialOffsetOptions", {"type": "fromEnd" if start == "latest" else "fromStart"}),
    ):
        _host_setting(settings, component, "eventHubs", key, value)
    decorators = [
        # As the local listener: a failing event is retried with Dapr's back-off until the
        # handler succeeds, never skipped.
        _retry_decorator(component, metadata.retry(), settings),
        "@app.event_hub_message_trigger(",
        '    arg_name="events",',
        f"    event_hub_name={_literal(hub)},",
        f"    connection={_literal(connection)},",
        f"    consumer_group={_literal(metadata.consumer_id)},",
        "    cardinality=func.Cardinality.MANY,",
        "    data_type=func.DataType.BINARY,",
        ")",
    ]
    parameters = ("events: list[func.EventHubEvent]",)
    return [_function(component, Function.event_hubs, decorators, parameters)]


#: Triggers whose failures the Functions host retries by the function's retry policy
#: (`@app.retry`); the others retry by their service's settings.
RETRY_POLICY_TYPES = frozenset(
    {"bindings.cron", "bindings.kafka", "bindings.azure.eventhubs", "bindings.azure.cosmosdb"}
)


def _retry_decorator(component: Component, retry: Retry, settings: _Settings) -> str:
    """`@app.retry` for a Resiliency retry policy: fixed delay, or the host's exponential
    back-off between `initialInterval` and `maxInterval`."""
    count = f'max_retry_count="{retry.max_retries}"'
    if not retry.exponential:
        delay = _timespan(timedelta(seconds=retry.duration))
        return f'@app.retry(strategy="fixed_delay", {count}, delay_interval="{delay}")'
    settings.cannot(
        component,
        "retry",
        f"multiplier {retry.multiplier:g}, randomizationFactor {retry.randomization_factor:g} "
        f"and maxElapsedTime {retry.max_elapsed_time:g}s: the host doubles each wait, "
        "unrandomized, without a time limit",
    )
    low = _timespan(timedelta(seconds=retry.initial_interval))
    high = _timespan(timedelta(seconds=retry.max_interval))
    return (
        f'@app.retry(strategy="exponential_backoff", {count}, minimum_interval="{low}", '
        f'maximum_interval="{high}")'
    )


def _with_policies(
    component: Component, functions: list[entry.EntryFunction], settings: _Settings
) -> list[entry.EntryFunction]:
    """The component's inbound Resiliency policies on its functions, for every trigger: the
    retry policy as `@app.retry` where the host honours one (replacing the trigger's own
    default), the timeout as host.json's `functionTimeout`; what a trigger cannot take is a
    warning."""
    policy = settings.resiliency.policy(component.name, INBOUND)
    if policy.retry is not None and component.type in RETRY_POLICY_TYPES:
        retry = _retry_decorator(component, policy.retry, settings)
        functions = [
            replace(
                function,
                decorators=(
                    function.decorators[0],
                    retry,
                    *(d for d in function.decorators[1:] if not d.startswith("@app.retry(")),
                ),
            )
            for function in functions
        ]
    elif policy.retry is not None and component.type != "bindings.azure.storagequeues":
        settings.cannot(
            component,
            "retry",
            f"the host retries a {component.type} trigger by its service's own settings, not a "
            "function retry policy",
        )
    if policy.timeout is not None and policy.timeout > 0:
        settings.timeouts[component.name] = policy.timeout
    if policy.breaker is not None:
        settings.cannot(
            component,
            "circuitBreaker",
            "the Functions host has no circuit breaker on a trigger (outbound breakers apply in "
            "the function)",
        )
    return functions


def _function_timeout(settings: _Settings) -> str | None:
    """host.json's app-wide `functionTimeout`: the longest inbound timeout asked for."""
    if not settings.timeouts:
        return None
    longest = max(settings.timeouts.values())
    for component, seconds in settings.timeouts.items():
        if seconds != longest:
            settings.warnings.append(
                BuildError(
                    f"component {component!r}: the azure build cannot express its inbound "
                    f"timeout {seconds:g}s: host.json's functionTimeout is app-wide and is "
                    f"{longest:g}s"
                )
            )
    return _timespan(timedelta(seconds=longest))


def _function_app(
    triggered: list[tuple[Component, Trigger[FunctionWriter]]], app_ref: str, settings: _Settings
) -> str:
    functions = [
        function
        for component, trigger in triggered
        for function in _with_policies(component, trigger.write(component, settings), settings)
    ]
    imports = ["import azure.functions as func"]
    if any(component.type == "bindings.kafka" for component, _ in triggered):
        imports.append(
            "from azure.functions.decorators.kafka import BrokerAuthenticationMode, BrokerProtocol"
        )
    return entry.module(
        doc="Generated by `portabind build --target azure`; do not edit (rebuild instead).",
        runtime=Function.__module__,
        app_ref=app_ref,
        functions=functions,
        imports=imports,
        preamble=("app = func.FunctionApp()",),
    )


def _secret_settings(project: Project, settings: _Settings) -> None:
    """Each secret reference as an app setting holding a Key Vault reference."""
    for component in project.components.bindings():
        store = store_settings(project.components, component, "secretstores.azure.keyvault")
        vault = (
            store.vault
            if store is not None
            else TARGET.parse_annotations(component)[KeyVault].key_vault or "<key-vault-name>"
        )
        for field, value in sorted(component.binding_values().items()):
            if value.secret_ref is None:
                continue
            # A Key Vault store's GetSecret(name) is {name: value}: the secret is the name.
            ref = value.secret_ref
            secret = re.sub(r"[^0-9A-Za-z-]", "-", ref.name if store else ref.key or ref.name)
            settings.add(
                secret_env_name(component.name, field),
                f"@Microsoft.KeyVault(VaultName={vault};SecretName={secret})",
                local="",
            )


def package(out: Path) -> Path:
    """OUT as the zip Azure publishes (host.json at its root), with fixed timestamps so
    that the same build gives the same bytes."""
    archive = out / PACKAGE
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(out.rglob("*")):
            relative = path.relative_to(out)
            if path.is_file() and not _NOT_PUBLISHED.intersection(relative.parts):
                info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zipped.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return archive


def _contents(project: Project) -> tuple[dict[str, str], _Settings]:
    """The generated files by name, and the settings (warnings included) they came from."""
    triggered = _triggered(project)
    settings = _Settings()
    settings.resiliency = policies(project.components.resiliency)
    function_app = _function_app(triggered, project.app_ref, settings)
    _secret_settings(project, settings)
    for deployed in settings.deployed:
        deployed["slotSetting"] = False
    extensions = dict(settings.extensions)
    queues = [c for c, _ in triggered if c.type == "bindings.azure.storagequeues"]
    if queues:
        extensions["queues"] = _host_queue_settings(queues, settings)
    if any(c.type == "bindings.http" for c, _ in triggered):
        # No `/api` prefix: the trigger answers on its path, as on the other targets.
        extensions["http"] = {"routePrefix": ""}
    host: dict[str, Any] = {"version": "2.0", "extensionBundle": EXTENSION_BUNDLE}
    timeout = _function_timeout(settings)
    if timeout is not None:
        host["functionTimeout"] = timeout
    host["extensions"] = extensions
    values = {"IsEncrypted": False, "Values": settings.local}
    files = {
        "function_app.py": function_app,
        "host.json": json.dumps(host, indent=2) + "\n",
        "local.settings.json": json.dumps(values, indent=2) + "\n",
        "appsettings.json": json.dumps(settings.deployed, indent=2) + "\n",
        "requirements.txt": "\n".join(bundle.requirements(project, ["azure-functions"])) + "\n",
    }
    if settings.subscriptions:
        files[SUBSCRIPTIONS] = json.dumps(settings.subscriptions, indent=2) + "\n"
    return files, settings


def _cannot_express(project: Project) -> list[UserError]:
    """What the app cannot express of the inbound Resiliency policies (a project the build
    refuses has its error from the build)."""
    try:
        return _contents(project)[1].warnings
    except UserError:
        return []


def build(project: Project, out: Path) -> list[Path]:
    files, _ = _contents(project)
    written = bundle.bundle(project, out, TARGET.name)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in files] + written + [package(out)]


FunctionWriter = Callable[["Component", _Settings], list[entry.EntryFunction]]
TARGET = Target(
    name="azure",
    build=build,
    triggers=(
        Trigger("bindings.azure.storagequeues", "queue_trigger", Function.queue, _queue_function),
        Trigger("bindings.cron", "timer_trigger", Function.timer, _timer_function),
        Trigger(
            "bindings.http", "route (extension)", Function.http, _route_function, extension=True
        ),
        Trigger("bindings.kafka", "kafka_trigger", Function.kafka, _kafka_functions),
        Trigger("bindings.rabbitmq", "rabbitMQTrigger", Function.rabbitmq, _rabbitmq_function),
        Trigger(
            "bindings.azure.servicebusqueues",
            "service_bus_queue_trigger",
            Function.service_bus,
            _service_bus_function,
        ),
        Trigger(
            "bindings.azure.eventhubs",
            "event_hub_message_trigger (batched)",
            Function.event_hubs,
            _event_hubs_function,
        ),
        Trigger(
            "bindings.azure.eventgrid",
            "event_grid_trigger",
            Function.event_grid,
            _event_grid_function,
        ),
        Trigger(
            "bindings.azure.cosmosdb",
            "cosmos_db_trigger (extension)",
            Function.cosmosdb,
            _cosmos_function,
            extension=True,
        ),
        Trigger(
            "bindings.azure.blobstorage",
            "blob_trigger (extension)",
            Function.blob,
            _blob_function,
            extension=True,
        ),
    ),
    annotations=BY_TYPE,
    common_annotations=COMMON,
    cannot_express=_cannot_express,
)
