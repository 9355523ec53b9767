"""The CDK app's context and toolkit settings, read as `cdk` reads them, so `doctor` checks what a deploy uses.

Context comes, highest precedence first, from the command line (`--context KEY=VALUE`, and `doctor`'s own
`--cases-domain-id`/`--connect-instance-arn`), `cdk.json`'s `context` block, `cdk.context.json`, and the user's
`~/.cdk.json` `context` block: the CDK CLI's order (its Configuration.load). Files are read from the current
directory, where `cdk` runs. Settings (`toolkitStackName`) come from the command line, `cdk.json`, `~/.cdk.json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import ExitCode, OpsError

PROJECT_CONFIG = "cdk.json"
PROJECT_CONTEXT = "cdk.context.json"
USER_DEFAULTS = ".cdk.json"  # in the home directory
DEFAULT_TOOLKIT_STACK_NAME = "CDKToolkit"
#: The bootstrap qualifier CDK uses unless the context sets BOOTSTRAP_QUALIFIER_KEY.
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_QUALIFIER_KEY = "@aws-cdk/core:bootstrapQualifier"
#: The origin of a context value given on the command line (as `cdk -c KEY=VALUE`).
COMMAND_LINE_ORIGIN = "-c"


@dataclass(frozen=True, kw_only=True)
class CdkProject:
    """What `cdk deploy` in `directory` would use: the merged context and the toolkit stack."""

    context: dict[str, Any]
    toolkit_stack_name: str
    #: Which files were read, for the report.
    sources: tuple[str, ...]
    #: Where each context value came from: the option that gave it (`-c`, `--cases-domain-id`) or the file.
    origins: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap_qualifier(self) -> str:
        return str(self.context.get(BOOTSTRAP_QUALIFIER_KEY) or DEFAULT_BOOTSTRAP_QUALIFIER)


def parse_context_options(values: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` strings (as `cdk -c`) as a dict; OpsError (usage) naming the first malformed one."""
    parsed: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise OpsError(f"--context {value!r} is not KEY=VALUE", ExitCode.USAGE)
        parsed[key.strip()] = text
    return parsed


def read_project(
    directory: Path,
    command_line: Mapping[str, Any],
    *,
    toolkit_stack_name: str | None = None,
    home: Path | None = None,
    command_line_origins: Mapping[str, str] | None = None,
) -> CdkProject:
    """The context and settings `cdk` would use in `directory`; OpsError (usage) when a file does not parse.

    `command_line_origins` names the option that gave a command-line value (default `-c`), for the report.
    """
    project = _read_json(directory / PROJECT_CONFIG)
    user = _read_json((home or Path.home()) / USER_DEFAULTS)
    user_path = (home or Path.home()) / USER_DEFAULTS
    bags = (
        (None, dict(command_line)),
        (str(directory / PROJECT_CONFIG), _context_block(project, directory / PROJECT_CONFIG)),
        (str(directory / PROJECT_CONTEXT), _read_json(directory / PROJECT_CONTEXT) or {}),
        (str(user_path), _context_block(user, user_path)),
    )
    context: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path, bag in reversed(bags):  # earlier bags win
        context.update(bag)
        for key in bag:
            origins[key] = path or (command_line_origins or {}).get(key, COMMAND_LINE_ORIGIN)
    sources = tuple(
        str(path)
        for path in (
            directory / PROJECT_CONFIG,
            directory / PROJECT_CONTEXT,
            (home or Path.home()) / USER_DEFAULTS,
        )
        if path.is_file()
    )
    toolkit = (
        toolkit_stack_name
        or _setting(project, "toolkitStackName")
        or _setting(user, "toolkitStackName")
        or DEFAULT_TOOLKIT_STACK_NAME
    )
    return CdkProject(context=context, toolkit_stack_name=toolkit, sources=sources, origins=origins)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise OpsError(f"cannot read {path}: {' '.join(str(e).split())}", ExitCode.USAGE) from e
    if not isinstance(loaded, dict):
        raise OpsError(f"{path} must hold a JSON object", ExitCode.USAGE)
    return loaded


def _context_block(config: dict[str, Any] | None, path: Path) -> dict[str, Any]:
    block = (config or {}).get("context", {})
    if not isinstance(block, dict):
        raise OpsError(f'{path}: "context" must be a JSON object', ExitCode.USAGE)
    return block


def _setting(config: dict[str, Any] | None, key: str) -> str | None:
    value = (config or {}).get(key)
    return value if isinstance(value, str) and value else None
