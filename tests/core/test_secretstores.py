"""Secret stores as components: AWS Secrets Manager through boto3 against moto, the stores
only a platform reads (validate warns, run refuses), inline secrets, and the references each
build compiles to."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
import pytest
import yaml

from portabind.errors import ValidationFailed
from portabind.secrets import SecretResolver
from portabind.tooling.cli import main
from portabind.tooling.project import check_project, load_components, load_project

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator


def component(name: str, type_: str, store: str | None = None, **values: object) -> dict:  # type: ignore[type-arg]
    metadata = [
        {"name": k, "secretKeyRef": v} if isinstance(v, dict) else {"name": k, "value": v}
        for k, v in values.items()
    ]
    document: dict = {  # type: ignore[type-arg]
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": type_, "version": "v1", "metadata": metadata},
    }
    if store:
        document["auth"] = {"secretStore": store}
    return document


def write(directory: Path, *documents: dict) -> Path:  # type: ignore[type-arg]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "components.yaml").write_text(yaml.safe_dump_all(documents))
    return directory


def test_aws_secrets_manager_resolves_through_boto3(
    tmp_path: Path, moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    client = boto3.client(
        "secretsmanager",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    plain, keyed = unique_name("plain"), unique_name("keyed")
    client.create_secret(Name=plain, SecretString="s3cr3t")
    client.create_secret(Name=keyed, SecretString=json.dumps({"user": "u", "password": "p"}))
    store = dict(
        region="us-east-1", endpoint=moto_server.endpoint, accessKey="test", secretKey="test"
    )
    components = load_components(
        write(
            tmp_path,
            component("sm", "secretstores.aws.secretmanager", **store),
            component(
                "smkeys",
                "secretstores.aws.secretmanager",
                multipleKeyValuesPerSecret="true",
                **store,
            ),
            component("a", "bindings.redis", "sm", redisHost="h:1", redisPassword={"name": plain}),
            component(
                "b",
                "bindings.redis",
                "smkeys",
                redisHost="h:1",
                redisPassword={"name": keyed, "key": "password"},
            ),
        )
    )
    resolver = SecretResolver(components, environ={})
    assert resolver.values(components.get("a"))["redisPassword"] == "s3cr3t"
    assert resolver.values(components.get("b"))["redisPassword"] == "p"


def platform_only_project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("from portabind import App\napp = App()\n")
    write(
        tmp_path / "components",
        component("kube", "secretstores.kubernetes"),
        component(
            "a",
            "bindings.redis",
            "kube",
            redisHost="h:1",
            redisPassword={"name": "redis", "key": "pw"},
        ),
        component("b", "bindings.redis", "elsewhere", redisHost="h:1", redisPassword={"name": "x"}),
        component("c", "bindings.redis", redisHost="h:1", redisPassword="hunter2-inline"),
    )
    return tmp_path


def test_validate_says_which_references_resolve_only_on_the_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = platform_only_project(tmp_path)
    assert main(["validate", str(directory)]) == 0
    err = capsys.readouterr().err
    assert "component 'a', field 'redisPassword'" in err and "resolves only on Kubernetes" in err
    assert "component 'b', field 'redisPassword'" in err and "'elsewhere'" in err
    assert "component 'c', field 'redisPassword': a secret is written inline" in err
    assert "hunter2" not in err


def test_run_needs_every_reference(tmp_path: Path) -> None:
    project = load_project(platform_only_project(tmp_path))
    with pytest.raises(ValidationFailed, match="resolves only on Kubernetes"):
        check_project(project, resolve_secrets=True, environ={})


@pytest.mark.parametrize(
    ("target", "store", "reference"),
    [
        (
            "aws",
            component("vault", "secretstores.aws.secretmanager", region="us-east-1"),
            "{{resolve:secretsmanager:queue-secret}}",
        ),
        (
            "azure",
            component("vault", "secretstores.azure.keyvault", vaultName="myvault.vault.azure.net"),
            "@Microsoft.KeyVault(VaultName=myvault;SecretName=queue-secret)",
        ),
        (
            "gcp",
            component("vault", "secretstores.gcp.secretmanager", project_id="demo-project"),
            "PORTABIND_SECRET_ORDERS_PRIVATEKEY=projects/demo-project/secrets/queue-secret:latest",
        ),
    ],
)
def test_builds_compile_a_store_s_references_to_the_platform_s(
    tmp_path: Path,
    target: str,
    store: dict,
    reference: str,  # type: ignore[type-arg]
) -> None:
    inputs = {
        "aws": component(
            "orders",
            "bindings.aws.sqs",
            "vault",
            queueName="q",
            region="us-east-1",
            secretKey={"name": "queue-secret"},
        ),
        "azure": component(
            "orders",
            "bindings.azure.storagequeues",
            "vault",
            accountName="a",
            queueName="q",
            accountKey={"name": "queue-secret"},
        ),
        "gcp": component(
            "orders",
            "bindings.gcp.pubsub",
            "vault",
            projectId="demo-project",
            topic="t",
            privateKey={"name": "queue-secret"},
        ),
    }
    (tmp_path / "app.py").write_text(
        "from portabind import App\napp = App()\n\n@app.binding('orders')\ndef on(event): ...\n"
    )
    write(tmp_path / "components", store, inputs[target])
    out = tmp_path / "out"
    assert main(["build", str(tmp_path), "--target", target, "--out", str(out)]) == 0
    artifacts = {"aws": "template.yaml", "azure": "appsettings.json", "gcp": "deploy.sh"}
    assert reference in (out / artifacts[target]).read_text()
