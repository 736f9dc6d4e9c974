"""A components directory with one secret store and Redis components whose password is a
reference into it, for the secret store tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from portabind.components import ComponentSet


def store_and_references(
    directory: Path,
    store: str,
    store_type: str,
    metadata: Mapping[str, str],
    *refs: tuple[str, str],
) -> ComponentSet:
    """Store `store` of `store_type` with `metadata`, and for each (component, secret) in
    `refs` a Redis component whose `redisPassword` is that secret of the store; loaded."""
    documents: list[dict[str, object]] = [
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": store},
            "spec": {
                "type": store_type,
                "version": "v1",
                "metadata": [{"name": k, "value": v} for k, v in metadata.items()],
            },
        }
    ]
    documents += [
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": component},
            "spec": {
                "type": "bindings.redis",
                "version": "v1",
                "metadata": [
                    {"name": "redisHost", "value": "h:1"},
                    {"name": "redisPassword", "secretKeyRef": {"name": secret}},
                ],
            },
            "auth": {"secretStore": store},
        }
        for component, secret in refs
    ]
    (directory / "components.yaml").write_text(yaml.safe_dump_all(documents))
    return load_components(directory)
