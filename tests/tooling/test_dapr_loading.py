"""Component directories a Dapr sidecar loads, loaded by `portabind validate`, `build` and `run`
with the same meaning: the files are written like those of Dapr's docs, quickstarts and
components-contrib's certification tests (`tests/certification/bindings/*/components`).

Warnings (a key Dapr ignores, a key given twice, a deprecated key, a key without effect
here) are printed once, in the errors' format, and never stop a command; `--strict` makes
them exit 2. Documents portabind does not read are skipped with one line each.
"""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from portabind.adapters.local.emulators import free_port
from portabind.components import parse_metadata, placeholder_values
from portabind.registry import binding_for
from portabind.tooling.cli import main
from portabind.tooling.project import load_project
from tests import helpers

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping
    from pathlib import Path

APP = "from portabind import App, BindingEvent, Output\n\napp = App()\n"
ON_ORDERS = '\n@app.binding("orders")\ndef on_order(event: BindingEvent) -> None:\n    pass\n'


def component(name: str, type_: str, metadata: str = "", tail: str = "") -> str:
    """A Component document as Dapr's docs write one; `metadata` is the YAML under
    `spec.metadata` (empty: the key with no value, as certification tests write it)."""
    return (
        f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
        f"spec:\n  type: {type_}\n  version: v1\n  metadata:\n"
        + textwrap.indent(textwrap.dedent(metadata).strip("\n"), "  ")
        + ("\n" if metadata else "")
        + textwrap.dedent(tail)
    )


SQS = component(
    "orders",
    "bindings.aws.sqs",
    """\
    - name: queueName
      value: orders
    - name: region
      value: us-east-1
    """,
)


def project(root: Path, files: Mapping[str, str], app: str = APP + ON_ORDERS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(app)
    (root / "components").mkdir()
    for name, text in files.items():
        (root / "components" / name).write_text(text)
    return root


def portabind(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- directories as Dapr's repositories have them ------------------------------------------


def test_a_certification_test_directory_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # components-contrib tests/certification/bindings/aws/s3/components/basic: a secret store
    # whose `metadata:` is null, every value a secretKeyRef; the Configuration beside it.
    root = project(
        tmp_path,
        {
            "localsecrets.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n"
            "  name: envvar-secret-store\n  namespace: default\nspec:\n"
            "  type: secretstores.local.env\n  version: v1\n  metadata:\n",
            "s3bindings.yaml": component(
                "orders",
                "bindings.aws.s3",
                """\
                - name: bucket
                  secretKeyRef:
                    name: BINDINGS_AWS_S3_BUCKET
                    key: BINDINGS_AWS_S3_BUCKET
                - name: region
                  secretKeyRef:
                    name: AWS_REGION
                    key: AWS_REGION
                - name: forcePathStyle
                  value: "false"
                """,
                "\nauth:\n  secretStore: envvar-secret-store\nscopes:\n",
            ),
            "config.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n"
            "  name: s3config\nspec:\n  features:\n",
        },
        app=APP,
    )
    monkeypatch.setenv("BINDINGS_AWS_S3_BUCKET", "receipts")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    code, out, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert "orders (bindings.aws.s3)" in out
    assert err == (
        f"skipped: {root / 'components' / 'config.yaml'}, component 's3config': kind "
        "'Configuration' (dapr.io/v1alpha1): portabind reads dapr.io/v1alpha1 Component and "
        "Resiliency documents\n"
    )


QUICKSTART = {
    # A quickstart directory: cron feeding a Postgres output, Kubernetes objects and Dapr's
    # other documents beside the components.
    "cron.yaml": component(
        "orders",
        "bindings.cron",
        """\
        - name: schedule
          value: "@every 10s"
        - name: direction
          value: "input"
        """,
    ),
    "bindings-postgres.yaml": component(
        "sqldb",
        "bindings.postgresql",
        """\
        - name: url
          value: "user=postgres password=docker host=localhost port=5432 dbname=orders"
        """,
    ),
    "statestore.yaml": component(
        "statestore",
        "state.redis",
        """\
        - name: redisHost
          value: localhost:6379
        """,
    ),
    "deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: batch\nspec: {}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: batch\nspec: {}\n---\n"
    "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: orders-sub\n"
    "spec:\n  topic: orders\n  routes:\n    default: /orders\n  pubsubname: pubsub\n",
}


def test_a_quickstart_directory_loads_what_portabind_runs_and_skips_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, QUICKSTART)
    code, out, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert out == "ok: 1 handler(s); components: orders (bindings.cron)\n"
    skipped = [line for line in err.splitlines() if line.startswith("skipped: ")]
    assert [line.split(", component ")[1].split(":")[0] for line in skipped] == [
        "'batch'",
        "'batch'",
        "'orders-sub'",
        "'statestore'",
    ]
    assert "a state component: portabind implements bindings and secret stores" in err
    # A binding type portabind lacks may be a misspelt one: a warning, and left out.
    assert (
        "warning: " + str(root / "components" / "bindings-postgres.yaml") + ", component "
        "'sqldb', field 'spec.type': portabind has no binding type 'bindings.postgresql', and "
        "nothing in the app uses it: left out"
    ) in err


def test_strict_fails_on_the_warnings_and_never_on_what_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, QUICKSTART)
    code, _, err = portabind(capsys, "validate", root, "--strict")
    assert code == 2
    assert "error: 1 problem:\n- " in err
    assert "'bindings.postgresql'" in err.split("error: ")[1]
    assert "statestore" not in err.split("error: ")[1]
    assert "hint: --strict makes every warning an error" in err


