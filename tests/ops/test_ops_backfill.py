"""`backfill` against moto (SQS, DynamoDB) and the emulator (Connect SearchContacts), over HTTP: dry run,
what it enqueues and skips, the API's limits, the checkpoint (resuming, safety), and usage errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from case_linker.contact_search import found_contact
from case_linker.ledger import DEAD_LETTERED, LINKED, NO_CASE_ID, Ledger
from case_linker.mapping import LinkContact, classify
from case_linker.settings import Settings
from case_linker.sweeper import contact_message

from emulator import Emulator, EmulatorConfig, Quota
from ops import backfill as backfill_module
from ops.context import Overrides
from ops.errors import ExitCode
from tests.ops.conftest import Invoke, json_result
from tests.ops.documented import documented, record_keys
from tests.ops.helpers import StackQueues, depth, drain

INSTANCE_ID = "bac0f111-0000-4000-8000-000000000001"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"
TABLE = "case-linker-idempotency"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SINCE = NOW - dt.timedelta(days=3)
UNTIL = NOW - dt.timedelta(hours=1)
# The summary's keys after its counts: where the checkpoint stands, and whether the run stopped part-way.
STOPPED_KEYS = ["done_until", "complete", "stopped", "stopped_by"]


@pytest.fixture(scope="module")
def _emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(throttling=False), port=0) as server:
        yield server


@pytest.fixture
def emu(_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Connect's SearchContacts on loopback (every other service is moto, through AWS_ENDPOINT_URL)."""
    _emulator.configure(
        throttling=False, contact_search_max_results=10_000, contact_search_total_capped=False
    )
    _emulator.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECT", _emulator.endpoint_url)
    return _emulator


@pytest.fixture
def ledger(moto_endpoint: str) -> Ledger:
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Ledger(dynamodb, TABLE)


def ended(emu: Emulator, at: dt.datetime, **details: Any) -> str:
    contact_id = str(uuid.uuid4())
    emu.put_contact(
        INSTANCE_ID,
        contact_id,
        {"caseId": "c-1"},
        initiation_time=at - dt.timedelta(minutes=4),
        disconnect_time=at,
        **details,
    )
    return contact_id


def spread(emu: Emulator, count: int) -> list[str]:
    """`count` contacts that ended inside [SINCE, UNTIL], oldest first."""
    step = (UNTIL - SINCE) / (count + 1)
    return [ended(emu, SINCE + step * (i + 1)) for i in range(count)]


def backfill(run_cli: Invoke, queues: StackQueues, *args: str, **kw: Any) -> Any:
    return run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", INSTANCE_ARN, "--table-name", TABLE,
            "--since", SINCE.isoformat(), "--until", UNTIL.isoformat(), "--rate", "1000", "--search-rate", "100",
            *args,
        ],
        **kw,
    )  # fmt: skip


def enqueued_ids(sqs: Any, queues: StackQueues) -> list[str]:
    return [json.loads(m["Body"])["detail"]["contactId"] for m in drain(sqs, queues.main)]


# --- what it does ---------------------------------------------------------------------------------------------


