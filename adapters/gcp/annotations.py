"""The `portabind.io/` annotations the GCP build reads, by binding type.

`COMMON` applies to a component of every type (`secret`, the Secret Manager ids its
references use); `BY_TYPE` maps a Dapr binding type to the models that apply to a component
of that type on Cloud Functions. The HTTP trigger's annotations are the binding's own
(`HttpAnnotations`).
"""

from __future__ import annotations

from typing import Annotated

from portabind.annotations import Annotations, CommaList, text_matching
from portabind.bindings.gcp.bucket import BucketTrigger
from portabind.bindings.http import HttpAnnotations
from portabind.metadata import setting

#: The region a function deploys to when `region` is not given.
DEFAULT_REGION = "us-central1"


class SecretIds(Annotations):
    """`secret`: the Secret Manager secret id of a field's reference, as
    `field=secret-id,...`, where the default id (from the `secretKeyRef`) does not fit."""

    pairs: CommaList[Annotated[str, text_matching(r"[^=\s]+=[^=\s]+", "field=secret-id")]] = (
        setting("secret", (), description="field=secret-id pairs, comma-separated")
    )

    @property
    def secret_ids(self) -> dict[str, str]:
        """Secret id by field name."""
        return dict(pair.split("=", 1) for pair in self.pairs)


class Region(Annotations):
    """`region`: where the function deploys."""

    region: Annotated[
        str, text_matching(r"[a-z]+-[a-z]+[0-9]+", "a Cloud Functions region such as us-central1")
    ] = setting("region", DEFAULT_REGION, description="the function's region")


class Project(Annotations):
    """`project`: the project of a function whose trigger does not name one (HTTP, cron);
    unset, gcloud's configured project."""

    project: (
        Annotated[
            str,
            text_matching(
                r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
                "a project id (6 to 30 lowercase letters, digits and dashes)",
            ),
        ]
        | None
    ) = setting("project", None, description="the function's project")


class SchedulerJob(Annotations):
    """`serviceAccount`: the identity the Cloud Scheduler job calls the function as; unset,
    the project's default compute account."""

    service_account: (
        Annotated[str, text_matching(r"[^@\s]+@[^@\s]+\.[a-z]+", "a service account email")] | None
    ) = setting("serviceAccount", None, description="the scheduler job's service account")


COMMON: tuple[type[Annotations], ...] = (SecretIds,)
BY_TYPE: dict[str, tuple[type[Annotations], ...]] = {
    "bindings.gcp.pubsub": (Region,),
    "bindings.gcp.bucket": (BucketTrigger, Region),
    "bindings.cron": (Region, Project, SchedulerJob),
    "bindings.http": (HttpAnnotations, Region, Project),
}
