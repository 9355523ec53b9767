"""case-linker's operator tool: inspect and replay the dead-letter queues (`python -m ops --help`).

Exit codes (every command):

- 0: done.
- 1: failed or partly failed: some messages were not sent or not deleted, a move task failed,
  or an AWS call failed for a reason not listed below.
- 2: usage: a bad option or combination, `--yes` missing without a terminal, an unwritable backup file.
- 3: not found: the stack, one of its outputs, or a queue does not exist.
- 4: access denied: missing permissions or credentials.
- 5: nothing to do: the DLQ is empty (peek, replay) or no message matched the filters (replay).
- 6: not allowed now: a message move task is already running on the DLQ.
- 130: interrupted (Ctrl-C) or declined at the confirmation prompt; held messages are released.
"""
