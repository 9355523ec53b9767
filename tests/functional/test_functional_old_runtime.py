"""The handler on a Lambda runtime whose botocore predates BatchCreateRelatedItem, referenceIds and merges.

The function ships the Cases service model it needs (functions/case_linker/data/) and puts it first on
botocore's data path. Here the real handler runs in a separate interpreter whose boto3/botocore come from
requirements-runtime-oldest.txt (installed by `make install` into .venv/runtime-oldest), against moto and the
emulator over HTTP.
"""

from __future__ import annotations

import json

from emulator import Emulator
from tests.functional.conftest import (
    DOMAIN_ID,
    EXPECTED,
    REPO,
    Aws,
    comment_request,
    run_on_oldest_runtime,
    sqs_event,
    sqs_record,
)

PINNED = {
    line.split("==")[0]: line.split("==")[1].strip()
    for line in (REPO / "requirements-runtime-oldest.txt").read_text().splitlines()
    if "==" in line and not line.startswith("#")
}
COMMENT_CASE = EXPECTED["events"]["request-comment.json"]["case"]

SCRIPT = """
import json, sys
import botocore
from case_linker.handler import build_app
from case_linker.settings import Settings
from tests.functional.conftest import FAST, lambda_context

settings = Settings.from_env(__import__("os").environ)
plain = botocore.session.get_session().get_service_model("connectcases").operation_names
app = build_app(settings, tuning=FAST)
result = app.run_batch(json.loads(sys.stdin.read()), lambda_context())
print(json.dumps({"botocore": botocore.__version__, "plain_has_batch": "BatchCreateRelatedItem" in plain,
                  "response": result.response}))
"""


def test_given_a_runtime_botocore_without_the_batch_api_when_a_comment_is_handled_then_it_is_created_with_it(
    aws: Aws, emu: Emulator
) -> None:
    body = comment_request(COMMENT_CASE, "From an old runtime")
    env = {
        "CASES_DOMAIN_ID": DOMAIN_ID,
        "DEAD_LETTER_QUEUE_URL": aws.dlq_url,
        "IDEMPOTENCY_TABLE_NAME": aws.table_name,
        "CASES_MAX_RPS": "100",
    }

    report = run_on_oldest_runtime(SCRIPT, env, stdin=json.dumps(sqs_event(sqs_record(body))))

    assert report["botocore"] == PINNED["botocore"]
    assert report["plain_has_batch"] is False  # the runtime's own model lacks the operation
    assert report["response"] == {"batchItemFailures": []}
    assert [c.operation for c in emu.calls] == ["BatchCreateRelatedItem"]
    [item] = emu.related_items(DOMAIN_ID, COMMENT_CASE)
    assert item.content == {"comment": {"body": "From an old runtime", "contentType": "Text/Plain"}}
