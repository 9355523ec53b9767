"""After a deploy: the alarms can reach someone. CloudWatch alarms publish to the topic as the service principal
cloudwatch.amazonaws.com, so both the topic policy and the policy of the topic's key must let it in: a topic
policy that only denies plain HTTP replaces SNS's default one, and the AWS-managed aws/sns key lets no service in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.utils import ArnParser, InvalidArnException

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


def allows(
    statement: Mapping[str, Any],
    service: str,
    actions: Iterable[str],
    source: Mapping[str, str] | None = None,
) -> bool:
    """An Allow statement naming the `service` principal and covering every one of `actions` (IAM wildcards:
    `sns:*`, `kms:GenerateDataKey*`; action names are case-insensitive), whose conditions on `aws:SourceAccount`
    and `aws:SourceArn` admit the `source` values given (conditions on other keys are taken to hold)."""
    if statement.get("Effect") != "Allow":
        return False
    if source is not None and not _admits(statement.get("Condition"), source):
        return False
    principal = statement.get("Principal", {})
    if service not in (_as_list(principal.get("Service", [])) if isinstance(principal, dict) else []):
        return False
    granted = [str(action).lower() for action in _as_list(statement.get("Action", []))]

    def covered(action: str) -> bool:
        return any(g == action or (g.endswith("*") and action.startswith(g[:-1])) for g in granted)

    return all(covered(action.lower()) for action in actions)


def alarm_source(topic_arn: str) -> dict[str, str]:
    """The request context of a CloudWatch alarm of the topic's account and Region publishing to it: what the
    topic and key policies' conditions see (the alarm's name is left to match any)."""
    try:
        arn = ArnParser().parse_arn(topic_arn)
    except InvalidArnException:
        return {}
    return {
        "aws:SourceAccount": arn["account"],
        "aws:SourceArn": f"arn:{arn['partition']}:cloudwatch:{arn['region']}:{arn['account']}:alarm:*",
    }


def _admits(conditions: Any, source: Mapping[str, str]) -> bool:
    """Whether the string and ARN conditions on the `source` keys hold for its values. aws:SourceArn's alarm name
    is not known, so an ARN condition is compared on its partition, service, Region and account only."""
    if not isinstance(conditions, Mapping):
        return True
    for operator, tests in conditions.items():
        if not isinstance(tests, Mapping):
            continue
        test = str(operator).rpartition(":")[2].removesuffix("IfExists")
        for key, wanted in tests.items():
            name = str(key).lower()
            value = next((v for k, v in source.items() if k.lower() == name), None)
            if value is None:
                continue
            patterns = [str(w) for w in _as_list(wanted)]
            arn = name == "aws:sourcearn"
            if arn:
                value, patterns = _arn_head(value), [_arn_head(p) for p in patterns]
            if not _holds(test, value, patterns, exact=not arn):
                return False
    return True


def _holds(test: str, value: str, patterns: list[str], *, exact: bool) -> bool:
    """One condition operator on one value; an operator not read here is taken to hold."""
    if test in ("StringEquals", "ArnEquals", "StringLike", "ArnLike"):
        equals = exact and test.endswith("Equals")
        return any(value == p if equals else _like(value, p) for p in patterns)
    if test == "StringEqualsIgnoreCase":
        return value.lower() in [p.lower() for p in patterns]
    if test in ("StringNotEquals", "ArnNotEquals"):
        return value not in patterns
    return True


def _arn_head(arn: str) -> str:
    """`arn:partition:service:region:account`, without the resource."""
    return ":".join(arn.split(":")[:5])


def _like(value: str, pattern: str) -> bool:
    """IAM's StringLike/ArnLike: `*` any run of characters, `?` any one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


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
    source = alarm_source(deployed.output(out.ALARM_TOPIC_ARN))
    allowing = [s for s in statements(policy) if allows(s, CLOUDWATCH, ["sns:Publish"], source)]
    if not allowing:
        return problem(
            check,
            f"the alarm topic's policy does not let {CLOUDWATCH} publish for this account's alarms in this "
            "Region: every alarm fires into nothing",
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
        return problem(
            check,
            "the alarm topic is not encrypted (the stack encrypts it with its own key)",
            f"{REDEPLOY} (it encrypts the topic with its own key, which CloudWatch may use)",
        )
    if key.endswith("alias/aws/sns"):
        return problem(
            check,
            "the topic is encrypted with the AWS-managed aws/sns key, which CloudWatch cannot use",
            f"{REDEPLOY} (it encrypts the topic with its own key)",
        )
    policy = deployed.clients.kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    source = alarm_source(deployed.output(out.ALARM_TOPIC_ARN))
    wanted = ["kms:Decrypt", "kms:GenerateDataKey"]
    if any(allows(s, CLOUDWATCH, wanted, source) for s in statements(policy)):
        return ok(check, f"{CLOUDWATCH} may use the topic's key")
    return problem(
        check,
        f"the topic's key policy does not let {CLOUDWATCH} use it (kms:Decrypt, kms:GenerateDataKey*) for this "
        "account's alarms in this Region",
        REDEPLOY,
    )
