"""The function ships without bundling: it may import only what the Lambda runtime and the Powertools layer give."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
# python3.13 runtime: boto3/botocore (and their dependencies); Powertools layer (aws-lambda-powertools[all]):
# pydantic v2, aws-xray-sdk, fastjsonschema, jmespath.
RUNTIME_AND_LAYER = {
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "pydantic",
    "pydantic_core",
    "aws_xray_sdk",
    "fastjsonschema",
    "jmespath",
}
OWN_PACKAGES = {"case_linker"}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_given_the_function_code_when_its_imports_are_read_then_each_is_in_the_runtime_or_the_layer() -> None:
    sources = sorted(FUNCTIONS_DIR.rglob("*.py"))
    assert sources, "no function code found"
    allowed = set(sys.stdlib_module_names) | RUNTIME_AND_LAYER | OWN_PACKAGES
    outside = {
        f"{path.relative_to(FUNCTIONS_DIR)}: {name}"
        for path in sources
        for name in imported_top_level_modules(path)
        if name not in allowed
    }
    assert outside == set(), "these would import on a developer's machine and fail in Lambda"
