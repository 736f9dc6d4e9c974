"""`secretstores.kubernetes`: Kubernetes Secrets, Dapr's built-in store in a cluster (the
store a `secretKeyRef` uses there when `auth.secretStore` is empty). It resolves only in the
cluster: the names (secret, key, `defaultNamespace`) are kept for the Kubernetes target;
`portabind run` cannot read it."""

from __future__ import annotations

from portabind.metadata import BindingMetadata, setting
from portabind.secretstores import SecretStore


class KubernetesStore(BindingMetadata):
    default_namespace: str = setting(
        "defaultNamespace", "", description="namespace of secrets a request names none for"
    )
    kubeconfig_path: str = setting("kubeconfigPath", "", description="outside a cluster")


store = SecretStore(KubernetesStore, None, platform="Kubernetes")
