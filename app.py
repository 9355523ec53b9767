#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth|deploy -c casesDomainId=... -c connectInstanceArn=...` (see the README, "Deploy")."""

from __future__ import annotations

import sys

from aws_cdk import App

from infra.config import STACK_NAME_KEY, CaseLinkerConfig, ConfigError
from infra.nag import add_nag_checks
from infra.stack import DEFAULT_STACK_NAME, CaseLinkerStack


def build(app: App) -> CaseLinkerStack:
    """Validate the app's context and add the stack and the cdk-nag checks; raises ConfigError."""
    # All of it, so a misspelled key is named rather than ignored.
    config = CaseLinkerConfig.from_context(app.node.get_all_context())
    # Environment-agnostic on purpose: nothing here needs a lookup, so synth is offline and the template
    # deploys to whichever account/region the credentials of `cdk deploy` point at.
    stack = CaseLinkerStack(
        app,
        str(app.node.try_get_context(STACK_NAME_KEY) or "").strip() or DEFAULT_STACK_NAME,
        config=config,
        description="case-linker: links finished Amazon Connect contacts to Amazon Connect Cases",
    )
    add_nag_checks(app)
    return stack


def main() -> None:
    app = App()
    try:
        build(app)
    except ConfigError as e:
        sys.exit(f"case-linker: {e}")
    app.synth()


if __name__ == "__main__":
    main()
