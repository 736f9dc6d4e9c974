"""`portabind deploy --target dapr`: the manifests in OUT onto the cluster kubectl points at.

One `kubectl apply -k OUT`, which creates or updates every resource the build's
kustomization lists (the Deployment, the Dapr Components, Configuration and Resiliency, the
KEDA ScaledObject and TriggerAuthentications, the Secrets it generates from the env files the
user filled). The cluster needs Dapr and KEDA installed, and the image built from OUT's
Dockerfile pushed where the cluster pulls it (`kustomize edit set image` in OUT names it).
`destroy` runs `kubectl delete -k OUT`, which deletes the same resources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from portabind.adapters.dapr.build import SECRETS_DIR
from portabind.errors import UserError
from portabind.tooling.deployment import Deployer, Probe, Resource, Step

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.tooling.deployment import DeployOptions

#: What `kubectl get` prints for a resource that does not exist.
_NOT_FOUND = r"NotFound|not found"


def _missing_secrets(out: Path) -> list[str]:
    """The env files the kustomization's secret generator reads that the user has not filled."""
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text(encoding="utf-8"))
    files = [f for g in kustomization.get("secretGenerator") or [] for f in g.get("envs", [])]
    return [f for f in files if not (out / f).is_file()]


def plan(out: Path, options: DeployOptions) -> list[Step]:
    missing = _missing_secrets(out)
    if missing:
        raise UserError(
            f"{out} lacks {', '.join(missing)}, the values of the Secrets the components read",
            hint=f"copy each {SECRETS_DIR}/<secret>.env.example to <secret>.env and fill it "
            "(KEY=value lines; .gitignore keeps them out of git)",
        )
    apply = ("kubectl", "apply", "-k", str(out))
    return [
        Step(
            f"apply the Kubernetes resources of {options.name}",
            apply,
            creates=(
                Resource(
                    "Kubernetes resources of",
                    str(out),
                    delete=("kubectl", "delete", "-k", str(out)),
                ),
            ),
            probe=Probe(("kubectl", "get", "-k", str(out)), _NOT_FOUND),
            update=apply,
        )
    ]


DEPLOYER = Deployer(
    tools={
        "kubectl": "install kubectl (Debian: `apt-get install kubernetes-client`) and point it at "
        "a cluster with Dapr and KEDA installed (`dapr init -k`, KEDA's Helm chart)"
    },
    plan=plan,
)
