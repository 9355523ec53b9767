"""`doctor`: check a deploy before and after it, with read-only calls (the checks are in ops/doctor.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.config import STACK_NAME_KEY
from ops.cdk_project import parse_context_options, read_project
from ops.context import handles_errors, state
from ops.doctor import Status, Target, run_checks, summary
from ops.doctor.verdict import counted
from ops.errors import ExitCode, OpsError
from ops.output import Column

DOCTOR_COLUMNS = (
    Column("check", "check", whole=True),
    Column("status", "status", whole=True),
    Column("detail", "found"),
    Column("fix", "fix"),
)


def doctor_command(
    ctx: typer.Context,
    cases_domain_id: Annotated[
        str | None,
        typer.Option(help="The Cases domain id (default: the casesDomainId context, as cdk reads it)."),
    ] = None,
    connect_instance_arn: Annotated[
        str | None,
        typer.Option(
            help="The Connect instance ARN (default: the connectInstanceArn context, as cdk reads it)."
        ),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="KEY=VALUE, as `cdk -c`: any other context the stack was deployed with (e.g. maxConcurrency=10).",
        ),
    ] = None,
    pre_deploy: Annotated[
        bool,
        typer.Option(
            "--pre-deploy", help="Only the checks that need no stack: run them before the first deploy."
        ),
    ] = False,
    toolkit_stack_name: Annotated[
        str | None,
        typer.Option(help="The CDK bootstrap stack (default: cdk.json's toolkitStackName, else CDKToolkit)."),
    ] = None,
) -> None:
    """Check what a deploy needs, and after it what it made: each check ok, problem (with its fix) or
    could-not-check. Read-only. Exit 0 when nothing is a problem, 1 otherwise.

    Before: context, credentials, account and Region of the Connect instance, the instance, the Cases domain
    and its association with the instance, the CDK bootstrap stack. After (unless --pre-deploy): the stack and
    its outputs, the linker and its event source mapping (compared with this checkout's settings), the
    contact-event rule, queue depths and the oldest message's age, the alarm topic's policy and key, the
    sweeper's function and schedule, and the last hour's errors and dead letters.
    """
    run = state(ctx)
    command_line = parse_context_options(context or [])
    options: dict[str, str] = {}
    if cases_domain_id is not None:
        command_line["casesDomainId"] = cases_domain_id
        options["casesDomainId"] = "--cases-domain-id"
    if connect_instance_arn is not None:
        command_line["connectInstanceArn"] = connect_instance_arn
        options["connectInstanceArn"] = "--connect-instance-arn"
    project = read_project(
        Path.cwd(), command_line, toolkit_stack_name=toolkit_stack_name, command_line_origins=options
    )
    stack_name = run.stack_name
    # cdk deploys the stack the context names (stackName) unless --stack-name (or its variable) says otherwise.
    source = ctx.find_root().get_parameter_source("stack_name")
    named = str(project.context.get(STACK_NAME_KEY) or "").strip()  # as app.py strips it
    if (source is None or source.name == "DEFAULT") and named:
        stack_name = named
    target = Target(
        stack_name=stack_name,
        context=project.context,
        toolkit_stack_name=project.toolkit_stack_name,
        bootstrap_qualifier=project.bootstrap_qualifier,
        sources=project.sources,
        origins=project.origins,
    )
    checks = run_checks(run.clients, target, pre_deploy=pre_deploy)
    records = [check.to_json() for check in checks]
    counts = summary(checks)
    run.output.emit(
        {
            "doctor": {"stack_name": stack_name, "pre_deploy": pre_deploy, **counts},
            "checks": records,
        },
        records=records,
        columns=DOCTOR_COLUMNS,
        title=f"doctor: {'before deploying' if pre_deploy else 'stack'} {stack_name}",
        footer=[", ".join(f"{count} {status}" for status, count in counts.items())],
    )
    if counts[Status.PROBLEM]:
        raise OpsError(
            f"{counted(counts[Status.PROBLEM], 'check')} found a problem: see the fix beside each",
            ExitCode.FAILED,
        )


def register(app: typer.Typer) -> None:
    """Add `doctor` to the root app."""
    app.command("doctor")(handles_errors(doctor_command))
