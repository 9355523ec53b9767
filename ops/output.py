"""What every command prints: one result document, shown as `--output json|text|table`, filtered by `--query`.

- json: the document (or what `--query` selects from it), indented; its keys are documented in
  docs/operations.md and only ever added to.
- text: tab-separated, one record a line, for `cut`/`awk`. Without `--query` the records are the command's main
  list (DLQs, messages, files); with it, what the query selects (a list: one line per element). Scalars print as
  the AWS CLI prints them (`None`, `True`); nested values as compact JSON.
- table: for people. Id and URL columns never fold or split; piped, the table keeps its natural width instead of
  shrinking to 80 columns. With `--query`, a plain table of what the query selects.

Colour only on a terminal, never with `--no-color` or `NO_COLOR`. Notes, progress and prompts go to stderr, so
stdout holds only the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import jmespath  # type: ignore[import-untyped]  # ships no type information
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


class OutputFormat(StrEnum):
    JSON = "json"
    TEXT = "text"
    TABLE = "table"


def compile_query(expression: str | None) -> Any:
    """A JMESPath expression, compiled (None without one); ValueError with a one-line message when it does not parse."""
    if not expression:
        return None
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as e:
        raise ValueError(f"bad --query {expression!r}: {' '.join(str(e).split())}") from e


@dataclass(frozen=True)
class Column:
    """A table column: `key` in each record, its `header`; `whole` columns (ids, URLs) never fold.

    `render` makes the cell from the whole record, when the value alone does not say enough.
    """

    key: str
    header: str
    whole: bool = False
    numeric: bool = False
    render: Callable[[Mapping[str, Any]], str] | None = None


@dataclass
class Output:
    """The output settings of one run (from the global options) and the consoles that honour them."""

    format: OutputFormat = OutputFormat.TABLE
    query: Any = None  # a compiled JMESPath expression
    no_color: bool = False
    _consoles: dict[bool, Console] = field(default_factory=dict)

    def console(self, *, stderr: bool = False) -> Console:
        if stderr not in self._consoles:
            self._consoles[stderr] = make_console(stderr=stderr, no_color=self.no_color)
        return self._consoles[stderr]

    def note(self, message: str) -> None:
        """A line for the person at the terminal (stderr): never part of the result."""
        self.console(stderr=True).print(message, soft_wrap=True, markup=False)

    def emit(
        self,
        document: Mapping[str, Any],
        *,
        records: Sequence[Mapping[str, Any]],
        columns: Sequence[Column],
        title: str | None = None,
        footer: Sequence[str] = (),
    ) -> None:
        """Print the result: `document` (json), `records` (text, table), or what `--query` selects."""
        out = self.console()
        if self.query is not None:
            selected: Any = self.query.search(dict(document))
            print_result(self.format, selected, selected, lambda: print_table(out, generic_table(selected)))
            return

        def table() -> None:
            print_table(out, build_table(records, columns, title=title))
            for line in footer:
                out.print(line, soft_wrap=True, markup=False)

        print_result(self.format, document, list(records), table)


def print_result(format: OutputFormat, document: Any, records: Any, table: Callable[[], None]) -> None:
    """Print a command's result on stdout: `document` as indented JSON (json), `records` as tab-separated lines
    (text, see `text_lines`), or whatever `table` prints for people (table)."""
    if format is OutputFormat.JSON:
        typer.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))
    elif format is OutputFormat.TEXT:
        lines = text_lines(records)
        if lines:
            typer.echo("\n".join(lines))
    else:
        table()


def make_console(*, no_color: bool = False, **options: Any) -> Console:
    """A rich Console: colour only on a terminal (rich's own rule, NO_COLOR honoured); `no_color` drops every
    escape sequence, bold and italics too."""
    colours: Literal["auto"] | None = None if no_color else "auto"
    return Console(highlight=False, color_system=colours, **options)


def text_lines(value: Any) -> list[str]:
    """Tab-separated lines: a list gives one line per element, a record its values in order."""
    if value is None:
        return []
    if isinstance(value, list):
        return [_text_record(item) for item in value]
    return [_text_record(value)]


def _text_record(value: Any) -> str:
    if isinstance(value, Mapping):
        return "\t".join(_text_scalar(v) for v in value.values())
    if isinstance(value, list):
        return "\t".join(_text_scalar(v) for v in value)
    return _text_scalar(value)


def _text_scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    # Tabs and newlines inside a value would break the one-record-a-line promise.
    return str(value).replace("\t", " ").replace("\n", " ")


def build_table(
    records: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, title: str | None = None
) -> Table:
    table = Table(title=title)
    rows = [[_cell(record, column) for column in columns] for record in records]
    for index, column in enumerate(columns):
        widest = max((len(line) for row in rows for line in row[index].splitlines()), default=0)
        if column.whole:
            table.add_column(
                column.header, no_wrap=True, overflow="ignore", min_width=max(widest, len(column.header))
            )
        else:
            table.add_column(column.header, overflow="fold", justify="right" if column.numeric else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _cell(record: Mapping[str, Any], column: Column) -> str:
    if column.render is not None:
        return column.render(record)
    value = record.get(column.key)
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


def generic_table(value: Any) -> Table:
    """A table of whatever a query selected: a list of records, a list of values, a record or a value."""
    table = Table()
    items = value if isinstance(value, list) else [value]
    if items and all(isinstance(item, Mapping) for item in items):
        keys: list[str] = []
        for item in items:
            keys.extend(k for k in item if k not in keys)
        for key in keys:
            table.add_column(key, no_wrap=True, overflow="ignore")
        for item in items:
            table.add_row(*(_text_scalar(item.get(k)) for k in keys))
        return table
    table.add_column("value", no_wrap=True, overflow="ignore")
    for item in items:
        table.add_row(_text_scalar(item))
    return table


def print_table(console: Console, table: Table) -> None:
    """Print a table; piped (not a terminal), at its natural width so no cell folds."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
    wide = make_console(file=console.file, width=max(natural, 40), no_color=console.color_system is None)
    wide.print(table, crop=False)
