"""moto's server for long local runs (`python -m local.moto_server -p PORT`), with SQS's clock made cheap.

moto's SQS re-checks every queued message's visibility several times per ReceiveMessage, each check building
datetimes (profiled: ~0.6 s per ReceiveMessage with 1,000 messages queued). In a backlog drain the test rig,
not the linker or the quota, then sets the pace. With no argument `unix_time_millis()` is the milliseconds
since the epoch, which `time.time()` gives for a fraction of the cost; behaviour is otherwise moto's.
"""

from __future__ import annotations

import datetime
import time

import moto.sqs.models as sqs_models
from moto.server import main

_moto_unix_time_millis = sqs_models.unix_time_millis


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _moto_unix_time_millis(dt) if dt is not None else time.time() * 1000.0


sqs_models.unix_time_millis = _unix_time_millis

if __name__ == "__main__":
    main()
