"""The `ops` / `case-linker` command: global options, and the command groups wired in (ops/commands/).

To add a command group (say `doctor`): write `ops/commands/doctor.py` with its commands and a
`register(app: typer.Typer)` that adds them (see ops/commands/__init__.py), then add one line to
`_register_commands` below. Global options, output formats, errors and confirmation come with it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ops import __version__
from ops.aws import Clients
from ops.clikit import HoistingGroup, output_option
from ops.commands import backfill, dlq_inspect, dlq_redrive, doctor, send
from ops.context import Overrides, State
from ops.errors import ExitCode
from ops.output import Output, OutputFormat, compile_query
from ops.queues import DEFAULT_STACK_NAME

EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 failed or partly failed (messages left in the DLQ, not sent/deleted, move task "
    "failed, a doctor check found a problem, other AWS error); 2 usage (bad option, --yes missing without a "
    "terminal, unusable backup path, queues that do not belong together); 3 stack, output or queue not found; 4 "
    "access denied or no credentials; 5 nothing to do (empty DLQ, nothing matched); 6 a message move task is "
    "already running; 130 interrupted or declined at the prompt."
)

app = typer.Typer(
    cls=HoistingGroup,
    name="case-linker",
    help="case-linker operator tool: inspect, replay, discard and restore the dead-letter queues; send samples; "
    "backfill past contacts; check a deploy before and after it (doctor).\n\n"
    "Queues come from the CloudFormation stack's outputs (--stack-name), or from --queue-url/--dlq-url/"
    "--rule-target-dlq-url: when any URL is given the stack is not read. Global options may come before or "
    "after the command, as in the AWS CLI.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(
    help="Inspect (stats, peek), replay, discard and restore the processing and rule-target DLQs.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"case-linker {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def main_options(
    ctx: typer.Context,
    stack_name: Annotated[
        str,
        typer.Option(
            envvar="CASE_LINKER_STACK_NAME", help="CloudFormation stack whose outputs name the queues."
        ),
    ] = DEFAULT_STACK_NAME,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", help="Main queue URL (instead of the stack's MainQueueUrl).")
    ] = None,
    processing_dlq_url: Annotated[
        str | None,
        typer.Option(
            "--dlq-url",
            "--processing-dlq-url",
            help="Processing DLQ URL (instead of the stack's ProcessingDlqUrl).",
        ),
    ] = None,
    rule_target_dlq_url: Annotated[
        str | None,
        typer.Option(
            "--rule-target-dlq-url", help="EventBridge rule-target DLQ URL (instead of RuleTargetDlqUrl)."
        ),
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS Region, as in the AWS CLI.")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS named profile, as in the AWS CLI.")] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="Send every AWS call here (moto, the local pipeline); AWS_ENDPOINT_URL works too."),
    ] = None,
    output: Annotated[
        OutputFormat, output_option(help="json (stable, documented), text (tab-separated) or table.")
    ] = OutputFormat.TABLE,
    query: Annotated[
        str | None, typer.Option(help="JMESPath applied to the json result, as in the AWS CLI.")
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (none anyway when not a terminal).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options shared by every command (accepted before or after it)."""
    overrides = ctx.obj if isinstance(ctx.obj, Overrides) else Overrides()
    try:
        compiled = compile_query(query)
    except ValueError as e:
        raise typer.BadParameter(str(e).removeprefix("bad --query "), param_hint="'--query'") from e
    ctx.obj = State(
        clients=Clients(
            region=region, profile=profile, endpoint_url=endpoint_url, injected=overrides.clients
        ),
        output=Output(format=output, query=compiled, no_color=no_color),
        overrides=overrides,
        stack_name=stack_name,
        queue_url=queue_url,
        processing_dlq_url=processing_dlq_url,
        rule_target_dlq_url=rule_target_dlq_url,
    )


def _register_commands() -> None:
    dlq_inspect.register(dlq_app)
    dlq_redrive.register(dlq_app)
    app.add_typer(dlq_app, name="dlq")
    send.register(app)
    backfill.register(app)
    doctor.register(app)
    for group in (app, dlq_app):
        _list_exit_codes(group)


def _list_exit_codes(group: typer.Typer) -> None:
    """Every command's --help ends with the exit codes, as the tool's own does (after its own epilog, if any)."""
    for command in group.registered_commands:
        command.epilog = f"{command.epilog}\n\n{EXIT_CODES_HELP}" if command.epilog else EXIT_CODES_HELP


_register_commands()


def main() -> None:
    """Entry point of the installed `case-linker` command and of `python -m ops`."""
    app()
