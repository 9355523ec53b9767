"""Cold start: a fresh interpreter importing the handler and building its clients, vs boto3 and the same clients.

Each sample is a new process (`python -c`), so nothing is cached in memory; `.pyc` files are, as they are in a
Lambda deployment package. The first sample of each kind is a warm-up (it may compile) and is dropped; the two
kinds alternate so drift on a shared machine hits both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from local.pipeline import FUNCTIONS_DIR, REPO_ROOT

# Timed inside the child: the imports and the clients. `build_app` (settings, pacing, idempotency wiring) is
# timed separately: Lambda's first invocation pays it too, but the comparison is the clients.
HANDLER_SCRIPT = """
import json, os, time
t0 = time.perf_counter()
import case_linker.handler as h
t1 = time.perf_counter()
clients = h.build_clients(h.Tuning())
t2 = time.perf_counter()
from case_linker.settings import Settings
h.build_app(Settings.from_env(os.environ), clients)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "clients_s": t2 - t1, "wire_s": t3 - t2}))
"""

# The same five clients with the same settings as case_linker.handler.build_clients (Tuning defaults).
BOTO3_SCRIPT = """
import json, os, time
t0 = time.perf_counter()
import boto3
from botocore.config import Config
t1 = time.perf_counter()
session = boto3.session.Session()
def config(attempts, read_timeout=5.0):
    return Config(retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=2.0,
                  read_timeout=read_timeout, max_pool_connections=10)
clients = [session.client("connectcases", config=config(4)), session.client("connectcases", config=config(1)),
           session.client("connect", config=config(4)), session.client("sqs", config=config(3, 2.0)),
           session.client("dynamodb", config=config(3, 2.0))]
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "clients_s": t2 - t1, "wire_s": 0.0}))
"""

CHILD_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "CASES_DOMAIN_ID": "bench-domain",
    "DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:1/123456789012/bench-dlq",
    "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
    "POWERTOOLS_SERVICE_NAME": "case-linker",
    "POWERTOOLS_METRICS_NAMESPACE": "CaseLinker",
}


def _sample(script: str) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **CHILD_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(FUNCTIONS_DIR), str(REPO_ROOT)]),
    }
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own fixed script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    process_s = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"cold-start sample failed:\n{completed.stderr[-3000:]}")
    timings: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    timings["total_s"] = timings["import_s"] + timings["clients_s"]
    timings["process_s"] = process_s
    return timings


def run_coldstart(repeats: int) -> dict[str, Any]:
    """`repeats` measured samples of each kind (plus one warm-up each); medians and the ratio."""
    samples: dict[str, list[dict[str, float]]] = {"handler": [], "boto3": []}
    for index in range(repeats + 1):
        kinds = ("handler", "boto3") if index % 2 == 0 else ("boto3", "handler")
        for kind in kinds:
            sample = _sample(HANDLER_SCRIPT if kind == "handler" else BOTO3_SCRIPT)
            if index > 0:
                samples[kind].append(sample)
    medians = {
        kind: {key: statistics.median(s[key] for s in values) for key in values[0]}
        for kind, values in samples.items()
    }
    return {
        "ratio_vs_boto3": medians["handler"]["total_s"] / medians["boto3"]["total_s"],
        "details": {
            "compared": "import case_linker.handler + build_clients() vs import boto3 + the same five clients",
            "repeats": repeats,
            "median_s": medians,
            "ratio_with_wiring": (medians["handler"]["total_s"] + medians["handler"]["wire_s"])
            / medians["boto3"]["total_s"],
            "samples": samples,
        },
    }
