"""Rewrite the support matrix in README.md from the code (`make readme`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from portabind.tooling.matrix import render, support_matrix

SECTION = re.compile(r"(<!-- support-matrix:[^\n]*-->\n)(.*?)(<!-- end support-matrix -->)", re.S)


def main() -> int:
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    text = readme.read_text(encoding="utf-8")
    table = render(support_matrix(), markdown=True)
    updated, count = SECTION.subn(lambda m: f"{m.group(1)}{table}\n{m.group(3)}", text)
    if count != 1:
        print(f"{readme}: support-matrix markers not found", file=sys.stderr)
        return 1
    readme.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
