"""Property: whatever the components directory holds, `portabind validate` answers with exit
0 or 2 and at most a short message, in bounded time: never a traceback (exit 1), never a
message that grows with the input.

The files are Dapr documents whose parts hypothesis replaces with values of any type, size
and nesting, shared subtrees (which the YAML writer turns into anchors and aliases, and,
repeated level on level, into alias bombs), raw YAML that is hostile on its own (deep
nesting, long integers, an alias to its own container), other encodings and broken bytes,
and a secrets file of any JSON or none.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import portabind
from tests.tooling.bad_input_helpers import write_project

#: A generous bound on one run of validate (shared CI machines); the largest file allowed
#: parses in about 1.5 s.
SECONDS_PER_RUN = 10
#: The longest answer: a bounded list of short problems.
LONGEST_MESSAGE = 20_000

APP_USING_RECEIPTS = (
    "from portabind import App\n\napp = App()\n\n\n"
    '@app.binding("receipts")\ndef handle(data: bytes) -> None:\n    pass\n'
)

TRICKY_TEXT = st.sampled_from(
    [
        "",
        "abc",
        "1e30",
        ".inf",
        "-1",
        "5s",
        "99999999999999h",
        "true",
        "bindings.aws",
        "bindings._attempts",
        "bindings.aws.s3",
        "secretstores.local.file",
        "Component",
        "Resiliency",
        "dapr.io/v1alpha1",
        "receipts",
        "local-secrets",
    ]
)
#: Past the name limit (253), past the value limit (64 KB), past the file limit (256 KB).
long_text = st.builds(
    lambda text, size: text * size,
    st.text(min_size=1, max_size=3),
    st.sampled_from([100, 5_000, 70_000, 300_000]),
)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    TRICKY_TEXT,
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), TRICKY_TEXT), children, max_size=4),
        # One object several times: the writer gives it an anchor and aliases.
        st.builds(lambda child, times: [child] * times, children, st.integers(2, 9)),
    ),
    max_leaves=16,
)


def _alias_tower(leaf: Any, width: int, height: int) -> Any:
    """`width` references to the level below, `height` levels: width**height values once
    expanded, a few lines of YAML."""
    level = leaf
    for _ in range(height):
        level = [level] * width
    return level


def _or_fuzzed(valid: Any) -> st.SearchStrategy[Any]:
    """`valid`, or any value, or a long text (only at the top: the YAML writer repeats a
    text in full wherever it is shared, so long texts inside shared subtrees would make
    the files, not the loading, what takes the time)."""
    return st.one_of(st.just(valid), values, long_text)


def _component(name: str, type_string: str, items: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "apiVersion": _or_fuzzed("dapr.io/v1alpha1"),
            "kind": _or_fuzzed("Component"),
            "metadata": _or_fuzzed({"name": name}),
            "spec": st.fixed_dictionaries(
                {
                    "type": _or_fuzzed(type_string),
                    "version": _or_fuzzed("v1"),
                    "metadata": st.one_of(
                        st.just(items),
                        st.lists(
                            st.fixed_dictionaries(
                                {"name": _or_fuzzed("region"), "value": _or_fuzzed("eu-west-1")}
                            ),
                            max_size=3,
                        ).map(lambda extra: items + extra),
                        values,
                    ),
                }
            ),
        },
        optional={"auth": _or_fuzzed({"secretStore": "local-secrets"}), "scopes": values},
    )


s3 = _component(
    "receipts",
    "bindings.aws.s3",
    [
        {"name": "bucket", "value": "receipts"},
        {"name": "region", "value": "us-east-1"},
        {"name": "accessKey", "secretKeyRef": {"name": "key", "key": "key"}},
    ],
)
secret_store = _component(
    "local-secrets",
    "secretstores.local.file",
    [
        {"name": "secretsFile", "value": "secrets.json"},
        {"name": "multiValued", "value": "true"},
    ],
)
resiliency = st.fixed_dictionaries(
    {
        "apiVersion": st.just("dapr.io/v1alpha1"),
        "kind": st.just("Resiliency"),
        "metadata": _or_fuzzed({"name": "policies"}),
        "spec": _or_fuzzed(
            {
                "policies": {
                    "retries": {"r": {"policy": "constant", "maxRetries": 3}},
                    "timeouts": {"t": "5s"},
                    "circuitBreakers": {"c": {"maxRequests": 1, "trip": "consecutiveFailures > 5"}},
                },
                "targets": {
                    "components": {"receipts": {"outbound": {"retry": "r", "timeout": "t"}}}
                },
            }
        ).flatmap(
            lambda spec: st.one_of(
                st.just(spec),
                st.builds(
                    lambda leaf, width, height: {"policies": _alias_tower(leaf, width, height)},
                    values,
                    st.integers(2, 9),
                    st.integers(1, 9),
                ),
                st.fixed_dictionaries(
                    {
                        "policies": st.fixed_dictionaries(
                            {
                                "retries": st.dictionaries(
                                    st.just("r"),
                                    st.dictionaries(
                                        st.sampled_from(
                                            ["maxRetries", "duration", "multiplier", "policy"]
                                        ),
                                        values,
                                    ),
                                ),
                                "timeouts": values,
                                "circuitBreakers": values,
                            }
                        ),
                        "targets": values,
                    }
                ),
            )
        ),
    }
)

#: Raw YAML documents no writer would produce.
hostile_yaml = st.sampled_from(
    [
        "",
        "a: &a [*a]\n",
        "spec: &s {policies: *s}\nkind: Resiliency\nmetadata: {name: x}\n",
        "value: " + "[" * 600 + "]" * 600 + "\n",
        "value: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
        "value: " + "9" * 5_000 + "\n",
        "- &a x\n- *b\n",
        "kind: Component\nmetadata: {name: x}\nspec: {type: bindings.aws}\n",
        "kind: Component\nmetadata: {name: receipts}\nspec: {type: bindings._attempts}\n",
        "!!python/object:os.system [ls]\n",
        ": : :\n\t- [\n",
    ]
)


@st.composite
def component_file(draw: st.DrawFn) -> bytes:
    documents = draw(st.lists(st.one_of(s3, secret_store, resiliency, values), max_size=4))
    text = yaml.dump_all(documents, Dumper=yaml.CSafeDumper) + "".join(
        f"---\n{raw}" for raw in draw(st.lists(hostile_yaml, max_size=2))
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()) and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data


secrets_content = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda value: json.dumps(value).encode(), values),
    st.just(json.dumps({"key": {"key": "AKIA0123"}}).encode()),
)


# Fewer examples while developing (the fast tier) than in the whole suite `make test` runs,
# which sets HYPOTHESIS_PROFILE=full.
settings.register_profile("dev", max_examples=50)
settings.register_profile("full", max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@settings(  # as many examples as the profile says
    deadline=timedelta(seconds=SECONDS_PER_RUN),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(files=st.lists(component_file(), min_size=1, max_size=3), secrets=secrets_content)
def test_validate_answers_every_components_directory_with_0_or_2(
    files: list[bytes], secrets: bytes
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        named: dict[str, str | bytes] = {f"c{i}.yaml": data for i, data in enumerate(files)}
        project = write_project(
            Path(directory), {**named, "secrets.json": secrets}, app=APP_USING_RECEIPTS
        )
        started = time.monotonic()
        outcome = portabind("validate", str(project))
        assert time.monotonic() - started < SECONDS_PER_RUN
    assert outcome.returncode in (0, 2), outcome.stderr[:2_000]
    assert "Traceback" not in outcome.stderr
    assert len(outcome.stderr) < LONGEST_MESSAGE, outcome.stderr[:2_000]
