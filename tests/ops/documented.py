"""docs/operations.md's table of json documents, read as shapes: what the tool's output must match."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import REPO_ROOT

OPERATIONS = REPO_ROOT / "docs" / "operations.md"

Shape = dict[str, Any]  # key -> None (a value), a nested Shape, or a one-element list of one


def documented() -> dict[str, Shape]:
    """docs/operations.md's table of json documents: command -> the document's shape (keys in order)."""
    shapes: dict[str, Shape] = {}
    for line in OPERATIONS.read_text(encoding="utf-8").splitlines():
        row = re.fullmatch(r"\| (`[^|]+`(?:, `[^|]+`)*) \| `(\{.*\})`(?: \(.*\))? \|", line)
        if row is None:
            continue
        shape = _Parser(row[2].replace("\\|", "|")).document()
        for command in re.findall(r"`([^`]+)`", row[1]):
            shapes[command] = shape
    return shapes


class _Parser:
    """`{"a", "b": {"c"}, "d": [{"e"}], "x" | "y": {...}, {code: count}}`: the table's notation, not JSON."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def document(self) -> Shape:
        shape = self._value()
        assert isinstance(shape, dict), self.text
        return shape

    def _peek(self) -> str:
        while self.text[self.pos] == " ":
            self.pos += 1
        return self.text[self.pos]

    def _value(self) -> Any:
        if self._peek() == "{":
            return self._object()
        if self._peek() == "[":
            self.pos += 1
            inner = self._value()
            self._skip_to("]")
            return [inner]
        self._skip_to(",}]", consume=False)  # a free-form value (`code: count`, `...`)
        return None

    def _object(self) -> Shape | None:
        self.pos += 1
        shape: Shape = {}
        while self._peek() != "}":
            if self._peek() != '"':
                self._skip_to("}", consume=False)  # `{code: count}`: a map, not fixed keys
                break
            names = [self._name()]
            while self._peek() == "|":
                self.pos += 1
                names.append(self._name())
            value = None
            if self._peek() == ":":
                self.pos += 1
                value = self._value()
            for name in names:
                shape[name] = value
            if self._peek() == ",":
                self.pos += 1
        self.pos += 1
        return shape or None

    def _name(self) -> str:
        self._peek()
        end = self.text.index('"', self.pos + 1)
        name = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return name

    def _skip_to(self, stops: str, *, consume: bool = True) -> None:
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in "{[":
                depth += 1
            elif depth and char in "}]":
                depth -= 1
            elif not depth and char in stops:
                self.pos += consume
                return
            self.pos += 1


def record_keys(shape: Shape, *path: str) -> list[str]:
    """The documented keys of the records at `path` (a list's element when the path ends at a list)."""
    node: Any = shape
    for key in path:
        node = node[key]
    if isinstance(node, list):
        node = node[0]
    assert isinstance(node, dict), (path, shape)
    return list(node)