def test_a_type_the_app_uses_that_portabind_lacks_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = APP + ON_ORDERS + '\n\ndef later() -> None:\n    app.invoke_binding("sqldb", "exec")\n'
    root = project(tmp_path, QUICKSTART, app=app)
    code, _, err = portabind(capsys, "validate", root)
    assert code == 2
    assert "component 'sqldb', field 'spec.type': unknown binding type 'bindings.postgresql'" in err


def test_a_handler_on_a_component_of_another_building_block_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = (
        APP + '\n@app.binding("statestore")\ndef on_state(event: BindingEvent) -> None:\n    pass\n'
    )
    root = project(tmp_path, QUICKSTART, app=app)
    code, _, err = portabind(capsys, "validate", root)
    assert code == 2
    assert "names component 'statestore', a state component (state.redis)" in err


@pytest.mark.parametrize(
    ("written", "nearest"),
    [("binding.aws.sqs", "bindings.aws.sqs"), ("aws.sqs", "bindings.aws.sqs")],
)
def test_a_type_without_a_building_block_is_an_error_naming_the_nearest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str, nearest: str
) -> None:
    root = project(tmp_path, {"q.yaml": SQS.replace("bindings.aws.sqs", written)}, app=APP)
    code, _, err = portabind(capsys, "validate", root)
    assert code == 2
    assert f"component 'orders', field 'spec.type': {written!r} is not a Dapr component type" in err
    assert f"did you mean {nearest!r}?" in err


# -- metadata keys -----------------------------------------------------------------------


def test_a_key_given_twice_warns_and_the_last_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twice = SQS + "  - name: queueName\n    value: orders-v2\n"
    root = project(tmp_path, {"q.yaml": twice})
    code, _, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert err.count("warning: ") == 1
    assert (
        "component 'orders', field 'queueName': metadata field is given 2 times; the last one "
        "is used, as in Dapr"
    ) in err
    loaded = load_project(root).components.get("orders")
    assert loaded.values["queueName"].literal == "orders-v2"


@pytest.mark.parametrize("command", ["validate", "build"])
def test_keys_differing_only_in_case_are_refused_as_dapr_refuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    root = project(tmp_path, {"q.yaml": SQS + "  - name: QUEUENAME\n    value: other\n"})
    extra = ["--target", "aws", "--out", tmp_path / "out"] if command == "build" else []
    code, _, err = portabind(capsys, command, root, *extra)
    assert code == 2
    assert "metadata keys 'queueName' and 'QUEUENAME' differ only in case" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_key_warns_with_the_nearest_valid_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Dapr's own kubernetes sample misspells resyncPeriodInSec; Dapr loads it.
    typo = component(
        "orders",
        "bindings.kubernetes",
        """\
        - name: namespace
          value: default
        - name: resyncPreiodInSec
          value: "5"
        """,
    )
    root = project(tmp_path, {"k8s.yaml": typo})
    code, out, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert out.startswith("ok: ")
    assert (
        "warning: " + str(root / "components" / "k8s.yaml") + ", component 'orders', field "
        "'resyncPreiodInSec': unknown metadata field for bindings.kubernetes; ignored (Dapr "
        "ignores it too)\n  hint: did you mean 'resyncPeriodInSec'?"
    ) in err
    assert portabind(capsys, "validate", root, "--strict")[0] == 2


def test_build_warns_as_validate_and_strict_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, {"q.yaml": SQS + "  - name: queueNmae\n    value: x\n"})
    code, out, err = portabind(capsys, "build", root, "--target", "aws", "--out", tmp_path / "a")
    assert code == 0, err
    assert err.count("warning: ") == 1 and "'queueNmae'" in err
    assert "built aws app" in out
    code, _, err = portabind(
        capsys, "build", root, "--target", "aws", "--out", tmp_path / "b", "--strict"
    )
    assert code == 2 and "'queueNmae'" in err
    assert not (tmp_path / "b").exists()


