"""Write tests/bindings/dapr_keys.yaml: every metadata key Dapr defines for the bindings
portabind implements or plans, read from a dapr/components-contrib git checkout.

    python scripts/dapr_keys.py PATH/TO/components-contrib [COMMIT] > tests/bindings/dapr_keys.yaml

A binding's keys are those its `metadata.yaml` declares (its metadata, its authentication
profiles and the built-in profiles it names), plus the keys its Go source decodes that the
file leaves out (`mapstructure` tags and aliases, `Properties["…"]` reads), plus the keys
`READ_ELSEWHERE` lists, which shared Go code reads. `bindings.twitter` was removed from
components-contrib; its keys come from the last commit that had it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import yaml

#: Type → folder in components-contrib.
BINDINGS = {
    "bindings.aws.dynamodb": "bindings/aws/dynamodb",
    "bindings.aws.kinesis": "bindings/aws/kinesis",
    "bindings.aws.s3": "bindings/aws/s3",
    "bindings.aws.sns": "bindings/aws/sns",
    "bindings.aws.sqs": "bindings/aws/sqs",
    "bindings.azure.blobstorage": "bindings/azure/blobstorage",
    "bindings.azure.cosmosdb": "bindings/azure/cosmosdb",
    "bindings.azure.eventgrid": "bindings/azure/eventgrid",
    "bindings.azure.eventhubs": "bindings/azure/eventhubs",
    "bindings.azure.servicebusqueues": "bindings/azure/servicebusqueues",
    "bindings.azure.signalr": "bindings/azure/signalr",
    "bindings.azure.storagequeues": "bindings/azure/storagequeues",
    "bindings.cron": "bindings/cron",
    "bindings.gcp.bucket": "bindings/gcp/bucket",
    "bindings.gcp.pubsub": "bindings/gcp/pubsub",
    "bindings.http": "bindings/http",
    "bindings.influx": "bindings/influx",
    "bindings.kafka": "bindings/kafka",
    "bindings.kubernetes": "bindings/kubernetes",
    "bindings.mqtt3": "bindings/mqtt3",
    "bindings.rabbitmq": "bindings/rabbitmq",
    "bindings.redis": "bindings/redis",
    "bindings.twilio.sendgrid": "bindings/twilio/sendgrid",
    "bindings.twilio.sms": "bindings/twilio/sms",
    "bindings.twitter": "bindings/twitter",
}
#: The last commit with bindings/twitter (removed in 2a5abb9a).
TWITTER_COMMIT = "e4c55cbf4b05da33f74eccb1b018dd3992574f2f"
_KAFKA = "common/component/kafka/kafka.go"
#: Keys read by Go code shared between components, which the binding's folder does not show.
READ_ELSEWHERE: dict[str, dict[str, dict[str, Any]]] = {
    "bindings.kafka": {
        "authRequired": {"deprecated": True, "source": "common/component/kafka/metadata.go"},
        # dapr/kit `retry.DecodeConfigWithPrefix(…, "backOff")`: its Config's keys, prefixed.
        **{
            f"backOff{key}": {"source": _KAFKA}
            for key in (
                "Policy",
                "Duration",
                "InitialInterval",
                "RandomizationFactor",
                "Multiplier",
                "MaxInterval",
                "MaxElapsedTime",
                "MaxRetries",
            )
        },
    },
    "bindings.azure.servicebusqueues": {
        "publishInitialRetryInternalInMs": {
            "deprecated": True,
            "source": "common/component/azure/servicebus/metadata.go",
        },
    },
    "bindings.azure.blobstorage": {
        "getBlobRetryCount": {
            "deprecated": True,
            "source": "common/component/azure/blobstorage/metadata.go",
        },
    },
    "bindings.mqtt3": {"qos": {"deprecated": True, "source": "bindings/mqtt3/metadata.go"}},
}
_TAG = re.compile(r'mapstructure:"([^",]+)"(?:\s+mapstructurealiases:"([^"]+)")?')
_PROPERTY = re.compile(r'Properties\["([A-Za-z0-9_]+)"\]')


def _git(checkout: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", checkout, *args], capture_output=True, text=True, check=True
    ).stdout


def _declared(checkout: str, commit: str, folder: str) -> dict[str, dict[str, Any]]:
    """The keys metadata.yaml declares, with whether each is sensitive or deprecated."""
    document = yaml.safe_load(_git(checkout, "show", f"{commit}:{folder}/metadata.yaml"))
    builtin = yaml.safe_load(
        _git(checkout, "show", f"{commit}:.build-tools/builtin-authentication-profiles.yaml")
    )
    items: list[dict[str, Any]] = list(document.get("metadata") or [])
    for profile in document.get("authenticationProfiles") or []:
        items += profile.get("metadata") or []
    for reference in document.get("builtinAuthenticationProfiles") or []:
        items += reference.get("metadata") or []
        for profile in builtin[reference["name"]]:
            items += profile.get("metadata") or []
    keys: dict[str, dict[str, Any]] = {}
    for item in items:
        flags = keys.setdefault(item["name"], {})
        for flag in ("sensitive", "deprecated"):
            if item.get(flag):
                flags[flag] = True
    return keys


def _decoded(checkout: str, commit: str, folder: str) -> dict[str, dict[str, Any]]:
    """The keys the folder's Go source decodes, each with the file that reads it."""
    keys: dict[str, dict[str, Any]] = {}
    files = _git(checkout, "ls-tree", "--name-only", commit, f"{folder}/").split()
    for path in files:
        if not path.endswith(".go") or path.endswith("_test.go"):
            continue
        source = _git(checkout, "show", f"{commit}:{path}")
        for match in _TAG.finditer(source):
            for key in [match.group(1), *(match.group(2) or "").split(",")]:
                if key and key != "-":
                    keys.setdefault(key, {"source": path})
        for match in _PROPERTY.finditer(source):
            keys.setdefault(match.group(1), {"source": path})
    return keys


def binding_keys(checkout: str, commit: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for binding, folder in BINDINGS.items():
        entry: dict[str, Any] = {}
        if binding == "bindings.twitter":
            entry["commit"] = TWITTER_COMMIT
            entry["source"] = f"{folder}/twitter.go"
            keys = _decoded(checkout, TWITTER_COMMIT, folder)
        else:
            entry["source"] = f"{folder}/metadata.yaml"
            keys = _declared(checkout, commit, folder)
            lowered = {key.lower() for key in keys}
            for key, flags in _decoded(checkout, commit, folder).items():
                if key.lower() not in lowered:
                    keys[key] = flags
        for key, flags in READ_ELSEWHERE.get(binding, {}).items():
            keys[key] = {**keys.get(key, {}), **flags}
        entry["keys"] = {
            key: {flag: v for flag, v in keys[key].items() if v != entry["source"]}
            for key in sorted(keys, key=str.lower)
        }
        found[binding] = entry
    return found


def main() -> int:
    checkout = sys.argv[1]
    commit = _git(checkout, "rev-parse", sys.argv[2] if len(sys.argv) > 2 else "HEAD").strip()
    document = {
        "repository": "dapr/components-contrib",
        "commit": commit,
        "bindings": binding_keys(checkout, commit),
    }
    print(
        "# Every metadata key Dapr defines for the bindings portabind implements or plans:\n"
        "# written by scripts/dapr_keys.py from dapr/components-contrib at `commit` (twitter: at\n"
        "# its own `commit`); regenerate, do not edit. `source` is where a key comes from when\n"
        "# it is not the binding's metadata.yaml. tests/bindings/test_dapr_keys.py holds each\n"
        "# binding's metadata model against it."
    )
    print(yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
