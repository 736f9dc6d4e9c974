"""Loading Dapr Component files: schema, several documents, annotations, aliases, errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from portabind.errors import ComponentError, UserError, ValidationFailed
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from pathlib import Path


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


TWO_DOCUMENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: events
  annotations:
    portabind.io/batchSize: "5"
    other.io/ignored: "x"
spec:
  type: bindings.mqtt
  version: v1
  metadata:
  - name: url
    value: tcp://127.0.0.1:1883
  - name: retain
    value: true
  - name: qos
    value: 1
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: retries
spec:
  policies:
    retries:
      three: {policy: constant, duration: 1s, maxRetries: 3}
"""


def test_several_documents_annotations_and_aliases(tmp_path: Path) -> None:
    write(tmp_path, "all.yaml", TWO_DOCUMENTS)
    loaded = load_components(tmp_path)
    events = loaded.get("events")
    assert events.type == "bindings.mqtt3"  # Dapr's alias resolved
    assert events.annotations == {"batchSize": "5"}
    assert events.values["retain"].literal == "true"
    assert events.values["qos"].literal == "1"
    assert [r.name for r in loaded.resiliency] == ["retries"]


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "kind: Component\nmetadata: {name: x\n")
    with pytest.raises(ComponentError) as caught:
        load_components(tmp_path)
    assert caught.value.file == bad
    assert "malformed YAML at line" in str(caught.value)


def test_missing_spec_type_names_component_and_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        "c.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: q}\nspec: {version: v1}\n",
    )
    with pytest.raises(UserError) as caught:
        load_components(tmp_path)
    error = caught.value
    assert isinstance(error, ComponentError)
    assert (error.component, error.field) == ("q", "spec.type")


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "kind: Component\nmetadata: {name: a}\nspec: {version: v1}\n")
    write(tmp_path, "b.yaml", "- not a mapping\n")
    with pytest.raises(ValidationFailed) as caught:
        load_components(tmp_path)
    assert len(caught.value.errors) == 2
    assert "a.yaml" in str(caught.value) and "b.yaml" in str(caught.value)


def test_duplicate_component_names_are_refused(tmp_path: Path) -> None:
    doc = (
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: same}\n"
        "spec: {type: bindings.cron, version: v1}\n"
    )
    write(tmp_path, "a.yaml", doc)
    write(tmp_path, "b.yaml", doc)
    with pytest.raises(ComponentError, match="already used in"):
        load_components(tmp_path)


def test_profiles_directory_hint(tmp_path: Path) -> None:
    (tmp_path / "aws").mkdir()
    with pytest.raises(UserError) as caught:
        load_components(tmp_path)
    assert caught.value.hint and "aws" in caught.value.hint


def test_unknown_component_name_suggests_the_closest(tmp_path: Path) -> None:
    write(tmp_path, "all.yaml", TWO_DOCUMENTS)
    with pytest.raises(UserError) as caught:
        load_components(tmp_path).get("event")
    assert caught.value.hint == "did you mean 'events'?"
