"""The function's environment and the linker's settings (functions/case_linker/settings.py) cannot drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import BUDGET_KEY_PREFIX, LINKER_METRIC_BREAKDOWNS, LINKER_METRICS, CaseLinkerConfig
from tests.infra.synth import FULL_CONTEXT, REPO_ROOT
from tests.infra.templates import SWEEPER_HANDLER, function_with_handler

SETTINGS_FILE = REPO_ROOT / "functions" / "case_linker" / "settings.py"
#: docs/CONTRACTS.md, "Lambda environment" (issue 3, and issue 11's CONNECT_INSTANCE_ARN, MAIN_QUEUE_URL,
#: MAX_RECEIVE_COUNT).
DOCUMENTED_NAMES = {
    "CASES_DOMAIN_ID",
    "CASE_ID_ATTRIBUTE",
    "CONTACT_EVENT_TYPES",
    "CONNECT_INSTANCE_ARN",
    "DEAD_LETTER_QUEUE_URL",
    "IDEMPOTENCY_TABLE_NAME",
    "MAIN_QUEUE_URL",
    "MAX_RECEIVE_COUNT",
    "PERFORMED_BY",
    "CASES_MAX_RPS",
    "CASES_MAX_BURST",
    "CASES_QUOTA_RPS",
    "CASES_QUOTA_BURST",
    "CASES_BUDGET",
}
#: Issue 12, "Contract": the sweeper's environment (and issue 15's budget variables: its chain look-ups draw on
#: the fleet's shared Cases budget).
SWEEPER_DOCUMENTED_NAMES = {
    "CONNECT_INSTANCE_ARN",
    "MAIN_QUEUE_URL",
    "IDEMPOTENCY_TABLE_NAME",
    "CASES_DOMAIN_ID",
    "CASE_ID_ATTRIBUTE",
    "SWEEP_WINDOW_MINUTES",
    "SWEEP_LAG_MINUTES",
    "CONNECT_SEARCH_RPS",
    "FOLLOW_CONTACT_CHAIN",
    "CASES_QUOTA_RPS",
    "CASES_QUOTA_BURST",
    "CASES_BUDGET",
}
# Read by Powertools and the Lambda runtime, not by the linker's settings.
PLATFORM_PREFIXES = ("POWERTOOLS_", "AWS_", "_X_AMZN_")


@pytest.fixture(scope="module")
def settings() -> ModuleType:
    # Skips (reported by -ra) only while the linker is not written; never once settings.py exists.
    return pytest.importorskip(
        "case_linker.settings", reason="functions/case_linker/settings.py not written yet"
    )


def deployed_names(template: Template, handler: str = "case_linker.handler.lambda_handler") -> set[str]:
    _, function = function_with_handler(template, handler)
    return set(function["Environment"]["Variables"])


def linker_names(names: set[str]) -> set[str]:
    return {name for name in names if not name.startswith(PLATFORM_PREFIXES)}


def test_the_function_gets_exactly_the_variables_the_contract_documents(template: Template) -> None:
    assert linker_names(deployed_names(template)) == DOCUMENTED_NAMES


def test_the_function_gets_exactly_the_variables_the_linker_reads(
    template: Template, settings: ModuleType
) -> None:
    assert linker_names(deployed_names(template)) == set(settings.ENVIRONMENT_VARIABLES)


def test_the_linker_settings_read_no_variable_outside_their_declared_list(settings: ModuleType) -> None:
    # Catches a new os.environ read that was not added to ENVIRONMENT_VARIABLES (and so not to the stack).
    literals = {
        node.value
        for node in ast.walk(ast.parse(SETTINGS_FILE.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    variable_like = {value for value in literals if re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", value)}
    declared = set(settings.ENVIRONMENT_VARIABLES) | set(
        getattr(settings, "SWEEPER_ENVIRONMENT_VARIABLES", ())
    )
    assert linker_names(variable_like) <= declared


@pytest.mark.parametrize(
    "context",
    # 50 environments share a burst of 10: 0.2 each (the stack no longer floors a share at one request).
    [{}, FULL_CONTEXT, {"maxConcurrency": "50"}],
    ids=["defaults", "every-option", "burst-share-below-one"],
)
def test_the_linker_accepts_the_values_the_stack_sets(context: dict[str, Any], settings: ModuleType) -> None:
    config = CaseLinkerConfig.from_context(
        {
            "casesDomainId": "11111111-2222-3333-4444-555555555555",
            "connectInstanceArn": "arn:aws:connect:us-east-1:123456789012:instance/abc",
            **context,
        }
    )
    environment = config.lambda_environment(
        dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/CaseLinker-ProcessingDlq-ABC",
        idempotency_table_name="CaseLinker-CaseLinkerIdempotencyTable-XYZ",
        main_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/CaseLinker-Queue-DEF",
    )
    loaded = settings.Settings.from_env(environment)
    assert loaded.cases_domain_id == config.cases_domain_id
    assert loaded.case_id_attribute == config.case_id_attribute
    assert set(loaded.contact_event_types) == set(config.contact_event_types)
    assert loaded.cases_max_rps == pytest.approx(config.cases_max_rps)
    assert loaded.cases_max_burst == pytest.approx(config.cases_max_burst)
    assert loaded.performed_by_agent == config.records_agent_as_performer


def test_the_sweeper_gets_exactly_the_variables_its_contract_names(template: Template) -> None:
    assert linker_names(deployed_names(template, SWEEPER_HANDLER)) == SWEEPER_DOCUMENTED_NAMES


def test_the_sweeper_gets_exactly_the_variables_its_settings_read(
    template: Template, settings: ModuleType
) -> None:
    assert linker_names(deployed_names(template, SWEEPER_HANDLER)) == set(
        settings.SWEEPER_ENVIRONMENT_VARIABLES
    )


@pytest.mark.parametrize("context", [{}, FULL_CONTEXT], ids=["defaults", "every-option"])
def test_the_sweeper_accepts_the_values_the_stack_sets(context: dict[str, Any], settings: ModuleType) -> None:
    config = CaseLinkerConfig.from_context(
        {
            "casesDomainId": "11111111-2222-3333-4444-555555555555",
            "connectInstanceArn": "arn:aws:connect:us-east-1:123456789012:instance/abc",
            **context,
        }
    )
    environment = config.sweeper_environment(
        main_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/CaseLinker-Queue-DEF",
        idempotency_table_name="CaseLinker-CaseLinkerIdempotencyTable-XYZ",
    )
    loaded = settings.SweeperSettings.from_env(environment)
    assert (loaded.window_minutes, loaded.lag_minutes) == (
        config.sweep_window_minutes,
        config.sweep_lag_minutes,
    )
    assert loaded.follow_contact_chain == config.follow_contact_chain
    assert loaded.connect_search_rps <= config.connect_search_requests_per_second


def test_the_sweeper_handler_the_stack_runs_exists_once_written() -> None:
    # Skips (reported by -ra) only while the sweeper is not written; the handler string is the contract.
    sweeper = pytest.importorskip(
        "case_linker.sweeper", reason="functions/case_linker/sweeper.py not written yet"
    )
    module, _, name = SWEEPER_HANDLER.rpartition(".")
    assert sweeper.__name__ == module
    assert callable(getattr(sweeper, name))


def test_the_settings_file_is_where_the_drift_test_looks(settings: ModuleType) -> None:
    assert Path(str(settings.__file__)).resolve() == SETTINGS_FILE


# --- the dashboard graphs the metrics the linker emits ------------------------------------------------------
def linker_metric_names() -> dict[str, str]:
    """Metric-name constants of case_linker.telemetry: {constant name: metric name}."""
    telemetry = pytest.importorskip("case_linker.telemetry")
    names: dict[str, str] = {}
    for node in ast.parse(Path(str(telemetry.__file__)).read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            [target] = node.targets
            if isinstance(target, ast.Name) and target.id.isupper() and isinstance(node.value.value, str):
                names[target.id] = node.value.value
    return names


def test_the_dashboard_graphs_exactly_the_metrics_the_linker_emits() -> None:
    assert set(linker_metric_names().values()) == set(LINKER_METRICS)


def test_the_dashboard_breaks_metrics_down_by_the_dimensions_the_linker_adds() -> None:
    # Every `counters.incr(NAME, ("dimension", value))` in the linker, as {metric name: dimension}.
    constants = linker_metric_names()
    emitted: dict[str, set[str]] = {}
    for source in (REPO_ROOT / "functions" / "case_linker").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "incr"
            ):
                continue
            if not node.args or not isinstance(node.args[0], ast.Name) or node.args[0].id not in constants:
                continue
            dimension = node.args[1] if len(node.args) > 1 else None
            name = constants[node.args[0].id]
            if isinstance(dimension, ast.Tuple) and isinstance(dimension.elts[0], ast.Constant):
                emitted.setdefault(name, set()).add(str(dimension.elts[0].value))
            else:
                emitted.setdefault(name, set()).add("")
    assert emitted, "no counters.incr(...) calls found: update this test to the linker's metric API"
    assert {name: dims for name, dims in emitted.items() if dims != {""}} == {
        name: {dimension} for name, dimension in LINKER_METRIC_BREAKDOWNS.items()
    }


def test_the_sweepers_budget_grant_covers_the_keys_the_budget_writes() -> None:
    from case_linker.budget import KEY_PREFIX

    assert KEY_PREFIX.startswith(BUDGET_KEY_PREFIX)
    assert BUDGET_KEY_PREFIX.endswith("#budget#")
