"""The installable operator tool: `pip install .` gives a `case-linker` command with only what ops needs,
and `make demo` installs only what the demo needs, at the same pins as the development install."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT

OPS_DEPENDENCIES = {"boto3", "botocore", "jmespath", "rich", "typer"}
#: The one module ops imports from outside ops: the stack's derived settings, for `doctor` (plain Python).
SHARED_WITH_THE_STACK = "infra.config"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def pins(path: Path) -> dict[str, str]:
    """name (without extras, lower case) -> pinned version, from a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


def project_pins() -> dict[str, str]:
    return {spec.split("==")[0].lower(): spec.split("==")[1] for spec in PYPROJECT["project"]["dependencies"]}


def test_the_tool_depends_on_boto3_typer_rich_and_jmespath_only_pinned_as_for_the_demo() -> None:
    demo = pins(REPO_ROOT / "requirements-demo.txt")
    assert set(project_pins()) == OPS_DEPENDENCIES
    assert all(demo[name] == version for name, version in project_pins().items())


def test_the_demo_pins_are_the_development_pins() -> None:
    demo, dev = pins(REPO_ROOT / "requirements-demo.txt"), pins(REPO_ROOT / "requirements-dev.txt")
    assert {name: version for name, version in demo.items() if name in dev} == {
        name: version for name, version in dev.items() if name in demo
    }
    assert not {"aws-cdk-lib", "constructs", "cdk-nag", "pytest", "mypy", "ruff"} & set(demo)


def imported(path: Path) -> list[str]:
    """The absolute module names a file imports."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def test_ops_imports_only_the_standard_library_and_its_dependencies() -> None:
    allowed = OPS_DEPENDENCIES | {"ops"} | set(sys.stdlib_module_names)
    for path in (REPO_ROOT / "ops").rglob("*.py"):
        for name in imported(path):
            assert name.split(".")[0] in allowed or name == SHARED_WITH_THE_STACK, (
                f"{path.relative_to(REPO_ROOT)} imports {name}"
            )


def test_the_stack_settings_ops_imports_need_nothing_but_the_standard_library() -> None:
    # The installed tool has no aws-cdk-lib: infra/config.py must stay plain Python.
    for path in (REPO_ROOT / "infra" / "__init__.py", REPO_ROOT / "infra" / "config.py"):
        for name in imported(path):
            assert name.split(".")[0] in sys.stdlib_module_names, (
                f"{path.relative_to(REPO_ROOT)} imports {name}"
            )


def test_the_distribution_ships_every_ops_package_and_the_case_linker_command() -> None:
    # pip builds the wheel from these; the install itself is measured in the README (a throwaway venv).
    packages = {
        path.parent.relative_to(REPO_ROOT).as_posix().replace("/", ".")
        for path in (REPO_ROOT / "ops").rglob("__init__.py")
    }
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == packages | {"infra"}
    assert PYPROJECT["project"]["scripts"] == {"case-linker": "ops.cli:main"}
    from ops.cli import main

    assert callable(main)
