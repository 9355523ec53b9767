"""`doctor` reads the CDK context and toolkit settings as the CDK CLI does: command line, cdk.json, cdk.context.json,
~/.cdk.json, the first that has a key wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.cdk_project import parse_context_options, read_project
from ops.errors import ExitCode, OpsError


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    return project, home


def write(path: Path, document: object) -> None:
    path.write_text(json.dumps(document))


def test_the_first_source_that_has_a_key_wins_as_in_the_cdk_cli(dirs: tuple[Path, Path]) -> None:
    project, home = dirs
    write(home / ".cdk.json", {"context": {"a": "user", "b": "user", "c": "user", "d": "user"}})
    write(
        project / "cdk.context.json",
        {"a": "cdk.context.json", "b": "cdk.context.json", "c": "cdk.context.json"},
    )
    write(project / "cdk.json", {"app": "python app.py", "context": {"a": "cdk.json", "b": "cdk.json"}})
    found = read_project(project, {"a": "command line"}, home=home)
    assert found.context == {"a": "command line", "b": "cdk.json", "c": "cdk.context.json", "d": "user"}
    assert found.sources == (
        str(project / "cdk.json"),
        str(project / "cdk.context.json"),
        str(home / ".cdk.json"),
    )


def test_each_values_origin_is_the_source_it_came_from(dirs: tuple[Path, Path]) -> None:
    project, home = dirs
    write(home / ".cdk.json", {"context": {"d": "user"}})
    write(project / "cdk.context.json", {"b": "cdk.context.json", "c": "cdk.context.json"})
    write(project / "cdk.json", {"app": "python app.py", "context": {"b": "cdk.json"}})
    found = read_project(
        project, {"a": "x", "c": "y"}, home=home, command_line_origins={"c": "--cases-domain-id"}
    )
    assert found.origins == {
        "a": "-c",
        "b": str(project / "cdk.json"),
        "c": "--cases-domain-id",
        "d": str(home / ".cdk.json"),
    }


def test_no_files_give_the_command_line_and_the_defaults(dirs: tuple[Path, Path]) -> None:
    project, home = dirs
    found = read_project(project, {"casesDomainId": "d-1"}, home=home)
    assert found.context == {"casesDomainId": "d-1"}
    assert (found.toolkit_stack_name, found.bootstrap_qualifier, found.sources) == (
        "CDKToolkit",
        "hnb659fds",
        (),
    )


def test_the_toolkit_stack_and_qualifier_come_from_settings_and_context(dirs: tuple[Path, Path]) -> None:
    project, home = dirs
    write(home / ".cdk.json", {"toolkitStackName": "UserToolkit"})
    assert read_project(project, {}, home=home).toolkit_stack_name == "UserToolkit"
    write(
        project / "cdk.json",
        {"toolkitStackName": "ProjectToolkit", "context": {"@aws-cdk/core:bootstrapQualifier": "team42"}},
    )
    found = read_project(project, {}, home=home)
    assert (found.toolkit_stack_name, found.bootstrap_qualifier) == ("ProjectToolkit", "team42")
    assert read_project(project, {}, toolkit_stack_name="Given", home=home).toolkit_stack_name == "Given"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{ nope", "cannot read"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"context": []}', "must be a JSON object"),
    ],
)
def test_an_unusable_cdk_json_is_a_usage_error_naming_it(
    dirs: tuple[Path, Path], text: str, message: str
) -> None:
    project, home = dirs
    (project / "cdk.json").write_text(text)
    with pytest.raises(OpsError) as raised:
        read_project(project, {}, home=home)
    assert raised.value.exit_code is ExitCode.USAGE
    assert str(project / "cdk.json") in raised.value.message
    assert message in raised.value.message


def test_context_options_are_key_equals_value_split_at_the_first_equals() -> None:
    assert parse_context_options(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in ("novalue", "=1"):
        with pytest.raises(OpsError, match="is not KEY=VALUE"):
            parse_context_options([bad])
