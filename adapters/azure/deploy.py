"""`portabind deploy --target azure`: the Functions app in OUT onto Azure with the Azure CLI.

In the resource group named after the deployment (`--name`, also the Function App's name,
which Azure wants unique world-wide), each created unless it exists: the group, the storage
account the Functions host keeps its state in, and the Function App on a Linux Consumption
plan with a system-assigned identity (Azure creates its Application Insights component with
it). Then the app settings the build wrote (appsettings.json: identity-based trigger
connections, secrets as Key Vault references, never values) and the zip the build made,
published with a remote build that installs requirements.txt.

Granting the app's identity access to what its settings name (the queue's storage account,
the Key Vault) is left to the user: those resources are the user's, not deploy's.

`destroy` deletes what was created, newest first; the Consumption plan Azure made for the app
goes with the app when no other app uses it.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from portabind.adapters.azure.build import PACKAGE
from portabind.errors import UserError
from portabind.tooling.deployment import Deployer, Probe, Resource, Step

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.tooling.deployment import DeployOptions

PYTHON_VERSION = "3.11"
#: A Function App name: letters, digits and hyphens (it becomes <name>.azurewebsites.net).
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]")
#: What `az ... show` prints for a resource (or its resource group) that does not exist.
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
    ]


DEPLOYER = Deployer(
    tools={
        "az": "install the Azure CLI: `pip install azure-cli` (best in a virtualenv of its own) "
        "or your system's package, then `az login`"
    },
    plan=plan,
    options=frozenset({"region"}),
)
