"""The local stack's CloudFormation outputs, published in moto where the ops tool reads a deployed stack's.

`cdk deploy` leaves a `CaseLinker` stack whose outputs name the queues (docs/CONTRACTS.md); `case-linker` (ops)
finds them with DescribeStacks. Creating a stack of that name in moto, with the same output keys naming the local
resources, lets the runbook's commands run verbatim against `make demo ARGS="--stay-up"`: only
`AWS_ENDPOINT_URL` differs. Its one resource is the function's log group (CloudFormation needs one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from local.aws import local_client
from ops.queues import DEFAULT_STACK_NAME

if TYPE_CHECKING:
    from local.pipeline import LocalPipeline

LOCAL_FUNCTION_NAME = "case-linker-local"


def stack_outputs(pipeline: LocalPipeline) -> dict[str, str]:
    """The deployed stack's output keys, naming the local resources."""
    resources = pipeline.resources
    return {
        "MainQueueUrl": resources.main_queue_url,
        "MainQueueArn": resources.main_queue_arn,
        "ProcessingDlqUrl": resources.processing_dlq_url,
        "RuleTargetDlqUrl": resources.rule_target_dlq_url,
        "FunctionName": LOCAL_FUNCTION_NAME,
        "IdempotencyTableName": resources.idempotency_table_name,
    }


def publish_stack_outputs(pipeline: LocalPipeline, stack_name: str = DEFAULT_STACK_NAME) -> dict[str, str]:
    """Create the stack `stack_name` in the pipeline's moto with the outputs; returns them."""
    outputs = stack_outputs(pipeline)
    template = {
        "Description": "case-linker, local: the outputs of the stack `cdk deploy` makes, naming local resources",
        "Resources": {
            "FunctionLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": f"/aws/lambda/{LOCAL_FUNCTION_NAME}"},
            }
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = local_client("cloudformation", pipeline.moto_endpoint, pipeline.options.region)
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    return outputs
