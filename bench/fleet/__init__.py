"""The fleet simulation (issue 15): the function's own pacing classes against a simulated account quota.

`python -m bench.fleet` (or `make bench ARGS="--only fleet"`); see docs/bench.md. The product's code
(`functions/case_linker`) is imported as Lambda imports it, from the functions/ folder.
"""

from local.pipeline import ensure_import_paths

ensure_import_paths()