def test_deploy_strict_stops_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, {"q.yaml": SQS + "  - name: queueNmae\n    value: x\n"})
    code, out, err = portabind(capsys, "deploy", root, "--target", "aws", "--dry-run", "--strict")
    assert code == 2 and "'queueNmae'" in err
    assert out == ""
    assert not (root / ".portabind").exists()


def test_deprecated_keys_are_mapped_as_dapr_maps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blobs = component(
        "receipts",
        "bindings.azure.blobstorage",
        """\
        - name: storageAccount
          value: devstoreaccount1
        - name: container
          value: receipts
        - name: getBlobRetryCount
          value: "7"
        """,
    )
    mqtt = component(
        "orders",
        "bindings.mqtt3",
        """\
        - name: url
          value: tcp://127.0.0.1:1883
        - name: topic
          value: orders
        - name: consumerID
          value: app
        - name: qos
          value: 2
        """,
    )
    root = project(tmp_path, {"blobs.yaml": blobs, "mqtt.yaml": mqtt})
    code, _, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert "field 'getBlobRetryCount': deprecated by Dapr: write retryCount" in err
    assert "field 'qos': deprecated by Dapr: remove it: Dapr ignores it" in err
    receipts = load_project(root).components.get("receipts")
    model = binding_for(receipts).metadata
    parsed = parse_metadata(receipts, model, placeholder_values(receipts))
    assert parsed.get_blob_retry_count == 7  # type: ignore[attr-defined]


def test_a_key_dapr_defines_without_effect_here_is_accepted_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = SQS + "  - name: assumeRoleArn\n    value: arn:aws:iam::123456789012:role/app\n"
    root = project(tmp_path, {"q.yaml": role})
    code, _, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert "field 'assumeRoleArn': has no effect on bindings.aws.sqs: the binding uses" in err


def test_several_keys_for_one_field_resolve_as_dapr_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Dapr reads `ttl` before `ttlInSeconds` (components-contrib metadata.TryGetTTL).
    queue = component(
        "orders",
        "bindings.azure.storagequeues",
        """\
        - name: accountName
          value: devstoreaccount1
        - name: queueName
          value: orders
        - name: ttlInSeconds
          value: "60"
        - name: ttl
          value: 2m
        """,
    )
    root = project(tmp_path, {"q.yaml": queue})
    code, _, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert "'ttl' and 'ttlInSeconds' both set ttlInSeconds: 'ttl' is used" in err
    orders = load_project(root).components.get("orders")
    parsed = parse_metadata(orders, binding_for(orders).metadata, placeholder_values(orders))
    assert parsed.ttl == timedelta(minutes=2)  # type: ignore[attr-defined]


# -- scopes and the app id ---------------------------------------------------------------

SCOPED = {
    "q.yaml": SQS + "scopes:\n- checkout\n",
    "s3.yaml": component(
        "receipts",
        "bindings.aws.s3",
        """\
        - name: bucket
          value: receipts
        - name: region
          value: us-east-1
        """,
        "scopes:\n- billing\n",
    ),
}


def test_a_component_scoped_away_from_the_app_is_not_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path / "checkout", SCOPED)  # the default app id: the directory's name
    code, out, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert out == "ok: 1 handler(s); components: orders (bindings.aws.sqs)\n"
    assert (
        "skipped: " + str(root / "components" / "s3.yaml") + ", component 'receipts': scoped "
        "to billing; this app's id is 'checkout' (--app-id)"
    ) in err
    components = load_project(root, app_id="billing").components.components
    assert list(components) == ["receipts"]


def test_the_app_using_a_component_scoped_away_says_why_it_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path / "checkout", SCOPED)
    code, _, err = portabind(capsys, "validate", root, "--app-id", "billing")
    assert code == 2
    assert "handler " in err and "on_order names component 'orders', which is not in" in err
    assert "hint: it was left out: scoped to checkout; this app's id is 'billing'" in err


def test_a_resiliency_document_scoped_away_from_the_app_is_not_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in Dapr's resiliency docs: policies, targets, and the apps they apply to.
    policy = (
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: myresiliency\n"
        "scopes:\n  - billing\nspec:\n  policies:\n    retries:\n      retryForever:\n"
        "        policy: constant\n        duration: 5s\n        maxRetries: -1\n"
        "  targets:\n    components:\n      orders:\n        outbound:\n"
        "          retry: retryForever\n"
    )
    root = project(tmp_path / "checkout", {**SCOPED, "resiliency.yaml": policy})
    code, _, err = portabind(capsys, "validate", root)
    assert code == 0, err
    assert (
        "component 'myresiliency': a Resiliency document scoped to billing; this app's id is "
        "'checkout' (--app-id)"
    ) in err
    assert load_project(root).components.resiliency == ()
    assert [r.name for r in load_project(root, app_id="billing").components.resiliency] == [
        "myresiliency"
    ]


