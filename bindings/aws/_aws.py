"""What every `bindings.aws.*` type shares: the AWS credential fields of Dapr's aws.* bindings,
one boto3 client factory, and the metadata that points a binding at the moto emulator.

boto3 is imported inside `client()`, so loading a component (validate, build, the support
matrix) never needs it installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from portabind.metadata import BindingMetadata, Secret, setting

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: The region emulated resources live in; moto accepts any, one fixed value keeps ARNs stable.
EMULATED_REGION = "us-east-1"


class AwsCredentials(BindingMetadata):
    """The AWS fields of Dapr's shared authentication profile. Without `accessKey` the
    default credential chain is used (on Lambda: the function's role). The role fields
    (`assumeRoleArn`, …) are for bindings that assume a role; the aws.* bindings do not
    (`AwsServiceMetadata`)."""

    region: str = setting("region", aliases=("awsRegion",), description="AWS region")
    endpoint: str | None = setting(
        "endpoint", None, description="custom endpoint (moto, LocalStack, MinIO)"
    )
    access_key: Secret | None = setting("accessKey", None, secret=True)
    secret_key: Secret | None = setting("secretKey", None, secret=True)
    session_token: Secret | None = setting("sessionToken", None, secret=True)
    assume_role_arn: str | None = setting("assumeRoleArn", None)
    session_name: str = setting("sessionName", "DaprDefaultSession")
    trust_anchor_arn: str | None = setting("trustAnchorArn", None)
    trust_profile_arn: str | None = setting("trustProfileArn", None)


class AwsServiceMetadata(AwsCredentials):
    """The base of the `bindings.aws.*` models. Their credentials are the keys or the default
    chain: the role fields of Dapr's profile are accepted, and change nothing."""

    no_effect = {
        # Dapr's aws.* bindings do not pass these to their credential provider either
        # (components-contrib `common/aws/auth/auth.go`).
        "assumeRoleArn": "the binding uses accessKey/secretKey or the default credential "
        "chain (on Lambda, the function's role), as Dapr's aws.* bindings do",
        "sessionName": "it names an assumed role's session, and no role is assumed",
        # IAM Roles Anywhere signs with the certificate Dapr's Sentry gives the sidecar.
        "trustAnchorArn": "IAM Roles Anywhere needs the Dapr sidecar's X.509 certificate, "
        "which portabind has not; use the default credential chain",
        "trustProfileArn": "IAM Roles Anywhere needs the Dapr sidecar's X.509 certificate, "
        "which portabind has not; use the default credential chain",
    }


def client(
    service: str,
    metadata: AwsCredentials,
    *,
    endpoint: str | None = None,
    use_ssl: bool = True,
    verify: bool = True,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """A boto3 client for `service` configured from the component. `endpoint` replaces the
    component's (S3 derives it from `disableSSL`); `config` holds botocore `Config` options."""
    import boto3  # the SDK is loaded only when a client is made
    from botocore.config import Config

    # Typed as a plain callable: the stubs' per-service overloads cannot take a runtime name.
    make: Callable[..., Any] = boto3.client
    return make(
        service,
        region_name=metadata.region or None,
        endpoint_url=(endpoint if endpoint is not None else metadata.endpoint) or None,
        # Empty strings mean "not set", as in Dapr: fall back to the default chain.
        aws_access_key_id=metadata.secret("access_key") or None,
        aws_secret_access_key=metadata.secret("secret_key") or None,
        aws_session_token=metadata.secret("session_token") or None,
        use_ssl=use_ssl,
        verify=verify,
        config=Config(**config) if config else None,
    )


def in_account(client: Any, account: str) -> Any:
    """Make every request of `client` act in moto account `account` (moto's
    `x-moto-account-id` header; AWS ignores it). Resources an ARN names live in the ARN's
    account: under the emulator that is how a component's real ARN is served as is."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign", add_header)
    return client


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore `ClientError` (`NoSuchKey`, …), or ""."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def emulate(endpoints: Mapping[str, str]) -> dict[str, str]:
    """Metadata that points an AWS binding at the moto server in `endpoints`: moto takes any
    key pair, and a session token would only be one more secret to resolve for nothing."""
    return {
        "endpoint": endpoints["moto"],
        "accessKey": "test",
        "secretKey": "test",
        "sessionToken": "",
        "region": EMULATED_REGION,
    }
