"""A case-linker Lambda function: the shared runtime and layer, its own log group, a role that writes only there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import MEMORY_SIZE_MB

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64


@dataclass(frozen=True)
class LoggedFunction:
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def logged_function(
    scope: Construct,
    *,
    ids: tuple[str, str, str],
    handler: str,
    code: lambda_.Code,
    layers: Sequence[lambda_.ILayerVersion],
    timeout_seconds: int,
    environment: Mapping[str, str],
    description: str,
    role_description: str,
    removal_policy: RemovalPolicy,
) -> LoggedFunction:
    """The log group, role and function, under `scope` with construct ids `ids` (log group, role, function).

    The ids are parameters because they are part of the logical IDs: a function keeps its resources only as long
    as it keeps them.
    """
    log_group_id, role_id, function_id = ids
    log_group = logs.LogGroup(
        scope, log_group_id, retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal_policy
    )
    # An explicit role: the default one carries the AWSLambdaBasicExecutionRole managed policy, which may write
    # to any log group. This one writes to its own log group only.
    role = iam.Role(
        scope, role_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=role_description
    )
    log_group.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
    function = lambda_.Function(
        scope,
        function_id,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=code,
        handler=handler,
        layers=list(layers),
        memory_size=MEMORY_SIZE_MB,
        timeout=Duration.seconds(timeout_seconds),
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        environment=dict(environment),
        description=description,
    )
    Validations.of(function).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-L1",
            reason="python3.13 is pinned: the Powertools managed layer (SSM path .../python3.13/<version>) and "
            "the functions are built and tested for it; move both together.",
        ),
        Acknowledgment(
            id="Serverless::Serverless-LambdaLatestVersion",
            reason="python3.13 is pinned to match the Powertools managed layer; see AwsSolutions-L1.",
        ),
    )
    Validations.of(role).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
            "CDK adds them for active tracing.",
        )
    )
    return LoggedFunction(function=function, role=role, log_group=log_group)
