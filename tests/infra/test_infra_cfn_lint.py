"""cfn-lint (pinned in requirements-dev.txt) finds nothing in the synthesized templates but the accepted findings.

The accepted findings, each with its reason, are in one file: infra/cfn-lint-accepted.toml.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import REPO_ROOT, Synthesized

ACCEPTED_FILE = REPO_ROOT / "infra" / "cfn-lint-accepted.toml"
#: The Region of the test contexts' Connect instance: cfn-lint checks resource types and values against it.
LINT_REGION = "us-east-1"
#: The console script pip installed beside this interpreter (the venv's cfn-lint, as a user runs it).
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    message: str


def findings(synth: Synthesized) -> list[Finding]:
    template = synth.outdir / f"{synth.stack.stack_name}.template.json"
    # The venv's own cfn-lint, on a template this session wrote: no untrusted input.
    completed = subprocess.run(  # noqa: S603
        [str(CFN_LINT), "--format", "json", "--regions", LINT_REGION, "--", str(template)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit codes are bit flags (2 errors, 4 warnings, 8 informational); anything else is cfn-lint failing.
    assert completed.returncode & ~0b1110 == 0, completed.stderr
    return [
        Finding(f["Rule"]["Id"], "/".join(str(part) for part in f["Location"]["Path"]), f["Message"])
        for f in json.loads(completed.stdout)
    ]


def accepted() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads(ACCEPTED_FILE.read_text())["accepted"]
    return entries


def is_accepted(finding: Finding, entries: list[dict[str, Any]]) -> bool:
    return any(finding.rule == e["rule"] and finding.path.startswith(e["path"]) for e in entries)


@pytest.fixture(scope="module")
def lint_results(default_synth: Synthesized, full_synth: Synthesized) -> dict[str, list[Finding]]:
    return {"defaults": findings(default_synth), "every-option": findings(full_synth)}


@pytest.mark.parametrize("context", ["defaults", "every-option"])
def test_cfn_lint_finds_nothing_but_the_accepted_findings(
    lint_results: dict[str, list[Finding]], context: str
) -> None:
    entries = accepted()
    assert [f for f in lint_results[context] if not is_accepted(f, entries)] == []


def test_cfn_lint_ran_and_found_the_accepted_findings(lint_results: dict[str, list[Finding]]) -> None:
    # A stale entry would hide the next, unrelated finding at that path: drop it. (This also proves the
    # linter ran: an empty result from a broken run would leave every entry stale.)
    found = [finding for results in lint_results.values() for finding in results]
    stale = [e for e in accepted() if not any(is_accepted(f, [e]) for f in found)]
    assert stale == []


def test_every_accepted_finding_names_one_rule_and_path_and_gives_a_reason() -> None:
    entries = accepted()
    assert entries
    for entry in entries:
        assert set(entry) == {"rule", "path", "reason"}, entry
        assert entry["rule"][0] in "EWI", entry
        assert entry["rule"][1:].isdigit(), entry
        assert entry["path"].startswith(("Resources/", "Outputs/", "Rules/", "Parameters/")), entry
        assert len(entry["reason"]) >= 60, f"{entry['rule']} {entry['path']}: give a real reason"
