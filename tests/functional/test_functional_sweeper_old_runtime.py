"""The sweeper on a Lambda runtime whose botocore predates contact tags in SearchContacts results.

botocore drops response members its model does not know: on botocore 1.36 a search result's `Tags` vanish,
and with them every case id carried as a contact tag. The function ships the Connect model it needs
(functions/case_linker/data/) and puts it first on botocore's data path. Here the real sweeper runs in a
separate interpreter whose boto3/botocore come from requirements-runtime-oldest.txt, against moto and the
emulator over HTTP.
"""

from __future__ import annotations

import uuid

from tests.functional.conftest import run_on_oldest_runtime
from tests.functional.sweeper_rig import CASE_C, INSTANCE_ARN, Rig, contact_ids, finished

SCRIPT = """
import json
import botocore
from aws_lambda_powertools import Metrics
from case_linker.settings import SweeperSettings
from case_linker.sweeper import build_sweeper
from tests.functional.conftest import lambda_context
from tests.functional.sweeper_rig import FAST_SWEEP

plain = botocore.session.get_session().get_service_model("connect")
summary = plain.operation_model("SearchContacts").output_shape.members["Contacts"].member
app = build_sweeper(SweeperSettings.from_env(__import__("os").environ), tuning=FAST_SWEEP)
result = app.handle({}, lambda_context(), Metrics(namespace="CaseLinker", service="case-linker"))
print(json.dumps({"botocore": botocore.__version__, "plain_has_tags": "Tags" in summary.members, "result": result}))
"""


def test_given_a_runtime_botocore_without_contact_tags_when_swept_then_tag_case_ids_still_reach_the_linker(
    rig: Rig,
) -> None:
    tagged = finished(rig.emu, str(uuid.uuid4()), tag_case_id=CASE_C)
    env = {
        "CONNECT_INSTANCE_ARN": INSTANCE_ARN,
        "MAIN_QUEUE_URL": rig.queue_url,
        "IDEMPOTENCY_TABLE_NAME": rig.aws.table_name,
        "CASES_DOMAIN_ID": str(rig.settings.cases_domain_id),
        "CONNECT_SEARCH_RPS": "50",
    }

    report = run_on_oldest_runtime(SCRIPT, env)

    assert report["botocore"] == "1.36.0"
    assert report["plain_has_tags"] is False  # the runtime's own model would drop them
    messages = rig.enqueued()
    assert contact_ids(messages) == [tagged]
    assert messages[0]["detail"]["tags"] == {"caseId": CASE_C}
    rig.link(messages)
    assert rig.cases_of(tagged) == [CASE_C]
