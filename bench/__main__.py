"""`python -m bench` (`make bench`); see docs/bench.md."""

import sys

from bench.cli import main

# Guarded: the pipeline's worker processes are spawned and re-import the main module.
if __name__ == "__main__":
    sys.exit(main())
