"""Every bad component, Resiliency or secrets file is one short message and exit 2: the
file, the component and the field, long values shortened, never a secret value (issue 12).
Each case here once ended in a traceback, a huge message or memory running out."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from portabind.errors import SHOWN_PROBLEMS
from portabind.tooling import bounded_yaml
from tests.helpers import portabind
from tests.tooling.bad_input_helpers import (
    resiliency,
    s3_component,
    write_project,
)

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

#: A message that names file, component and field, and a hint, fits in this.
SHORT_MESSAGE = 1_000


def validate(
    tmp_path: Path, files: dict[str, str | bytes], app: str | None = None
) -> subprocess.CompletedProcess[str]:
    project = write_project(tmp_path / "app", files, **({"app": app} if app else {}))
    return portabind("validate", str(project))


def build(tmp_path: Path, files: dict[str, str | bytes]) -> subprocess.CompletedProcess[str]:
    project = write_project(tmp_path / "app", files)
    return portabind("build", str(project), "--target", "aws", "--out", str(tmp_path / "out"))


def assert_one_message(outcome: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert outcome.returncode == 2, outcome.stderr
    assert outcome.stderr.startswith("error: "), outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert len(outcome.stderr) < SHORT_MESSAGE, outcome.stderr[:SHORT_MESSAGE]
    for part in parts:
        assert part in outcome.stderr, outcome.stderr


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    outcome = validate(tmp_path, {"s3.yaml": b"\xff\xfe" + s3_component().encode()})
    assert_one_message(outcome, "s3.yaml", "not UTF-8", "0xff")


@pytest.mark.parametrize("levels", [bounded_yaml.MAX_DEPTH + 1, 500, 100_000])
def test_nesting_deeper_than_the_limit(tmp_path: Path, levels: int) -> None:
    value = "[" * levels + "]" * levels
    text = s3_component() + f"  - name: deep\n    value: {value}\n"
    assert_one_message(validate(tmp_path, {"s3.yaml": text}), "s3.yaml", "nest")


def test_an_integer_longer_than_python_converts(tmp_path: Path) -> None:
    text = s3_component() + "  - name: big\n    value: " + "9" * 5_000 + "\n"
    assert_one_message(validate(tmp_path, {"s3.yaml": text}), "s3.yaml", "5,000 digits")


@pytest.mark.parametrize("type_string", ["bindings.aws", "bindings._attempts", "bindings.aws._x"])
def test_a_type_naming_a_package_or_a_helper_module(tmp_path: Path, type_string: str) -> None:
    """Used by the app, so the type is looked up (unused, it is left out with a warning)."""
    app = (
        "from portabind import App\n\napp = App()\n\n\n"
        '@app.binding("receipts")\ndef handle(data: bytes) -> None:\n    pass\n'
    )
    outcome = validate(tmp_path, {"s3.yaml": s3_component(type_string=type_string)}, app)
    assert_one_message(outcome, "s3.yaml", "component 'receipts'", "spec.type", "unknown")


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ("  policies: [1, 2]\n", "spec.policies", "expected a mapping, found a list"),
        ("  policies:\n    retries: [a]\n", "spec.policies.retries", "expected a mapping"),
        ("  targets: ok\n", "spec.targets", "expected a mapping"),
        (
            "  targets:\n    components:\n      receipts: [outbound]\n",
            "spec.targets.components.receipts",
            "expected a mapping",
        ),
        (
            "  targets:\n    components:\n      receipts:\n        outbound: retry\n",
            "spec.targets.components.receipts.outbound",
            "expected a mapping",
        ),
        (
            "  policies:\n    retries:\n      r:\n        maxRetries: abc\n",
            "spec.policies.retries.r",
            "maxRetries: expected a whole number, found 'abc'",
        ),
        (
            "  policies:\n    retries:\n      r:\n        maxRetries: .inf\n",
            "spec.policies.retries.r",
            "maxRetries: expected a whole number",
        ),
        (
            "  policies:\n    retries:\n      r:\n        maxRetries: .nan\n",
            "spec.policies.retries.r",
            "maxRetries: expected a whole number",
        ),
        (
            "  policies:\n    retries:\n      r:\n        maxRetries: 1e30\n",
            "spec.policies.retries.r",
            "maxRetries: expected a whole number",
        ),
        (
            "  policies:\n    retries:\n      r:\n        multiplier: .inf\n",
            "spec.policies.retries.r",
            "multiplier: expected a finite number",
        ),
        (
            "  policies:\n    circuitBreakers:\n      c:\n        maxRequests: .nan\n",
            "spec.policies.circuitBreakers.c",
            "maxRequests: expected a whole number",
        ),
        (
            "  policies:\n    timeouts:\n      t: 99999999999999h\n",
            "spec.policies.timeouts.t",
            "longer than a Go duration holds",
        ),
        (
            "  policies:\n    timeouts:\n      t: 99999999999999999999\n",
            "spec.policies.timeouts.t",
            "longer than a Go duration holds",
        ),
    ],
)
def test_a_resiliency_document_of_the_wrong_shape(
    tmp_path: Path, spec: str, field: str, says: str
) -> None:
    """validate and build refuse it alike: build never meets what validate let through."""
    files: dict[str, str | bytes] = {"s3.yaml": s3_component(), "res.yaml": resiliency(spec)}
    for outcome in (validate(tmp_path / "v", files), build(tmp_path / "b", files)):
        assert_one_message(outcome, "res.yaml", "component 'policies'", f"field '{field}'", says)


def test_an_alias_that_contains_itself(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "s3.yaml": s3_component(),
        "res.yaml": resiliency("  policies: &loop\n    retries: *loop\n"),
    }
    assert_one_message(validate(tmp_path, files), "res.yaml", "refers to the node that contains it")


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Nine levels of nine aliases: 469 bytes that once made build write 219 MB."""
    lines = ["  l0: &l0 [x, x, x, x, x, x, x, x, x]\n"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
    files: dict[str, str | bytes] = {
        "s3.yaml": s3_component(),
        "res.yaml": resiliency("".join(lines)),
    }
    for outcome in (validate(tmp_path / "v", files), build(tmp_path / "b", files)):
        assert_one_message(outcome, "res.yaml", "once its aliases are expanded")
    assert not (tmp_path / "b" / "out").exists()


def test_aliases_within_the_limit_load(tmp_path: Path) -> None:
    """An anchor reused a few times, as people write shared settings, is fine."""
    text = s3_component().replace("value: us-east-1", "value: &region us-east-1")
    text += "  - name: endpoint\n    value: *region\n"
    assert validate(tmp_path, {"s3.yaml": text}).returncode == 0


def test_a_file_larger_than_the_limit(tmp_path: Path) -> None:
    padding = "# " + "x" * 78 + "\n"
    text = s3_component() + padding * (bounded_yaml.MAX_FILE_BYTES // len(padding) + 1)
    assert_one_message(validate(tmp_path, {"s3.yaml": text}), "s3.yaml", "256 KB")


def test_a_component_file_that_is_not_a_regular_file(tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", {})
    os.mkfifo(project / "components" / "fifo.yaml")
    (project / "components" / "s3.yaml").write_text(s3_component())
    # A FIFO is not a file the loader lists (is_file), so nothing waits for a writer.
    assert portabind("validate", str(project)).returncode == 0


def test_a_long_component_name_is_shortened(tmp_path: Path) -> None:
    name = "n" * 200_000
    outcome = validate(tmp_path, {"s3.yaml": s3_component(name=name)})
    assert_one_message(outcome, "s3.yaml", "metadata.name", "253 characters", "characters)…")


def test_many_copies_of_one_document_give_a_bounded_message(tmp_path: Path) -> None:
    copies = 1_000
    outcome = validate(tmp_path, {"s3.yaml": "---\n".join([s3_component()] * copies)})
    assert outcome.returncode == 2
    assert f"{copies - 1} problems" in outcome.stderr
    assert f"and {copies - 1 - SHOWN_PROBLEMS:,} more" in outcome.stderr
    assert outcome.stderr.count("component name is already used") == SHOWN_PROBLEMS


def secret_store(secrets_file: str, *, multi_valued: bool = False) -> str:
    extra = "  - name: multiValued\n    value: 'true'\n" if multi_valued else ""
    return (
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: local-secrets\n"
        "spec:\n  type: secretstores.local.file\n  metadata:\n"
        f"  - name: secretsFile\n    value: {secrets_file}\n" + extra
    )


#: An http output whose responseTimeout comes from the secret store (the secret `timeout`).
HTTP_WITH_SECRET = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: webhook
spec:
  type: bindings.http
  metadata:
  - name: url
    value: http://127.0.0.1:9/
  - name: responseTimeout
    secretKeyRef:
      name: timeout
      key: timeout
auth:
  secretStore: local-secrets
"""


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_secrets_file_that_never_ends(tmp_path: Path, device: str) -> None:
    files: dict[str, str | bytes] = {
        "store.yaml": secret_store(device),
        "web.yaml": HTTP_WITH_SECRET,
    }
    assert_one_message(
        validate(tmp_path, files),
        "store.yaml",
        "component 'local-secrets'",
        "field 'secretsFile'",
        "not a regular file",
    )


@pytest.mark.parametrize(
    ("content", "kind"),
    [("[1, 2]", "array"), ("null", "null"), ('"text"', "string"), ("42", "number")],
)
@pytest.mark.parametrize("multi_valued", [True, False])
def test_a_secrets_file_that_is_not_an_object(
    tmp_path: Path, content: str, kind: str, multi_valued: bool
) -> None:
    files: dict[str, str | bytes] = {
        "store.yaml": secret_store("secrets.json", multi_valued=multi_valued),
        "web.yaml": HTTP_WITH_SECRET,
        "secrets.json": content,
    }
    outcome = validate(tmp_path, files)
    assert_one_message(
        outcome, "store.yaml", "field 'secretsFile'", f"a JSON {kind}, not an object"
    )


def test_a_secret_that_fails_validation_is_never_shown(tmp_path: Path) -> None:
    secret = "hunter2-do-not-print"
    files: dict[str, str | bytes] = {
        "store.yaml": secret_store("secrets.json"),
        "web.yaml": HTTP_WITH_SECRET,
        "secrets.json": json.dumps({"timeout": secret}),
    }
    outcome = validate(tmp_path, files)
    assert_one_message(outcome, "web.yaml", "component 'webhook'", "responseTimeout", "not shown")
    assert secret not in outcome.stderr


def test_a_literal_that_fails_validation_is_shown(tmp_path: Path) -> None:
    """Only referenced values are withheld: a mistyped literal is quoted, to be found."""
    text = HTTP_WITH_SECRET.split("auth:")[0].replace(
        "    secretKeyRef:\n      name: timeout\n      key: timeout\n", "    value: soon\n"
    )
    assert_one_message(validate(tmp_path, {"web.yaml": text}), "'soon' is not a duration")


def test_init_onto_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    outcome = portabind("init", str(tmp_path / "notes.txt"))
    assert_one_message(outcome, "notes.txt exists and is not a directory")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_init_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    outcome = portabind("init", str(tmp_path / "notes.txt" / "app"))
    assert_one_message(outcome, "cannot create", "Not a directory")


def test_init_onto_a_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "app").symlink_to(tmp_path / "missing")
    outcome = portabind("init", str(tmp_path / "app"))
    assert_one_message(outcome, "symbolic link to a path that does not exist")
    assert not (tmp_path / "missing").exists()
