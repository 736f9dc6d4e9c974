"""`portabind build --target azure`: an Azure Functions Python v2 app.

OUT/
  function_app.py        one queue-triggered function per input binding with a handler
  host.json              extension bundle; queue settings (messageEncoding "none", see below)
  local.settings.json    the setting names, with Azurite or empty values: never a secret
  appsettings.json       the settings to give the deployed app (`az functionapp config
                         appsettings set --settings @appsettings.json`): identity-based
                         trigger connections and Key Vault references for secrets
  requirements.txt       what Azure's remote build installs
  app.py, ...            the user's code; components/ the chosen profile
  portabind/             the parts of portabind the app uses (core, its bindings, this runtime)

Trigger connection: `<CONN>__queueServiceUri` (the storage account's queue URL) makes the host
read the queue with the function app's managed identity (role "Storage Queue Data Message
Processor"), so no account key is needed by the trigger. Secrets (`secretKeyRef`) become app
settings named by `secret_env_name`, whose values are Key Vault references; the vault is the
component annotation `portabind.io/keyVault`, or a placeholder to fill in.

Queue messages: host.json sets `extensions.queues.messageEncoding` to `none`. The host's default
(base64) would reject or alter messages written by Dapr and by this project's storagequeues
output, which send the text as given; with `none` the same message gives the same data on the
local listener, a Dapr sidecar and Azure Functions.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portabind import registry
from portabind.components import parse_metadata, placeholder_values
from portabind.errors import BuildError
from portabind.metadata import parse_duration
from portabind.secrets import secret_env_name

if TYPE_CHECKING:
    from datetime import timedelta

    from portabind.components import Component
    from portabind.project import Project

TRIGGERS = {"bindings.azure.storagequeues": "queue_trigger"}

EXTENSION_BUNDLE = {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
#: host.json queue settings: annotation → (host.json key, default). Durations are hh:mm:ss.
QUEUE_ANNOTATIONS = {
    "maxDequeueCount": ("maxDequeueCount", 5),
    "batchSize": ("batchSize", 16),
    "newBatchThreshold": ("newBatchThreshold", None),
    "visibilityTimeout": ("visibilityTimeout", None),
    "maxPollingInterval": ("maxPollingInterval", None),
}
KEY_VAULT_ANNOTATION = "keyVault"
_SKIPPED = {"__pycache__", "components", "node_modules", "venv", "local.settings.json"}


def _literal(text: str) -> str:
    """A Python string literal (JSON's double-quoted form is valid Python)."""
    return json.dumps(text)


def _identifier(name: str) -> str:
    clean = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return clean if clean[:1].isalpha() else f"f_{clean}"


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


def _triggered(project: Project) -> list[Component]:
    """The input components with a handler; each must have an Azure trigger."""
    found = []
    for name in project.app.handlers:
        component = project.components.get(name)
        if component.type not in TRIGGERS:
            supported = ", ".join(sorted(TRIGGERS))
            raise component.error(
                f"{component.type} has no Azure Functions trigger",
                field="spec.type",
                hint=f"Azure triggers exist for: {supported}; run this input with "
                "`portabind run` (or a Dapr sidecar) instead",
            )
        found.append(component)
    if not found:
        raise BuildError(
            "the app has no input handlers, so there is no function to build",
            hint="register a handler with @app.binding('<input component>')",
        )
    return found


def _metadata(component: Component) -> Any:
    binding = registry.binding_for(component)
    return parse_metadata(component, binding.metadata, placeholder_values(component))


def _host_queue_settings(components: list[Component]) -> dict[str, Any]:
    """The app-wide `extensions.queues` section; settings the components disagree on are an
    error, since host.json applies to every queue trigger."""
    chosen: dict[str, tuple[Any, str]] = {}
    for component in components:
        metadata = _metadata(component)
        wanted: dict[str, Any] = {
            "visibilityTimeout": _timespan(metadata.visibility_timeout),
            "maxPollingInterval": _timespan(metadata.polling_interval),
        }
        for annotation, (key, default) in QUEUE_ANNOTATIONS.items():
            raw = component.annotation(annotation)
            if raw is None:
                if default is not None:
                    wanted.setdefault(key, default)
                continue
            try:
                wanted[key] = (
                    _timespan(parse_duration(raw))
                    if key.endswith(("Timeout", "Interval"))
                    else int(raw)
                )
            except ValueError as error:
                raise component.error(
                    f"annotation portabind.io/{annotation}: {error}",
                    field=f"metadata.annotations.portabind.io/{annotation}",
                ) from None
        for key, value in wanted.items():
            if key in chosen and chosen[key][0] != value:
                raise BuildError(
                    f"host.json queue setting {key} is app-wide, and components "
                    f"{chosen[key][1]!r} ({chosen[key][0]}) and {component.name!r} ({value}) "
                    "ask for different values",
                    hint="give both components the same value, or build them as separate apps",
                )
            chosen.setdefault(key, (value, component.name))
    settings = {key: value for key, (value, _) in chosen.items()}
    settings["messageEncoding"] = "none"
    return settings


def _function_app(components: list[Component], app_ref: str) -> str:
    functions = []
    for component in components:
        metadata = _metadata(component)
        identifier = _identifier(component.name)
        functions.append(
            textwrap.dedent(
                f"""\


                @app.function_name(name={_literal(identifier)})
                @app.queue_trigger(
                    arg_name="message",
                    queue_name={_literal(metadata.queue_name)},
                    connection={_literal(connection_setting(component.name))},
                )
                def {identifier}(message: func.QueueMessage) -> None:
                    host.queue_message({_literal(component.name)}, message)
                """
            )
        )
    header = textwrap.dedent(
        f'''\
        """Generated by `portabind build --target azure`; do not edit (rebuild instead)."""

        from pathlib import Path

        import azure.functions as func

        from portabind.adapters.azure.runtime import FunctionHost

        host = FunctionHost(Path(__file__).parent, app_ref={_literal(app_ref)})
        app = func.FunctionApp()
        '''
    )
    return header + "".join(functions)


def _settings(
    project: Project, triggered: list[Component]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """local.settings.json `Values` and the deployed app settings."""
    local = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    deployed: list[dict[str, Any]] = []
    for component in triggered:
        setting = connection_setting(component.name)
        local[setting] = "UseDevelopmentStorage=true"
        deployed.append(
            {
                "name": f"{setting}__queueServiceUri",
                "value": _metadata(component).account_url("queue"),
            }
        )
    for component in project.components.bindings():
        vault = component.annotation(KEY_VAULT_ANNOTATION) or "<key-vault-name>"
        for field, value in sorted(component.binding_values().items()):
            if value.secret_ref is None:
                continue
            name = secret_env_name(component.name, field)
            secret = re.sub(r"[^0-9A-Za-z-]", "-", value.secret_ref.key or value.secret_ref.name)
            local[name] = ""
            deployed.append(
                {
                    "name": name,
                    "value": f"@Microsoft.KeyVault(VaultName={vault};SecretName={secret})",
                }
            )
    for entry in deployed:
        entry["slotSetting"] = False
    return local, deployed


def _requirements(project: Project) -> list[str]:
    """Core dependencies plus the extras of each binding family the components use."""
    families = {"azure"} | {c.type.split(".")[1] for c in project.components.bindings()}
    lines: list[str] = []
    for requirement in importlib.metadata.requires("portabind") or []:
        spec, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*[\"']([^\"']+)[\"']", marker)
        if (extra is None or extra.group(1) in families) and spec.strip() not in lines:
            lines.append(spec.strip())
    return lines


def _package_dir(module: str) -> Path:
    return Path(str(importlib.import_module(module).__file__)).parent


def _copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") or part in _SKIPPED for part in relative.parts):
            continue
        if path.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / relative)


def _vendor(project: Project, out: Path) -> None:
    """Copy the portabind core, the binding modules the components use (with their
    packages and private helpers) and this runtime into OUT/portabind."""
    target = out / "portabind"
    core = _package_dir("portabind")
    for path in core.glob("*"):
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed"):
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.name)
    wanted: set[Path] = set()
    bindings_root = _package_dir("portabind.bindings")
    for component in project.components.bindings():
        module = importlib.import_module(registry._module_name(component.type))
        source = Path(str(module.__file__))
        wanted.add(source)
        directory = source.parent
        while True:
            wanted.update(p for p in directory.glob("_*.py"))  # __init__ and private helpers
            if directory == bindings_root:
                break
            directory = directory.parent
    for source in wanted:
        destination = target / "bindings" / source.relative_to(bindings_root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    adapters = _package_dir("portabind.adapters")
    for relative in ("__init__.py", "azure/__init__.py", "azure/runtime.py"):
        destination = target / "adapters" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(adapters / relative, destination)


def build(project: Project, out: Path) -> list[Path]:
    triggered = _triggered(project)
    out.mkdir(parents=True, exist_ok=True)
    local, deployed = _settings(project, triggered)
    host = {
        "version": "2.0",
        "extensionBundle": EXTENSION_BUNDLE,
        "extensions": {"queues": _host_queue_settings(triggered)},
    }
    files = {
        "function_app.py": _function_app(triggered, project.app_ref),
        "host.json": json.dumps(host, indent=2) + "\n",
        "local.settings.json": json.dumps({"IsEncrypted": False, "Values": local}, indent=2) + "\n",
        "appsettings.json": json.dumps(deployed, indent=2) + "\n",
        "requirements.txt": "\n".join(_requirements(project)) + "\n",
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    project_dir = project.directory.resolve()
    out_resolved = out.resolve()
    for path in sorted(project_dir.iterdir()):
        if path.name.startswith(".") or path.name in _SKIPPED or path.resolve() == out_resolved:
            continue
        if path.is_dir():
            _copy_tree(path, out / path.name)
        elif path.is_file():
            shutil.copyfile(path, out / path.name)
    components_out = out / "components"
    components_out.mkdir(exist_ok=True)
    for path in sorted(project.components.directory.iterdir()):
        if path.suffix in (".yaml", ".yml") and path.is_file():
            shutil.copyfile(path, components_out / path.name)
    _vendor(project, out)
    return [out / name for name in files] + [components_out, out / "portabind"]
