"""cdk-nag 3 rule packs, registered as policy-validation plugins on the app (app.py and tests/infra)."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks


def add_nag_checks(app: App) -> None:
    """Run the AwsSolutions and Serverless packs at synth: any unacknowledged finding fails the synth."""
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True), ServerlessChecks(app, verbose=True)
    )
