"""The README's support matrix is the one the code computes (`portabind bindings --markdown`)."""

from __future__ import annotations

import re
from pathlib import Path

from portabind.tooling.matrix import render, support_matrix

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = re.compile(r"(<!-- support-matrix:[^\n]*-->\n)(.*?)(<!-- end support-matrix -->)", re.S)


def test_readme_support_matrix_is_generated_from_the_code() -> None:
    match = SECTION.search(README.read_text(encoding="utf-8"))
    assert match, "README.md lost its support-matrix markers"
    expected = render(support_matrix(), markdown=True)
    assert match.group(2).strip() == expected, "README support matrix is stale: run `make readme`"
