"""`doctor`: what can be verified about a deploy with read-only calls, before it and after it.

Each check is a small function returning one `Check`: ok, problem (with its fix) or could-not-check (a call was
refused or failed, or something it needs is missing; with what would let it run).

- `verdict`: Check, Status, and how an AWS error becomes could-not-check (naming the IAM action to grant).
- `target`: the stack and the settings a deploy from this checkout would use (infra/config.py, fed the context
  `cdk` reads: ops/cdk_project.py). The doctor compares the deployed stack with them.
- `predeploy`: context, credentials, account and Region, Connect instance, Cases domain and association, CDK
  bootstrap.
- `stack`: the stack and its outputs, the linker and its event source mapping, the contact-event rule, the
  sweeper's function and schedule.
- `health`: queue depths, the oldest message's age, the last hour's errors and dead letters.
- `alarms`: the alarm topic's policy and key let CloudWatch in.
- `run`: the order, and what is skipped when credentials or the stack are missing.

Nothing here reads a message body: only names, states, counts, ages and error codes.
"""

from ops.doctor.run import PRE_DEPLOY_CHECKS, post_deploy_names, run_checks, summary
from ops.doctor.target import Target
from ops.doctor.verdict import PERMISSIONS, Check, Status

__all__ = [
    "PERMISSIONS",
    "PRE_DEPLOY_CHECKS",
    "Check",
    "Status",
    "Target",
    "post_deploy_names",
    "run_checks",
    "summary",
]
