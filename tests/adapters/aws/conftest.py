"""Offline checks of a built SAM template: aws-sam-translator's transform and cfn-lint."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class NoNetworkPolicyLoader:
    """samtranslator's managed-policy loader, offline: the template names no managed policy
    by name, so nothing needs looking up."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture
def transformed(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], dict[str, Any]]:
    """The CloudFormation SAM makes of OUT/template.yaml, as `sam package && sam deploy`
    would (code first moved to an S3 URI)."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def run(out: Path) -> dict[str, Any]:
        packaged = copy.deepcopy(yaml_parse((out / "template.yaml").read_text()))
        for resource in packaged["Resources"].values():
            if resource["Type"] == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://bucket/key"
        result: dict[str, Any] = transform(packaged, {}, NoNetworkPolicyLoader())
        return result

    return run


@pytest.fixture
def lint_errors() -> Callable[[Path], list[str]]:
    """cfn-lint's errors (not warnings) on OUT/template.yaml."""
    from cfnlint.api import lint_all

    def run(out: Path) -> list[str]:
        matches = lint_all((out / "template.yaml").read_text())
        return [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]

    return run
