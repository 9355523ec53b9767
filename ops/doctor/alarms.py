"""After a deploy: the alarms can reach someone. CloudWatch alarms publish to the topic as the service principal
cloudwatch.amazonaws.com, so both the topic policy and the policy of the topic's key must let it in: a topic
policy that only denies plain HTTP replaces SNS's default one, and the AWS-managed aws/sns key lets no service in."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ops.doctor import deployed as out
from ops.doctor.deployed import Deployed
from ops.doctor.verdict import REDEPLOY, Check, guarded, ok, problem

CLOUDWATCH = "cloudwatch.amazonaws.com"


def statements(policy: str | Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The statements of a policy document, as JSON text or already parsed (none for no policy, or for one
    that is not a JSON object: then nothing is shown to allow, rather than the whole run crashing)."""
    if not policy:
        return []
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return []
    if not isinstance(policy, Mapping):
        return []
    found = policy.get("Statement", [])
    if isinstance(found, dict):
        return [found]
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statement: Mapping[str, Any], service: str, actions: Iterable[str]) -> bool:
    """An Allow statement naming the `service` principal and covering every one of `actions` (IAM wildcards:
    `sns:*`, `kms:GenerateDataKey*`; action names are case-insensitive)."""
    if statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal", {})
    if service not in (_as_list(principal.get("Service", [])) if isinstance(principal, dict) else []):
        return False
    granted = [str(action).lower() for action in _as_list(statement.get("Action", []))]

    def covered(action: str) -> bool:
        return any(g == action or (g.endswith("*") and action.startswith(g[:-1])) for g in granted)

    return all(covered(action.lower()) for action in actions)


def _topic_attributes(deployed: Deployed) -> dict[str, str]:
    found: dict[str, str] = deployed.clients.sns.get_topic_attributes(
        TopicArn=deployed.output(out.ALARM_TOPIC_ARN)
    )["Attributes"]
    return found


@guarded("alarm-topic-policy")
def check_topic_policy(deployed: Deployed) -> Check:
    """SNS GetTopicAttributes: the topic policy lets CloudWatch alarms publish."""
    check = "alarm-topic-policy"
    policy = _topic_attributes(deployed).get("Policy")
    allowing = [s for s in statements(policy) if allows(s, CLOUDWATCH, ["sns:Publish"])]
    if not allowing:
        return problem(
            check,
            f"the alarm topic's policy does not let {CLOUDWATCH} publish: every alarm fires into nothing",
            f"{REDEPLOY} (its topic policy lets this account's alarms publish)",
        )
    scoped = any("aws:SourceAccount" in json.dumps(s.get("Condition", {})) for s in allowing)
    return ok(check, f"{CLOUDWATCH} may publish" + (", for this account's alarms only" if scoped else ""))


@guarded("alarm-topic-key")
def check_topic_key(deployed: Deployed) -> Check:
    """KMS GetKeyPolicy: CloudWatch may use the alarm topic's key."""
    check = "alarm-topic-key"
    key = _topic_attributes(deployed).get("KmsMasterKeyId")
    if not key:
        return ok(check, "the topic is not encrypted: no key policy to check")
    if key.endswith("alias/aws/sns"):
        return problem(
            check,
            "the topic is encrypted with the AWS-managed aws/sns key, which CloudWatch cannot use",
            f"{REDEPLOY} (it encrypts the topic with its own key)",
        )
    policy = deployed.clients.kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    if any(allows(s, CLOUDWATCH, ["kms:Decrypt", "kms:GenerateDataKey"]) for s in statements(policy)):
        return ok(check, f"{CLOUDWATCH} may use the topic's key")
    return problem(
        check,
        f"the topic's key policy does not let {CLOUDWATCH} use it (kms:Decrypt, kms:GenerateDataKey*)",
        REDEPLOY,
    )
