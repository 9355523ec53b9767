"""One module per command group; `ops/cli.py` wires them into the `ops` / `case-linker` command.

Each module has `register(app)`, which adds its commands to the typer app it is given (the root app, or the
`dlq` group). A command takes `ctx: typer.Context`, is wrapped in `@handles_errors`, gets the run's clients, queues
and output from `state(ctx)` (ops/context.py), raises `OpsError` for anything the user should read, asks with
`state.confirm(...)` before changing anything, and prints its result once with `state.output.emit(...)`
(ops/output.py), so `--output json|text|table` and `--query` work without further code.
"""