def test_dry_run_counts_what_it_would_enqueue_and_enqueues_nothing(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    ids = spread(emu, 12)
    ledger.record_contact(INSTANCE_ID, ids[0], LINKED, "c-1")
    checkpoint = tmp_path / "backfill.json"

    result = backfill(run_cli, queues, "--dry-run", "--checkpoint", str(checkpoint), "--output", "json")

    document = json_result(result)
    assert result.exit_code == 0, result.output
    assert (document["found"], document["already_handled"], document["enqueued"]) == (12, 1, 11)
    assert document["dry_run"] is True
    assert depth(sqs, queues.main) == (0, 0)
    assert not checkpoint.exists()


def test_its_json_and_text_are_as_docs_operations_md_documents_them(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    spread(emu, 3)
    shape = documented()["backfill"]

    document = json_result(backfill(run_cli, queues, "--dry-run", "--output", "json"))
    text = backfill(run_cli, queues, "--dry-run", "--output", "text")

    assert list(document) == list(shape)
    assert list(document["this_run"]) == record_keys(shape, "this_run")
    fields = ["searches", "found", "already_handled", "enqueued", *STOPPED_KEYS]
    assert text.stdout.splitlines() == ["\t".join(str(document[k]) for k in fields)]


def test_it_enqueues_each_finished_contact_of_the_range_once_and_skips_what_the_ledger_holds_as_handled(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    ids = spread(emu, 230)  # three pages of 100
    before, after = ended(emu, SINCE - dt.timedelta(minutes=5)), ended(emu, UNTIL + dt.timedelta(minutes=5))
    ledger.record_contact(INSTANCE_ID, ids[0], LINKED, "c-1")
    ledger.record_contact(INSTANCE_ID, ids[1], DEAD_LETTERED)
    ledger.record_contact(INSTANCE_ID, ids[2], NO_CASE_ID)  # a case id may have come since: enqueued again

    result = backfill(run_cli, queues, "--yes", "--output", "json")

    assert result.exit_code == 0, result.output
    got = enqueued_ids(sqs, queues)
    assert sorted(got) == sorted(ids[2:])
    assert before not in got
    assert after not in got
    document = json_result(result)
    assert (document["found"], document["already_handled"], document["enqueued"]) == (230, 2, 228)
    assert document["searches"] >= 3
    assert {c.params["MaxResults"] for c in emu.calls_to("SearchContacts")} == {100}


def test_its_message_is_the_sweepers_with_the_backfill_source_and_the_linker_reads_it_so(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    at = SINCE + dt.timedelta(hours=2)
    contact_id = ended(
        emu, at, channel="CHAT", initiation_method="API", tags={"caseId": "c-9"}, queue_id="q-1",
        agent_arn=f"{INSTANCE_ARN}/agent/a-1",
    )  # fmt: skip

    assert backfill(run_cli, queues, "--yes").exit_code == 0
    [message] = drain(sqs, queues.main)

    body = json.loads(message["Body"])
    summary = boto3.client("connect", endpoint_url=emu.endpoint_url, region_name="us-east-1").search_contacts(
        InstanceId=INSTANCE_ID,
        TimeRange={"Type": "DISCONNECT_TIMESTAMP", "StartTime": SINCE, "EndTime": UNTIL},
    )["Contacts"][0]
    sweeper = json.loads(
        contact_message(found_contact(summary), instance_arn=INSTANCE_ARN, source="x", now=NOW)
    )
    assert body["source"] == "case-linker.backfill"
    assert body["detail"] == sweeper["detail"]
    assert {k: body[k] for k in ("detail-type", "account", "region", "resources")} == {
        k: sweeper[k] for k in ("detail-type", "account", "region", "resources")
    }
    decision = classify(message["Body"], Settings("d", "https://q", "tbl"))
    assert isinstance(decision, LinkContact)
    assert (decision.origin, decision.detail.contactId, decision.tag_case_id) == (
        "backfill",
        contact_id,
        "c-9",
    )


@pytest.mark.parametrize("total_capped", [False, True], ids=["total-of-all-matches", "total-capped"])
def test_a_range_holding_more_than_one_search_returns_is_searched_on_from_the_last_contact_found(
    run_cli: Invoke,
    sqs: Any,
    queues: StackQueues,
    emu: Emulator,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    total_capped: bool,
) -> None:
    # AWS: the first 10,000 results of a search; whether TotalCount then counts every match is not documented
    emu.configure(contact_search_max_results=20, contact_search_total_capped=total_capped)
    monkeypatch.setattr(backfill_module, "SEARCH_RESULT_LIMIT", 20)
    ids = spread(emu, 45)
    same_instant = [ended(emu, SINCE + (UNTIL - SINCE) / 46 * 20) for _ in range(3)]

    result = backfill(run_cli, queues, "--yes", "--output", "json")

    got = enqueued_ids(sqs, queues)
    assert sorted(got) == sorted(ids + same_instant)
    assert len(got) == len(set(got))
    assert json_result(result)["enqueued"] == 48


def test_searches_are_paced_below_the_search_rate(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    emu.configure(throttling=True, quotas={"SearchContacts": Quota(rate=2.0, burst=1)})
    spread(emu, 250)

    result = backfill(run_cli, queues, "--yes", "--search-rate", "1.5")

    assert result.exit_code == 0, result.output
    calls = emu.calls_to("SearchContacts")
    assert [c.status for c in calls] == [200] * len(calls)
    assert calls[-1].monotonic - calls[0].monotonic >= (len(calls) - 1) / 1.5 - 0.05


# --- the checkpoint ---------------------------------------------------------------------------------------


class InterruptingSqs:
    """moto's SQS, until the operator presses Ctrl-C during the `after`-th SendMessageBatch."""

    def __init__(self, real: Any, after: int) -> None:
        self._real = real
        self._left = after

    def send_message_batch(self, **kwargs: Any) -> Any:
        self._left -= 1
        if self._left == 0:
            raise KeyboardInterrupt
        return self._real.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_an_interrupted_backfill_continues_from_its_checkpoint_without_gaps_or_repeats(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    # 15 results a search: the interruption comes mid-range, after a search was continued once.
    emu.configure(contact_search_max_results=15)
    ids = spread(emu, 95)
    checkpoint = tmp_path / "backfill.json"

    stopped = backfill(
        run_cli, queues, "--yes", "--checkpoint", str(checkpoint),
        overrides=Overrides(clients={"sqs": InterruptingSqs(sqs, after=4)}),
    )  # fmt: skip

    assert stopped.exit_code == ExitCode.INTERRUPTED
    assert "run the same command to continue" in stopped.stderr
    assert stat.S_IMODE(os.stat(checkpoint).st_mode) == 0o600
    first = enqueued_ids(sqs, queues)
    assert len(first) == 25  # batches of 10 and 5 from the first search, then 10 from the next
    saved = json.loads(checkpoint.read_text())
    assert len(saved["current"]) == 11  # the next search's 10, and the one it started from

    resumed = backfill(run_cli, queues, "--yes", "--checkpoint", str(checkpoint), "--output", "json")

    assert resumed.exit_code == 0, resumed.output
    second = enqueued_ids(sqs, queues)
    assert sorted(first + second) == sorted(ids)
    document = json_result(resumed)
    assert document["enqueued"] == 95
    assert document["this_run"]["enqueued"] == 95 - len(first)
    again = backfill(run_cli, queues, "--yes", "--checkpoint", str(checkpoint))
    assert again.exit_code == ExitCode.NOTHING_TO_DO


def saved_checkpoint(path: Path, since: dt.datetime, done_until: dt.datetime) -> None:
    """A checkpoint an earlier run of a backfill from `since` to UNTIL left at `done_until`."""
    document = {
        "version": 1, "instanceArn": INSTANCE_ARN, "since": since.isoformat(), "until": UNTIL.isoformat(),
        "doneUntil": done_until.isoformat(), "current": [], "counts": {"found": 7, "enqueued": 7},
    }  # fmt: skip
    path.write_text(json.dumps(document))
    path.chmod(0o600)


def test_a_backfill_whose_since_has_aged_past_two_years_continues_from_its_checkpoint(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    # GIVEN a backfill started when its --since was within two years, done up to SINCE; --since is now older
    since = NOW - dt.timedelta(weeks=105)
    checkpoint = tmp_path / "backfill.json"
    saved_checkpoint(checkpoint, since, SINCE)
    ids = spread(emu, 3)

    # WHEN the same command is run again
    result = run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", INSTANCE_ARN, "--table-name", TABLE,
            "--since", since.isoformat(), "--until", UNTIL.isoformat(), "--rate", "1000", "--search-rate", "100",
            "--checkpoint", str(checkpoint), "--yes", "--output", "json",
        ]
    )  # fmt: skip

    # THEN it searches only what is left, which Connect can still search
    assert result.exit_code == 0, result.stderr
    assert sorted(enqueued_ids(sqs, queues)) == sorted(ids)
    assert json_result(result)["enqueued"] == 7 + 3


def test_a_checkpoint_that_continues_from_more_than_two_years_ago_is_a_one_line_usage_error(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, tmp_path: Path
) -> None:
    since = NOW - dt.timedelta(weeks=110)
    checkpoint = tmp_path / "backfill.json"
    saved_checkpoint(checkpoint, since, NOW - dt.timedelta(weeks=105))

    result = run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", INSTANCE_ARN, "--since", since.isoformat(),
            "--until", UNTIL.isoformat(), "--checkpoint", str(checkpoint), "--yes",
        ]
    )  # fmt: skip

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("error: the checkpoint continues from ")
    assert "two years" in result.stderr
    assert depth(sqs, queues.main) == (0, 0)


def test_a_checkpoint_path_that_is_a_symbolic_link_is_refused_before_anything_is_enqueued(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    spread(emu, 3)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    link = tmp_path / "backfill.json"
    link.symlink_to(target)

    result = backfill(run_cli, queues, "--yes", "--checkpoint", str(link))

    assert result.exit_code == ExitCode.USAGE
    assert "symbolic link" in result.stderr
    assert target.read_text() == "{}"
    assert depth(sqs, queues.main) == (0, 0)


def test_a_checkpoint_of_another_backfill_is_refused(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    spread(emu, 3)
    checkpoint = tmp_path / "backfill.json"
    assert backfill(run_cli, queues, "--yes", "--checkpoint", str(checkpoint)).exit_code == 0

    result = run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", INSTANCE_ARN, "--since", SINCE.isoformat(),
            "--until", (UNTIL - dt.timedelta(minutes=1)).isoformat(), "--checkpoint", str(checkpoint), "--yes",
        ]
    )  # fmt: skip

    assert result.exit_code == ExitCode.USAGE
    assert "belongs to another backfill" in result.stderr


# --- asking first, and user mistakes ----------------------------------------------------------------------


def test_it_asks_before_enqueueing_naming_the_queue_and_the_range(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    spread(emu, 3)

    result = backfill(run_cli, queues, overrides=Overrides(interactive=True), input="n\n")

    assert result.exit_code == ExitCode.INTERRUPTED
    assert "case-linker-main" in result.stderr
    assert SINCE.isoformat() in result.stderr
    assert depth(sqs, queues.main) == (0, 0)


def test_an_instant_spanning_two_pages_where_a_search_is_continued_is_enqueued_once(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    # GIVEN a search that returns its first 101 results (AWS: 10,000), 100 a page, and three contacts that ended
    # at one instant straddling the two pages
    emu.configure(contact_search_max_results=101)
    base = SINCE + dt.timedelta(hours=1)
    early = [ended(emu, base + dt.timedelta(seconds=i)) for i in range(99)]
    instant = base + dt.timedelta(seconds=500)
    same = [ended(emu, instant) for _ in range(3)]
    late = [ended(emu, instant + dt.timedelta(seconds=10 + i)) for i in range(5)]

    result = backfill(run_cli, queues, "--yes", "--output", "json")

    # THEN each contact is enqueued once, and counted once
    assert result.exit_code == 0, result.output
    got = enqueued_ids(sqs, queues)
    assert sorted(got) == sorted(early + same + late)
    assert json_result(result)["found"] == len(got)


def test_a_contact_that_ended_exactly_at_a_day_boundary_is_enqueued_once(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    # GIVEN a contact that ended where one day's search ends and the next begins (both ends are inclusive)
    contact = ended(emu, SINCE + dt.timedelta(days=1))

    result = backfill(run_cli, queues, "--yes", "--output", "json")

    assert result.exit_code == 0, result.output
    assert enqueued_ids(sqs, queues) == [contact]
    assert json_result(result)["found"] == 1


@pytest.mark.parametrize(
    ("since", "until", "complaint"),
    [
        (UNTIL.isoformat(), SINCE.isoformat(), "--since must be before --until"),
        (SINCE.isoformat(), (NOW + dt.timedelta(hours=1)).isoformat(), "in the future"),
        ((NOW - dt.timedelta(days=800)).isoformat(), SINCE.isoformat(), "two years"),
        # 729 days is within 2 x 365, but not within the 104 weeks SearchContacts searches: a usage error now,
        # not an InvalidParameterException in the middle of the run
        ((NOW - dt.timedelta(days=729)).isoformat(), SINCE.isoformat(), "two years"),
        ("last tuesday", UNTIL.isoformat(), "not an ISO-8601 time"),
    ],
    ids=["reversed", "future", "older-than-two-years", "older-than-104-weeks", "not-iso"],  # the times move
)
def test_a_range_the_api_cannot_search_is_a_one_line_usage_error(
    run_cli: Invoke, queues: StackQueues, since: str, until: str, complaint: str
) -> None:
    result = run_cli(
        [
            "--queue-url",
            queues.main,
            "backfill",
            "--instance-arn",
            INSTANCE_ARN,
            "--since",
            since,
            "--until",
            until,
        ]
    )

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert complaint in result.stderr


def test_without_an_instance_it_says_which_option_is_missing(run_cli: Invoke, queues: StackQueues) -> None:
    result = run_cli(
        ["--queue-url", queues.main, "backfill", "--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    )

    assert result.exit_code == ExitCode.USAGE
    assert "--instance-arn" in result.stderr


def test_an_instance_that_does_not_exist_points_at_instance_arn(
    run_cli: Invoke, queues: StackQueues, emu: Emulator
) -> None:
    spread(emu, 2)  # contacts of INSTANCE_ID only
    other = INSTANCE_ARN.replace(INSTANCE_ID, "bac0f111-0000-4000-8000-0000000000ff")

    result = run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", other, "--since", SINCE.isoformat(),
            "--until", UNTIL.isoformat(), "--dry-run",
        ]
    )  # fmt: skip

    assert result.exit_code == ExitCode.NOT_FOUND
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "SearchContacts" in line
    assert "ResourceNotFoundException" in line
    assert "--instance-arn" in line
    assert "--stack-name" not in line
    assert "queue URLs" not in line


# --- search limits, pacing, throttling, global options (audit of issue 12) ----------------------------------


def test_a_search_cut_off_whose_last_page_is_empty_is_still_searched_on(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    emu.configure(contact_search_max_results=20, contact_search_trailing_empty_page=True)
    monkeypatch.setattr(backfill_module, "SEARCH_RESULT_LIMIT", 20)
    ids = spread(emu, 90)  # about 30 a day: each day's search is cut off after 20

    result = backfill(run_cli, queues, "--yes", "--output", "json")

    assert result.exit_code == 0, result.output
    assert sorted(enqueued_ids(sqs, queues)) == sorted(ids)


def test_global_options_after_the_command_work_as_before_it(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    spread(emu, 3)
    after = backfill(run_cli, queues, "--dry-run", "--output", "json", "--region", "us-east-1")
    assert after.exit_code == 0, after.output
    assert json_result(after)["found"] == 3
    table = backfill(run_cli, queues, "--dry-run", "--output", "table")
    assert table.exit_code == 0, table.output
    assert "found" in table.stdout


def test_searchcontacts_throttled_past_the_retries_fails_in_one_line_and_the_checkpoint_continues(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    ids = spread(emu, 30)
    emu.configure(throttling=True, quotas={"SearchContacts": Quota(rate=0.001, burst=2)})
    checkpoint = tmp_path / "cp.json"

    failed = backfill(run_cli, queues, "--yes", "--checkpoint", str(checkpoint))

    assert failed.exit_code == ExitCode.FAILED
    assert len(failed.stderr.strip().splitlines()) == 1
    first = enqueued_ids(sqs, queues)
    emu.configure(throttling=False)
    resumed = backfill(run_cli, queues, "--yes", "--checkpoint", str(checkpoint))
    assert resumed.exit_code == 0, resumed.output
    assert sorted(first + enqueued_ids(sqs, queues)) == sorted(ids)
    assert json.loads(checkpoint.read_text())["doneUntil"]


def test_more_contacts_at_one_instant_than_a_search_returns_is_never_a_silent_success(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    emu.configure(contact_search_max_results=20)
    monkeypatch.setattr(backfill_module, "SEARCH_RESULT_LIMIT", 20)
    at = SINCE + dt.timedelta(hours=5)
    for _ in range(25):
        ended(emu, at)

    result = backfill(run_cli, queues, "--yes", "--checkpoint", str(tmp_path / "cp.json"))

    assert result.exit_code == ExitCode.FAILED, result.output
    [line] = result.stderr.strip().splitlines()
    assert at.isoformat() in line
    assert len(enqueued_ids(sqs, queues)) == 20


def test_searches_after_a_long_send_are_still_paced_below_the_search_rate(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    # GIVEN a busy first day (its sends take a few seconds at --rate) and ten quiet days after it
    since, until = UNTIL - dt.timedelta(days=11), UNTIL
    for i in range(20):
        ended(emu, since + dt.timedelta(minutes=10 + i))
    emu.configure(throttling=True, quotas={"SearchContacts": Quota(rate=2.0, burst=1)})

    result = run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", INSTANCE_ARN, "--table-name", TABLE,
            "--since", since.isoformat(), "--until", until.isoformat(), "--rate", "4", "--search-rate", "1.5",
            "--yes",
        ]
    )  # fmt: skip

    # THEN the quiet days' searches do not rush out together: none is throttled
    assert result.exit_code == 0, result.output
    calls = emu.calls_to("SearchContacts")
    assert len(calls) >= 11
    assert [c.status for c in calls] == [200] * len(calls)


# --- a run stopped part-way, a dry run on a checkpoint, RFC 3339 times, the prompt (operator-facing audit) -----


class FailingSqs:
    """moto's SQS, until the `after`-th SendMessageBatch is refused (past botocore's retries)."""

    def __init__(self, real: Any, after: int) -> None:
        self._real = real
        self._left = after

    def send_message_batch(self, **kwargs: Any) -> Any:
        self._left -= 1
        if self._left <= 0:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "SendMessageBatch"
            )
        return self._real.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_backfill_stopped_by_a_refused_search_prints_its_summary_marked_not_complete_then_the_error(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    ids = spread(emu, 30)  # about ten a day: the third day's search is refused
    emu.configure(throttling=True, quotas={"SearchContacts": Quota(rate=0.001, burst=2)})
    checkpoint = tmp_path / "cp.json"

    result = backfill(run_cli, queues, "--yes", "--checkpoint", str(checkpoint), "--output", "json")

    assert result.exit_code == ExitCode.FAILED
    document = json_result(result)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert "SearchContacts" in line
    assert result.output.strip().splitlines()[-1] == line  # the summary first
    enqueued = len(enqueued_ids(sqs, queues))
    assert 0 < enqueued < len(ids)
    assert document["this_run"] == {
        "searches": 2, "found": enqueued, "already_handled": 0, "enqueued": enqueued,
    }  # fmt: skip
    assert document["enqueued"] == enqueued
    assert document["done_until"] == json.loads(checkpoint.read_text())["doneUntil"]
    assert (document["complete"], document["stopped"], document["stopped_by"]) == (
        False,
        "error",
        "ThrottlingException",
    )


@pytest.mark.parametrize("output", ["text", "table"])
def test_a_backfill_stopped_by_a_failed_send_prints_its_counts_in_the_chosen_output_then_the_error(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, output: str
) -> None:
    for i in range(25):  # one day's search: batches of 10, 10, 5; the third is refused
        ended(emu, SINCE + dt.timedelta(minutes=10 + i))

    result = backfill(
        run_cli, queues, "--yes", "--output", output,
        overrides=Overrides(clients={"sqs": FailingSqs(sqs, after=3)}),
    )  # fmt: skip

    assert result.exit_code == ExitCode.FAILED
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert "ServiceUnavailable" in line
    assert len(enqueued_ids(sqs, queues)) == 20
    if output == "text":
        [fields] = [row.split("\t") for row in result.stdout.splitlines()]
        assert fields[:4] == ["1", "25", "0", "20"]  # searches, found, already handled, enqueued
        assert fields[5:] == ["False", "error", "ServiceUnavailable"]
    else:
        assert "not complete" in result.stdout
        assert result.output.strip().splitlines()[-1] == line  # the summary first


def test_an_interrupted_backfill_prints_what_it_did_so_far_marked_not_complete(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    for i in range(25):
        ended(emu, SINCE + dt.timedelta(minutes=10 + i))
    checkpoint = tmp_path / "cp.json"

    stopped = backfill(
        run_cli, queues, "--yes", "--checkpoint", str(checkpoint), "--output", "json",
        overrides=Overrides(clients={"sqs": InterruptingSqs(sqs, after=2)}),
    )  # fmt: skip

    assert stopped.exit_code == ExitCode.INTERRUPTED
    document = json.loads(stopped.stdout)
    assert (document["complete"], document["stopped"], document["stopped_by"]) == (False, "interrupted", None)
    assert document["this_run"]["enqueued"] == document["enqueued"] == 10
    assert document["done_until"] == json.loads(checkpoint.read_text())["doneUntil"]
    assert "run the same command to continue" in stopped.stderr


def test_a_finished_backfill_is_reported_complete_up_to_its_until(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    spread(emu, 3)

    document = json_result(backfill(run_cli, queues, "--yes", "--output", "json"))

    assert [document[k] for k in STOPPED_KEYS] == [UNTIL.isoformat(), True, None, None]


def test_a_dry_run_on_a_partly_done_checkpoint_counts_only_what_it_would_do_apart_from_earlier_runs(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    # GIVEN a checkpoint of earlier runs that enqueued 7 contacts up to a day after SINCE
    checkpoint = tmp_path / "backfill.json"
    done_until = SINCE + dt.timedelta(days=1)
    saved_checkpoint(checkpoint, SINCE, done_until)
    saved = checkpoint.read_text()
    later = [ended(emu, done_until + dt.timedelta(hours=1 + i)) for i in range(4)]

    # WHEN a dry run of the same backfill is run
    result = backfill(run_cli, queues, "--dry-run", "--checkpoint", str(checkpoint), "--output", "json")

    # THEN its counts are what it would do, never added to what the earlier runs did
    assert result.exit_code == 0, result.output
    document = json_result(result)
    assert (document["found"], document["enqueued"]) == (len(later), len(later))
    assert document["this_run"]["enqueued"] == len(later)
    assert "earlier runs" in result.stderr
    assert "7 enqueued" in result.stderr
    assert checkpoint.read_text() == saved
    assert depth(sqs, queues.main) == (0, 0)


def test_rfc_3339_times_with_a_lowercase_t_and_z_are_accepted(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    spread(emu, 3)
    lower = "%Y-%m-%dt%H:%M:%Sz"

    result = run_cli(
        [
            "--queue-url", queues.main, "backfill", "--instance-arn", INSTANCE_ARN, "--table-name", TABLE,
            "--since", SINCE.strftime(lower), "--until", UNTIL.strftime(lower), "--search-rate", "100",
            "--dry-run", "--output", "json",
        ]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    document = json_result(result)
    assert (document["since"], document["until"], document["found"]) == (
        SINCE.isoformat(),
        UNTIL.isoformat(),
        3,
    )


def test_its_prompt_names_the_range_instance_queue_and_checkpoint_and_why_it_gives_no_count(
    run_cli: Invoke, sqs: Any, queues: StackQueues, emu: Emulator, ledger: Ledger, tmp_path: Path
) -> None:
    spread(emu, 3)
    checkpoint = tmp_path / "backfill.json"
    done_until = SINCE + dt.timedelta(days=1)
    saved_checkpoint(checkpoint, SINCE, done_until)

    result = backfill(
        run_cli, queues, "--checkpoint", str(checkpoint), overrides=Overrides(interactive=True), input="n\n"
    )

    assert result.exit_code == ExitCode.INTERRUPTED
    [prompt] = [line for line in result.stderr.splitlines() if "[y/N]" in line]
    assert f"{done_until.isoformat()} to {UNTIL.isoformat()}" in prompt
    assert "case-linker-main (account 123456789012, Region us-east-1)" in prompt
    assert INSTANCE_ID in prompt
    assert f"checkpoint {checkpoint}" in prompt
    assert "--dry-run" in prompt  # how many is only known by searching: a dry run counts them
    assert depth(sqs, queues.main) == (0, 0)


def test_its_prompt_says_when_there_is_no_checkpoint(
    run_cli: Invoke, queues: StackQueues, emu: Emulator, ledger: Ledger
) -> None:
    result = backfill(run_cli, queues, overrides=Overrides(interactive=True), input="n\n")

    [prompt] = [line for line in result.stderr.splitlines() if "[y/N]" in line]
    assert "no --checkpoint" in prompt
