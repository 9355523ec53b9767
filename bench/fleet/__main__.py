"""`python -m bench.fleet`; see bench/fleet/cli.py and docs/bench.md."""

from bench.fleet.cli import app

app()
