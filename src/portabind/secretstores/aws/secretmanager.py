"""`secretstores.aws.secretmanager`: AWS Secrets Manager through boto3, as Dapr's:
GetSecret(name) is `{name: SecretString}`, or with `multipleKeyValuesPerSecret` the
SecretString's JSON keys. Credentials: the component's keys, else boto3's default chain.

On AWS the build compiles a reference into a CloudFormation dynamic reference
(`{{resolve:secretsmanager:...}}`, adapters/aws/build.py).
"""

from __future__ import annotations

import json
from typing import Any

from portabind.errors import SecretError
from portabind.metadata import BindingMetadata, Secret, Truthy, setting
from portabind.secretstores import SecretStore, StoreContext


class SecretsManager(BindingMetadata):
    region: str = setting("region", "", description="AWS region")
    endpoint: str = setting("endpoint", "", description="the Secrets Manager endpoint")
    access_key: Secret | None = setting("accessKey", None, secret=True)
    secret_key: Secret | None = setting("secretKey", None, secret=True)
    session_token: Secret | None = setting("sessionToken", None, secret=True)
    multiple_key_values_per_secret: Truthy = setting(
        "multipleKeyValuesPerSecret", False, description="a secret's JSON keys are its keys"
    )


def read(settings: SecretsManager, context: StoreContext, name: str) -> dict[str, str]:
    import boto3  # the SDK loads only when a secret is read
    from botocore.exceptions import BotoCoreError, ClientError

    client: Any = boto3.client(
        "secretsmanager",
        region_name=settings.region or None,
        endpoint_url=settings.endpoint or None,
        aws_access_key_id=settings.secret("access_key") or None,
        aws_secret_access_key=settings.secret("secret_key") or None,
        aws_session_token=settings.secret("session_token") or None,
    )
    try:
        text = client.get_secret_value(SecretId=name).get("SecretString")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return {}
        raise _failed(context, error) from None
    except BotoCoreError as error:
        raise _failed(context, error) from None
    if text is None:
        return {}
    if settings.multiple_key_values_per_secret:
        try:
            data = json.loads(text)
        except ValueError:
            return {name: text}
        if isinstance(data, dict):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return {name: text}


def _failed(context: StoreContext, error: Exception) -> SecretError:
    component = context.component
    return SecretError(
        f"Secrets Manager failed: {type(error).__name__}: {error}",
        file=component.source,
        component=component.name,
    )


store = SecretStore(
    SecretsManager,
    read,
    hint=lambda settings, name: f"create the secret {name!r} in Secrets Manager",
)
