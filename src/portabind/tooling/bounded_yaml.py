"""Reading a component file within limits, so a hostile or broken file costs a bounded
amount of memory and time and ends in one message.

Each limit is checked while the file is read, before the work it bounds is done: the size
before reading, the nesting depth before descending, an alias's expanded size before the
document grows by it (a few hundred bytes of nested aliases otherwise expand to gigabytes
once a build writes the documents out as JSON), an integer's digits before converting it.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer

from portabind.errors import ComponentError, shorten

if TYPE_CHECKING:
    from pathlib import Path

#: The largest component file read. Dapr documents are a few kilobytes; reading YAML costs
#: about 5 s a megabyte.
MAX_FILE_BYTES = 256 * 1024
#: The deepest nesting of lists and mappings (Dapr documents nest about six levels).
MAX_DEPTH = 64
#: The most nodes one document may hold once its aliases are expanded.
MAX_EXPANDED_NODES = 100_000
#: The most digits of an integer (Python refuses to convert longer ones).
MAX_INTEGER_DIGITS = 4_300


class _BoundedLoader(yaml.CSafeLoader, Composer):
    """PyYAML's safe loader, refusing what exceeds the limits above, and aliases to the
    node that contains them (a recursive document). libyaml parses (the pure-Python parser
    takes seconds for a megabyte); the composer is PyYAML's, where the limits are checked."""

    check_node = Composer.check_node
    get_node = Composer.get_node
    get_single_node = Composer.get_single_node

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        Composer.__init__(self)
        self.depth = 0
        self.expanded_nodes = 0
        self.node_sizes: dict[int, int] = {}

    def compose_document(self) -> yaml.Node | None:
        self.expanded_nodes = 0
        self.node_sizes = {}
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            # Composing an alias costs nothing (it is the anchored node again); what it
            # costs once expanded is the anchored node's size, counted here.
            anchored = super().compose_node(parent, index)
            size = self.node_sizes.get(id(anchored))
            if size is None:
                raise yaml.composer.ComposerError(
                    None, None, "an alias refers to the node that contains it", self._mark()
                )
            self._grow(size)
            return anchored
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", self._mark()
            )
        before = self.expanded_nodes
        node = super().compose_node(parent, index)
        self.depth -= 1
        self._grow(1)
        self.node_sizes[id(node)] = self.expanded_nodes - before
        return node

    def _mark(self) -> yaml.Mark | None:
        """Where the parser is: the next event's start."""
        event = self.peek_event()
        start = event.start_mark if event is not None else None
        if start is None:
            return None
        return yaml.Mark(str(start.name), start.index, start.line, start.column, None, 0)

    def _grow(self, nodes: int) -> None:
        self.expanded_nodes += nodes
        if self.expanded_nodes > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"the document holds more than {MAX_EXPANDED_NODES:,} values once its aliases "
                "are expanded",
                self._mark(),
            )

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(character.isdigit() for character in node.value)
        if digits > MAX_INTEGER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"an integer of {digits:,} digits (at most {MAX_INTEGER_DIGITS:,})",
                node.start_mark,
            )
        value: int = super().construct_yaml_int(node)
        return value


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def read_text(path: Path) -> str:
    """The file's text: a regular file of at most `MAX_FILE_BYTES`, in UTF-8."""
    try:
        # Checked before opening: opening a FIFO would wait for a writer.
        if not stat.S_ISREG(path.stat().st_mode):
            raise ComponentError("not a regular file", file=path)
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ComponentError(f"cannot read file: {error.strerror}", file=path) from None
    if len(data) > MAX_FILE_BYTES:
        raise ComponentError(
            f"larger than {MAX_FILE_BYTES >> 10} KB, the most a component file may hold",
            file=path,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ComponentError(
            f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})",
            file=path,
            hint="save the file as UTF-8",
        ) from None


def load_all(path: Path) -> list[Any]:
    """Every YAML document of the file, within the limits above."""
    text = read_text(path)
    try:
        return list(yaml.load_all(text, Loader=_BoundedLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ComponentError(f"malformed YAML{where}: {shorten(problem)}", file=path) from None
