"""Azure bindings (`bindings.azure.*`).

Azurite's fixed development account, which `portabind run --emulate` points the storage
bindings at. The key is public (published by Microsoft for the storage emulator), not a
secret.
"""

ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
