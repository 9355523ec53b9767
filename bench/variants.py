"""EXPERIMENTS, NOT PRODUCT CODE: the real linker with one timing knob changed, to test a suggested fix.

`bench.variants.lambda_handler` is case_linker's own entry point, built with `Tuning(bucket_capacity=...)` from
BENCH_BUCKET_CAPACITY (tokens per Cases operation per execution environment). Used only by
`python -m bench --bucket-capacity X`, reported beside the product's own figures, never instead of them.
"""

from __future__ import annotations

import os

from case_linker.handler import Tuning, build_app, make_lambda_handler
from case_linker.settings import Settings

lambda_handler = make_lambda_handler(
    lambda: build_app(
        Settings.from_env(os.environ),
        tuning=Tuning(bucket_capacity=float(os.environ["BENCH_BUCKET_CAPACITY"])),
    )
)
