"""How the chaos run judges the failing case's records, on made-up reconciliations (no pipeline).

GIVEN a failing-case input's ending in phase 1, WHEN the run judges it, THEN only the linker's own give-up with
the 5xx as the reason passes, except where the linker never had the last word: its last delivery was killed,
failed as a whole batch, or had its message taken by a second receive (the poller's duplicate), so SQS's redrive
was the only ending left.
"""

from __future__ import annotations

from typing import Any

import pytest

from local.chaos import failing_case_endings
from local.poller import PollerStats, RecordOutcome
from local.reconcile import InputResult, Outcome, Reconciliation


def reconciliation(*inputs: InputResult) -> Reconciliation:
    return Reconciliation(
        inputs=list(inputs),
        items_created=0,
        duplicates=0,
        duplicate_items=[],
        unattributed_items=0,
        dlq_by_code={},
        skips_by_reason={},
        drained=True,
        poller=PollerStats(),
        handler_metrics={},
    )


def failing(i: int, *, error_code: str | None, **fields: Any) -> InputResult:
    values: dict[str, Any] = {
        "outcome": Outcome.DEAD_LETTERED,
        "error_code": error_code,
        "deliveries": 4,
        "max_receive_count": 4,
        "last_delivery": RecordOutcome.FAILED.value,
    }
    values.update(fields)
    return InputResult(ref=i, name=f"failing-case-{i:05d}", route="sqs", **values)


def test_given_the_linkers_give_up_with_the_5xx_when_judged_then_it_passes() -> None:
    endings, wrong = failing_case_endings(
        reconciliation(failing(0, error_code="InternalServerException", last_delivery="deleted"))
    )

    assert wrong == []
    assert endings == {"given_up_with_reason": 1}


@pytest.mark.parametrize(
    ("last_delivery", "duplicated"),
    [(RecordOutcome.KILLED.value, False), (RecordOutcome.BATCH_FAILED.value, False), ("failed", True)],
)
def test_given_a_last_delivery_the_linker_could_not_answer_when_redriven_then_it_passes(
    last_delivery: str, duplicated: bool
) -> None:
    # GIVEN SQS's redrive after a killed or whole-batch-failed last delivery, or one whose message the poller
    # made visible again (the second receive went over maxReceiveCount; the claim then rightly refused)
    endings, wrong = failing_case_endings(
        reconciliation(
            failing(
                0,
                error_code="maxReceiveCount",
                last_delivery=last_delivery,
                last_delivery_duplicated=duplicated,
            )
        )
    )

    assert wrong == []
    assert endings == {"redriven_after_the_last_delivery_was_lost": 1}


@pytest.mark.parametrize(
    "result",
    [
        # the linker answered its last delivery (a hand-back) and left SQS to move it without a reason
        failing(0, error_code="maxReceiveCount"),
        failing(0, error_code="maxReceiveCount", last_delivery="deleted"),
        # given up, but with some other reason than the 5xx that kept failing it
        failing(0, error_code="UnexpectedError", last_delivery="deleted"),
        # never given up at all
        failing(0, error_code=None, outcome=Outcome.LINKED, last_delivery="deleted"),
        failing(0, error_code=None, outcome=Outcome.PENDING),
    ],
)
def test_given_any_other_ending_when_judged_then_it_fails_with_the_evidence(result: InputResult) -> None:
    other = InputResult(ref=1, name="request-00001", route="sqs", outcome=Outcome.DEAD_LETTERED)

    endings, wrong = failing_case_endings(reconciliation(result, other))

    assert sum(endings.values()) == 0
    assert wrong == [
        {
            "input": "failing-case-00000",
            "outcome": result.outcome.value,
            "error_code": result.error_code,
            "last_delivery": result.last_delivery,
            "last_delivery_duplicated": False,
        }
    ]