def test_run_loads_the_components_of_its_app_id(tmp_path: Path) -> None:
    root = project(tmp_path / "checkout", SCOPED)
    result = run(root, "--app-id", "billing")
    assert result.returncode == 2
    assert "hint: it was left out: scoped to checkout; this app's id is 'billing'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_build_carries_only_the_components_in_scope(tmp_path: Path) -> None:
    root = project(tmp_path / "checkout", SCOPED)
    assert main(["build", str(root), "--target", "aws", "--out", str(tmp_path / "out")]) == 0
    snapshot = json.loads(
        (tmp_path / "out" / "components" / "portabind-components.json").read_text()
    )
    assert [c["name"] for c in snapshot["components"]] == ["orders"]


# -- what the app uses -------------------------------------------------------------------

CRON = component("tick", "bindings.cron", '- name: schedule\n  value: "@every 1m"\n')


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (
            APP + ON_ORDERS.replace("event: BindingEvent", "event: BindingEvent, receipt: Output"),
            "Output parameter 'receipt' of handler ",
        ),
        (
            APP
            + ON_ORDERS
            + '\n\ndef later() -> None:\n    app.invoke_binding("receipt", "create")\n',
            "app.py:11 invoke_binding names component 'receipt', which is not in",
        ),
        (
            APP + '\n\nasync def later() -> None:\n    await app.ainvoke_binding(name="recepts", '
            'operation="create")\n',
            "app.py:7 ainvoke_binding names component 'recepts', which is not in",
        ),
    ],
    ids=["output-parameter", "invoke_binding", "ainvoke_binding-keyword"],
)
def test_an_output_the_app_names_must_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], app: str, expected: str
) -> None:
    root = project(
        tmp_path, {"q.yaml": SQS, "s3.yaml": SCOPED["s3.yaml"].replace("billing", "x")}, app
    )
    code, _, err = portabind(capsys, "validate", root, "--app-id", "x")
    assert code == 2
    assert expected in err
    assert "hint: did you mean 'receipts'? components there: orders, receipts" in err


def test_a_handler_on_a_component_created_for_output_only_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output_only = SQS + "  - name: direction\n    value: output\n"
    root = project(tmp_path, {"q.yaml": output_only})
    code, _, err = portabind(capsys, "validate", root)
    assert code == 2
    assert "field 'direction': handler " in err
    assert "uses it as an input binding, but its direction is output" in err


def test_invoking_a_component_created_for_input_only_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    input_only = SQS + "  - name: direction\n    value: input\n"
    app = APP + ON_ORDERS + '\n\ndef later() -> None:\n    app.invoke_binding("orders", "create")\n'
    root = project(tmp_path, {"q.yaml": input_only}, app)
    code, _, err = portabind(capsys, "validate", root)
    assert code == 2
    assert "invoke_binding uses it as an output binding, but its direction is input" in err


def test_invoking_an_input_only_type_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = APP + '\n\ndef later() -> None:\n    app.invoke_binding("tick", "create")\n'
    root = project(tmp_path, {"cron.yaml": CRON}, app)
    code, _, err = portabind(capsys, "validate", root)
    assert code == 2
    assert "invoke_binding invokes 'tick', but bindings.cron is input-only" in err


# -- run ---------------------------------------------------------------------------------


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return helpers.portabind("run", root, "--dapr-port", free_port(), *args)


def test_run_prints_each_warning_once_and_runs(tmp_path: Path) -> None:
    typo = CRON.replace("@every 1m", "@every 1s") + "  - name: schedul\n    value: x\n"
    app = APP + '\n@app.binding("tick")\ndef on_tick(event: BindingEvent) -> None:\n    pass\n'
    root = project(tmp_path, {"cron.yaml": typo}, app)
    # A process: this run serves the APIs, and its gRPC server stays out of the test process.
    result = helpers.portabind_process(
        "run", root, "--dapr-port", free_port(), "--exit-after", "1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("field 'schedul': unknown metadata field") == 1
    assert "✓ on_tick" in result.stdout


def test_run_strict_stops_on_a_warning_before_starting(tmp_path: Path) -> None:
    typo = CRON + "  - name: schedul\n    value: x\n"
    app = APP + '\n@app.binding("tick")\ndef on_tick(event: BindingEvent) -> None:\n    pass\n'
    root = project(tmp_path, {"cron.yaml": typo}, app)
    result = run(root, "--strict", "--exit-after", "1")
    assert result.returncode == 2
    assert "field 'schedul': unknown metadata field" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout
