"""Offline checks of a built SAM template: aws-sam-translator's transform and cfn-lint.

Both are pure functions of the template's text, so each text is transformed and linted once
a session, and cfn-lint's rules are loaded once: a lint over every region costs seconds."""

from __future__ import annotations

import copy
import functools
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


@pytest.fixture(scope="session")
def transformed() -> Callable[[Path], dict[str, Any]]:
    """The CloudFormation SAM makes of OUT/template.yaml, as `sam package && sam deploy`
    would (code first moved to an S3 URI). Shared by the tests: read it, never change it."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    @functools.cache
    def transform_text(text: str) -> dict[str, Any]:
        packaged = copy.deepcopy(yaml_parse(text))
        for resource in packaged["Resources"].values():
            if resource["Type"] == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://bucket/key"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
            result: dict[str, Any] = transform(packaged, {}, NoNetworkPolicyLoader())
        return result

    return lambda out: transform_text((out / "template.yaml").read_text())


@pytest.fixture(scope="session")
def lint_errors() -> Callable[[Path], list[str]]:
    """cfn-lint's errors (not warnings) on OUT/template.yaml, as `cfnlint.api.lint_all` finds
    them (every region, experimental rules), with one runner and its rules for the session."""
    from cfnlint.config import ConfigMixIn, ManualArgs
    from cfnlint.decode.decode import decode_str
    from cfnlint.helpers import REGIONS
    from cfnlint.runner import Runner

    # lint_all's own configuration, which it builds, with the rules, at every call.
    runner = Runner(
        ConfigMixIn(**ManualArgs(include_checks=["I"], include_experimental=True, regions=REGIONS))
    )

    @functools.cache
    def lint_text(text: str) -> tuple[str, ...]:
        template, matches = decode_str(text)
        if not matches and template is not None:
            matches = list(runner.validate_template(template))
        return tuple(f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E"))

    return lambda out: list(lint_text((out / "template.yaml").read_text()))
