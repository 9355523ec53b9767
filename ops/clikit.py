"""The conventions every case-linker command line shares (ops, local, local.chaos, bench, emulator).

- A user mistake (unknown option, bad value, missing file) is ONE line on stderr starting `error: `, exit code 2,
  never a traceback or a help panel. `OneLineErrorsCommand` / `OneLineErrorsGroup` do that for typer apps:
  `typer.Typer(cls=OneLineErrorsGroup)` or `@app.command(cls=OneLineErrorsCommand)`.
- Options that belong to the whole tool are accepted before or after the subcommand, as the AWS CLI accepts
  `aws sqs list-queues --region eu-west-1`: `HoistingGroup` moves them in front before click parses.
- `usage_error(message)` raises the one-line error from inside a command, after click has parsed.
- A file a command writes (`--report`) is checked before anything runs (`check_output`) and written 0600,
  never through a symbolic link (`write_report`).
- `--output json|text|table` is the format of what a command prints, as in the AWS CLI (`output_option`); never
  a file name: a tool that writes a results file names it `--report`, and an old `--output results.json` is
  refused, saying so.

Hand-written because click itself prints a usage block and a boxed error (typer with rich), and has no notion
of options shared by every subcommand; a few lines here beat a dependency.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from ops.output import OutputFormat

USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130
REPORT_MODE = 0o600


class UsageMistake(typer.TyperException):
    """A user mistake found after parsing (a file that does not parse, a key that does not exist)."""

    exit_code = USAGE_EXIT_CODE


def print_error(message: str) -> None:
    """`error: <message>` on stderr, on one line."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)


def usage_error(message: str) -> NoReturn:
    """Stop with a one-line user-mistake error and exit code 2."""
    raise UsageMistake(message)


def output_option(*, help: str, results_file: str | None = None) -> Any:
    """The `--output json|text|table` option: `Annotated[OutputFormat, output_option(...)] = OutputFormat.TABLE`.

    Anything else is a usage error listing the formats; with `results_file` (a tool whose results file once was
    `--output`) it also names the option that takes the file.
    """
    formats = ", ".join(OutputFormat)
    elsewhere = f"; the results file is {results_file} FILE" if results_file else ""

    def parse(value: str) -> OutputFormat:
        try:
            return OutputFormat(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not one of {formats}{elsewhere}") from None

    return typer.Option("--output", parser=parse, metavar=f"[{'|'.join(OutputFormat)}]", help=help)


def _run_one_line(main: Any, standalone_mode: bool, kwargs: dict[str, Any]) -> Any:
    """Run click's `main` in non-standalone mode and turn its errors into one line and an exit code.

    Standalone, the process exits with that code. Otherwise the command's return value comes back (the exit
    code after an error or `--help`), so a caller can parse a command line without running anything.
    typer carries its own copy of click; its exceptions all derive from the public `typer.TyperException`.
    """
    try:
        result = main(standalone_mode=False, **kwargs)
        if not standalone_mode:
            return result
        code = result if isinstance(result, int) else 0
    except typer.TyperException as e:
        message = e.format_message()
        context = getattr(e, "ctx", None)
        if e.exit_code == USAGE_EXIT_CODE and context is not None and "--help" not in message:
            message += f" (see {context.command_path} --help)"
        print_error(message)
        code = e.exit_code
    except typer.Abort:
        print_error("aborted")
        code = 130
    if standalone_mode:
        sys.exit(code)
    return code


def check_output(path: Path, option: str, *, folder: bool = False) -> None:
    """Refuse up front a --report file or --logs folder the run could not write at its end.

    Missing folders are made when written; what is in the way is refused, and so is a symbolic link at the
    report's path: the report is written without following one.
    """
    if os.path.lexists(path):
        if folder and not path.is_dir():
            usage_error(f"{option} {path}: is not a folder")
        if not folder and path.is_symlink():
            usage_error(f"{option} {path}: is a symbolic link; give the path of a regular file")
        if not folder and path.is_dir():
            usage_error(f"{option} {path}: is a directory; give a file name")
    target = (path if folder else path.parent).absolute()
    existing = next(p for p in (target, *target.parents) if os.path.lexists(p))
    if not existing.is_dir():
        usage_error(f"{option} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        usage_error(f"{option} {path}: cannot write in {existing}")


def write_report(path: Path, text: str) -> None:
    """A report (case ids, contact ARNs, error messages): mode 0600, never through a symbolic link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, REPORT_MODE)
    os.fchmod(fd, REPORT_MODE)  # a file that was there before keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


class OneLineErrorsCommand(TyperCommand):
    """A single-command typer app whose usage errors are one line (`error: ...`, exit 2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if args:
            kwargs["args"] = args[0]
        return _run_one_line(super().main, standalone_mode, kwargs)


class OneLineErrorsGroup(TyperGroup):
    """A typer app with subcommands whose usage errors are one line (`error: ...`, exit 2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if args:
            kwargs["args"] = args[0]
        return _run_one_line(super().main, standalone_mode, kwargs)


def hoist_options(params: Sequence[Any], args: Sequence[str]) -> list[str]:
    """`args` with the options in `params` (click parameters) and their values moved to the front, in order.

    Stops at `--`. `--opt=value` and `--opt value` are both understood; flags take no value.
    """
    takes_value: dict[str, bool] = {}
    for param in params:
        if getattr(param, "param_type_name", None) == "option":
            for name in (*param.opts, *param.secondary_opts):
                takes_value[name] = not (param.is_flag or param.count)
    front: list[str] = []
    rest: list[str] = []
    words = list(args)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            rest.extend(words[index:])
            break
        name = word.split("=", 1)[0] if word.startswith("--") else word
        if name in takes_value:
            front.append(word)
            if takes_value[name] and "=" not in word and index + 1 < len(words):
                front.append(words[index + 1])
                index += 1
        else:
            rest.append(word)
        index += 1
    return front + rest


class HoistingGroup(OneLineErrorsGroup):
    """The root of a tool with subcommands: its own options may come anywhere on the command line."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_options(self.params, args))


T = TypeVar("T")


def parse_command_line(app: typer.Typer, argv: Sequence[str] | None, *, prog_name: str, result: type[T]) -> T:
    """Parse a command line with a one-command typer `app` whose command returns its options as a `result`.

    Nothing else runs; a mistake exits 2 with a one-line error, `--help` exits 0.
    """
    command = typer.main.get_command(app)
    parsed = command.main(
        args=list(sys.argv[1:] if argv is None else argv), prog_name=prog_name, standalone_mode=False
    )
    if isinstance(parsed, result):
        return parsed
    raise SystemExit(parsed)
