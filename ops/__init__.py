"""case-linker's operator tool: inspect, replay, discard and restore the dead-letter queues; check a deploy.

Run it as `case-linker` (after `pip install .` or `pipx install .`) or `python -m ops` in the repository;
`--help` lists the commands, docs/operations.md is the runbook.

Exit codes (every command):

- 0: done.
- 1: failed or partly failed: matching messages left in the DLQ, messages not sent or not deleted, a move task
  failed, a `doctor` check found a problem, or an AWS call failed for a reason not listed below.
- 2: usage: a bad option or combination, `--yes` missing without a terminal, an unusable backup path, queues
  that do not belong together (the DLQ is not a dead-letter queue of the main queue).
- 3: not found: the stack, one of its outputs, or a queue does not exist.
- 4: access denied: missing permissions or credentials.
- 5: nothing to do: the DLQ is empty, no message matched the filters, the backup is already restored.
- 6: not allowed now: a message move task is already running on the DLQ.
- 130: interrupted (Ctrl-C) or declined at the confirmation prompt; held messages are released.
"""

# Also the installed distribution's version: pyproject.toml reads it from here.
__version__ = "0.2.0"
