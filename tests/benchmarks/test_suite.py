"""`make bench`'s runner (benchmarks/suite.py): how it reads the scripts' rows, reports a
script that fails, and rewrites the README's table. The benchmarks themselves are not tests."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
ROW = {
    "benchmark": "cold start",
    "figure": "AWS entry / hand-written",
    "value": "412 vs 396 ms",
    "ratio": 1.04,
    "goal": "≤ 1.05\u00d7",
    "met": True,
}


@pytest.fixture(scope="module")
def suite() -> Iterator[ModuleType]:
    # The suite imports its helper as the scripts do: from its own folder.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("benchmark_suite", BENCHMARKS / "suite.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake_benchmark.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_script_s_rows_are_its_last_stdout_line(suite: ModuleType, tmp_path: Path) -> None:
    path = script(
        tmp_path,
        f"""
        import sys
        assert sys.argv[1:] == ["--json", "--quick"], sys.argv
        print("a human-readable table first")
        print({json.dumps(json.dumps({"rows": [ROW]}))})
        """,
    )
    [row] = suite.run_script(path, quick=True)
    assert row == suite.Row(**ROW)
    expected = (
        "| cold start | AWS entry / hand-written "
        "| 1.040\u00d7 (412 vs 396 ms) | ≤ 1.05\u00d7 | yes |"
    )
    assert expected in suite.render([row])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("raise SystemExit('moto did not start')", "exit 1: moto did not start"),
        ("print('no json here')", "its last line is not the suite's JSON"),
        ("print('{\"rows\": []}')", "no rows"),
    ],
)
def test_a_script_that_fails_is_a_row_saying_why(
    suite: ModuleType, tmp_path: Path, body: str, reason: str
) -> None:
    [row] = suite.run_script(script(tmp_path, body), quick=True)
    assert (row.benchmark, row.figure, row.met) == ("fake_benchmark", "failed", False)
    assert reason in row.value
    assert "| fake_benchmark | failed |" in suite.render([row])
    assert "| **no** |" in suite.render([row])


def test_the_readme_table_is_replaced_between_its_markers(
    suite: ModuleType, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "## Benchmarks\n\nbefore\n\n<!-- benchmarks: generated -->\nold table\n"
        "<!-- end benchmarks -->\n\nafter\n"
    )
    suite.write_readme(readme, "| new | table |", "benchmarks/suite.py")
    text = readme.read_text()
    assert "old table" not in text
    assert "| new | table |\n<!-- end benchmarks -->" in text
    assert "with `benchmarks/suite.py`" in text
    assert text.startswith("## Benchmarks\n\nbefore\n\n<!-- benchmarks: generated -->\n")
    assert text.endswith("<!-- end benchmarks -->\n\nafter\n")


def test_a_readme_without_markers_is_refused(suite: ModuleType, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="benchmarks markers not found"):
        suite.write_readme(readme, "| table |", "benchmarks/suite.py")
    assert readme.read_text() == "no markers\n"
