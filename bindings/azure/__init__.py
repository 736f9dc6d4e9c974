"""Azure bindings (`bindings.azure.*`).

Azurite's fixed development account, which `portabind run --emulate` points the storage
bindings at. The key is public (published by Microsoft for the storage emulator), not a
secret.
"""

ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

#: The Cosmos DB emulator's well-known key, which the local Cosmos DB server accepts (it
#: accepts any key); public, published by Microsoft for the emulator, not a secret.
COSMOS_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
)

#: The shared access key of a development connection string for Service Bus or Event Hubs
#: (the values Microsoft's emulators document); portabind's AMQP broker accepts any token.
EMULATOR_KEY_NAME = "RootManageSharedAccessKey"
EMULATOR_KEY = "SAS_KEY_VALUE"


def development_connection_string(address: str, entity: str | None = None) -> str:
    """The connection string the Service Bus and Event Hubs SDKs take for a development
    namespace at `address` (host:port: plain AMQP, no TLS), for one entity when given."""
    text = (
        f"Endpoint=sb://{address};SharedAccessKeyName={EMULATOR_KEY_NAME};"
        f"SharedAccessKey={EMULATOR_KEY};UseDevelopmentEmulator=true;"
    )
    return text + (f"EntityPath={entity};" if entity else "")


# Below the constants, which `_storage` imports from this package. Other bindings that
# authenticate with Entra ID (redis `useEntraID`) declare these fields too.
from portabind.bindings.azure._storage import EntraMetadata  # noqa: E402

__all__ = [
    "ACCOUNT_KEY",
    "ACCOUNT_NAME",
    "COSMOS_KEY",
    "EMULATOR_KEY",
    "EMULATOR_KEY_NAME",
    "EntraMetadata",
    "development_connection_string",
]
