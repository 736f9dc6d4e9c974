"""`portabind deploy --target azure`: the Functions app in OUT onto Azure with the Azure CLI.

In the resource group named after the deployment (`--name`, also the Function App's name,
which Azure wants unique world-wide), each created unless it exists: the group, the storage
account the Functions host keeps its state in, and the Function App on a Linux Consumption
plan with a system-assigned identity (Azure creates its Application Insights component with
it). Then the app settings the build wrote (appsettings.json: identity-based trigger
connections, secrets as Key Vault references, never values) and the zip the build made,
published with a remote build that installs requirements.txt. Last, the Event Grid
subscriptions the build listed (eventgrid.json: Event Grid triggers, and Blob triggers whose
source is EventGrid), which must come after the app exists: Event Grid validates the
endpoint when the subscription is created.

Granting the app's identity access to what its settings name (the queue's storage account,
the Key Vault) is left to the user: those resources are the user's, not deploy's.

`destroy` deletes what was created, newest first; the Consumption plan Azure made for the app
goes with the app when no other app uses it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING

from portabind.adapters.azure.build import PACKAGE, SUBSCRIPTIONS
from portabind.errors import UserError
from portabind.tooling.deployment import Deployer, Probe, Resource, Step

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.tooling.deployment import DeployOptions

PYTHON_VERSION = "3.11"
#: A Function App name: letters, digits and hyphens (it becomes <name>.azurewebsites.net).
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]")
#: What `az ... show` prints for a resource (or its resource group) that does not exist.
_TSV = ("--output", "tsv")
_NOT_FOUND = r"ResourceNotFound|ResourceGroupNotFound|could not be found|was not found"


def storage_account(app: str) -> str:
    """The host's storage account: 3-24 lower-case letters and digits, unique world-wide
    like the app name it is derived from (the hash keeps two apps' prefixes apart)."""
    digest = hashlib.sha256(app.encode()).hexdigest()[:6]
    return re.sub(r"[^a-z0-9]", "", app.lower())[:18] + digest


def plan(out: Path, options: DeployOptions) -> list[Step]:
    app = options.name
    if not _APP_NAME.fullmatch(app):
        raise UserError(
            f"{app!r} is not a Function App name",
            hint="--name: 2-60 letters, digits and hyphens, not starting or ending with one",
        )
    if not options.region:
        raise UserError(
            "deploying to azure needs the Azure region",
            hint="--region westeurope (`az account list-locations -o table` lists them)",
        )
    group, storage = ("--resource-group", app), storage_account(app)
    create_app = (
        "az",
        "functionapp",
        "create",
        "--name",
        app,
        *group,
        "--storage-account",
        storage,
        "--consumption-plan-location",
        options.region,
        "--os-type",
        "Linux",
        "--runtime",
        "python",
        "--runtime-version",
        PYTHON_VERSION,
        "--functions-version",
        "4",
        "--assign-identity",
        "[system]",
    )
    return [
        Step(
            f"resource group {app}",
            ("az", "group", "create", "--name", app, "--location", options.region),
            creates=(
                Resource("resource group", app, ("az", "group", "delete", "--name", app, "--yes")),
            ),
            probe=Probe(("az", "group", "show", "--name", app), _NOT_FOUND),
        ),
        Step(
            f"storage account {storage} (the Functions host's state)",
            (
                "az",
                "storage",
                "account",
                "create",
                "--name",
                storage,
                *group,
                "--location",
                options.region,
                "--sku",
                "Standard_LRS",
                "--allow-blob-public-access",
                "false",
            ),
            creates=(
                Resource(
                    "storage account",
                    storage,
                    ("az", "storage", "account", "delete", "--name", storage, *group, "--yes"),
                ),
            ),
            probe=Probe(
                ("az", "storage", "account", "show", "--name", storage, *group), _NOT_FOUND
            ),
        ),
        Step(
            f"Function App {app}",
            create_app,
            creates=(
                Resource(
                    "Function App", app, ("az", "functionapp", "delete", "--name", app, *group)
                ),
                Resource(
                    "Application Insights component",
                    app,
                    (
                        "az",
                        "resource",
                        "delete",
                        "--name",
                        app,
                        *group,
                        "--resource-type",
                        "Microsoft.Insights/components",
                    ),
                ),
            ),
            probe=Probe(("az", "functionapp", "show", "--name", app, *group), _NOT_FOUND),
        ),
        Step(
            "app settings: trigger connections, Key Vault references",
            (
                "az",
                "functionapp",
                "config",
                "appsettings",
                "set",
                "--name",
                app,
                *group,
                "--settings",
                f"@{out / 'appsettings.json'}",
            ),
        ),
        Step(
            "publish the app (remote build of requirements.txt)",
            (
                "az",
                "functionapp",
                "deployment",
                "source",
                "config-zip",
                "--name",
                app,
                *group,
                "--src",
                str(out / PACKAGE),
                "--build-remote",
                "true",
            ),
        ),
        *_subscriptions(out, app, group),
    ]


def _subscriptions(out: Path, app: str, group: tuple[str, ...]) -> list[Step]:
    """After publishing: the Event Grid subscriptions the build listed (eventgrid.json), each
    created unless it exists. An Event Grid trigger's is on its component's `scope`; a Blob
    trigger's (source EventGrid) on the storage account's BlobCreated events, delivered to the
    host's blobs extension with its system key (a `${...}` value, never printed)."""
    path = out / SUBSCRIPTIONS
    if not path.is_file():
        return []
    try:
        wanted = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(
            f"{path} is not the build's list of Event Grid subscriptions ({error})",
            hint="build again: `portabind deploy` rebuilds it unless --out points elsewhere",
        ) from None
    steps: list[Step] = []
    app_id, blobs_key = "FUNCTION_APP_ID", "BLOBS_EXTENSION_KEY"
    if any(s["endpointType"] == "azurefunction" for s in wanted):
        steps.append(
            Step(
                f"the resource id of Function App {app}",
                ("az", "functionapp", "show", "--name", app, *group, "--query", "id", *_TSV),
                capture=app_id,
            )
        )
    endpoint: tuple[str, ...]
    for subscription in wanted:
        name, function = subscription["name"], subscription["function"]
        if subscription["endpointType"] == "azurefunction":
            source = subscription["source"]
            endpoint = (
                "--endpoint-type",
                "azurefunction",
                "--endpoint",
                f"${{{app_id}}}/functions/{function}",
                "--event-delivery-schema",
                subscription["schema"],
            )
        else:
            account = re.sub(r"\W", "_", subscription["storageAccount"]).upper()
            source = f"${{STORAGE_{account}_ID}}"
            steps.append(
                Step(
                    f"the resource id of storage account {subscription['storageAccount']}",
                    (
                        "az",
                        "storage",
                        "account",
                        "show",
                        "--name",
                        subscription["storageAccount"],
                        "--query",
                        "id",
                        "--output",
                        "tsv",
                    ),
                    capture=f"STORAGE_{account}_ID",
                )
            )
            steps.append(
                Step(
                    "the blobs extension's system key",
                    (
                        "az",
                        "functionapp",
                        "keys",
                        "list",
                        "--name",
                        app,
                        *group,
                        "--query",
                        "systemKeys.blobs_extension",
                        "--output",
                        "tsv",
                    ),
                    capture=blobs_key,
                )
            )
            webhook = (
                f"https://{app}.azurewebsites.net/runtime/webhooks/blobs"
                f"?functionName=Host.Functions.{function}&code=${{{blobs_key}}}"
            )
            endpoint = (
                "--endpoint-type",
                "webhook",
                "--endpoint",
                webhook,
                "--included-event-types",
                *subscription["eventTypes"],
                "--subject-begins-with",
                subscription["subjectBeginsWith"],
            )
            if subscription["subjectEndsWith"]:
                endpoint += ("--subject-ends-with", subscription["subjectEndsWith"])
        where = ("--name", name, "--source-resource-id", source)
        steps.append(
            Step(
                f"Event Grid subscription {name} (to function {function})",
                ("az", "eventgrid", "event-subscription", "create", *where, *endpoint),
                creates=(
                    Resource(
                        "Event Grid subscription",
                        name,
                        ("az", "eventgrid", "event-subscription", "delete", *where),
                    ),
                ),
                probe=Probe(("az", "eventgrid", "event-subscription", "show", *where), _NOT_FOUND),
            )
        )
    return steps


DEPLOYER = Deployer(
    tools={
        "az": "install the Azure CLI: `pip install azure-cli` (best in a virtualenv of its own) "
        "or your system's package, then `az login`"
    },
    plan=plan,
    options=frozenset({"region"}),
)
