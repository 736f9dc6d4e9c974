"""Every metadata key Dapr defines for a binding is accepted by portabind's model of it:
implemented as a field, or declared as changing nothing here (`no_effect`, with the reason),
or deprecated (`deprecated`, with what replaces it).

The keys come from `dapr_keys.yaml` (components-contrib, the commit noted there;
`scripts/dapr_keys.py` regenerates it). A binding type in the list whose module does not
exist yet is skipped until it does: adding `bindings/<vendor>/<name>.py` brings it in.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind import registry

if TYPE_CHECKING:
    from portabind.binding import Binding

DAPR_KEYS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).with_name("dapr_keys.yaml")).read_text(encoding="utf-8")
)["bindings"]


def binding(binding_type: str) -> Binding[Any]:
    if binding_type not in registry.available_types():
        pytest.skip(f"{binding_type} has no module yet")
    found: Binding[Any] = importlib.import_module(registry.module_name(binding_type)).binding
    return found


@pytest.mark.parametrize("binding_type", sorted(DAPR_KEYS))
def test_every_dapr_key_is_implemented_or_given_a_reason(binding_type: str) -> None:
    model = binding(binding_type).metadata
    accepted = {
        *model.dapr_names(),
        *(key.lower() for key in model.no_effect),
        *(key.lower() for key in model.deprecated),
    }
    missing = [key for key in DAPR_KEYS[binding_type]["keys"] if key.lower() not in accepted]
    assert not missing, (
        f"{binding_type}: Dapr keys neither implemented nor given a reason: "
        f"{', '.join(missing)} (declare each as a field, or in no_effect with the reason)"
    )


@pytest.mark.parametrize("binding_type", sorted(DAPR_KEYS))
def test_keys_dapr_deprecates_say_what_replaces_them(binding_type: str) -> None:
    model = binding(binding_type).metadata
    deprecated = {key.lower() for key in model.deprecated}
    undeclared = [
        key
        for key, flags in DAPR_KEYS[binding_type]["keys"].items()
        if flags.get("deprecated") and key.lower() not in deprecated
    ]
    assert not undeclared, f"{binding_type}: deprecated by Dapr, not in `deprecated`: {undeclared}"


@pytest.mark.parametrize("binding_type", sorted(DAPR_KEYS))
def test_keys_dapr_calls_sensitive_are_secret_fields(binding_type: str) -> None:
    """Secret fields stay out of builds and messages, even when they change nothing here."""
    model = binding(binding_type).metadata
    names, secret = model.dapr_names(), model.secret_names()
    exposed = [
        key
        for key, flags in DAPR_KEYS[binding_type]["keys"].items()
        if flags.get("sensitive") and names.get(key.lower()) not in secret
    ]
    assert not exposed, f"{binding_type}: sensitive in Dapr, not secret=True: {exposed}"


@pytest.mark.parametrize("binding_type", sorted(DAPR_KEYS))
def test_no_effect_keys_are_real_keys_and_say_why(binding_type: str) -> None:
    model = binding(binding_type).metadata
    known = {key.lower() for key in DAPR_KEYS[binding_type]["keys"]} | set(model.dapr_names())
    for key, reason in model.no_effect.items():
        assert key.lower() in known, f"{binding_type}: no_effect key {key!r} is no key at all"
        assert reason.strip(), f"{binding_type}: no_effect key {key!r} gives no reason"


def test_every_binding_type_portabind_has_is_in_the_list() -> None:
    unlisted = sorted(set(registry.available_types()) - set(DAPR_KEYS))
    assert not unlisted, f"add {unlisted} to scripts/dapr_keys.py and regenerate dapr_keys.yaml"
