"""moto's server for long local runs, with SQS's clock made cheap: `python -m local.moto_server -p PORT`, or
`--announce HOST PORT` (PORT 0: any free one), which prints the endpoint once listening (local/pipeline.py).

moto's SQS re-checks every queued message's visibility several times per ReceiveMessage, each check building
datetimes (profiled: ~0.6 s per ReceiveMessage with 1,000 messages queued). In a backlog drain the test rig,
not the linker or the quota, then sets the pace. With no argument `unix_time_millis()` is the milliseconds
since the epoch, which `time.time()` gives for a fraction of the cost; behaviour is otherwise moto's.
"""

from __future__ import annotations

import datetime
import os
import sys
import time

import moto.sqs.models as sqs_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import main
from werkzeug.serving import make_server

_moto_unix_time_millis = sqs_models.unix_time_millis


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _moto_unix_time_millis(dt) if dt is not None else time.time() * 1000.0


sqs_models.unix_time_millis = _unix_time_millis

ANNOUNCE = "--announce"


def serve(host: str, port: int) -> None:
    """Serve on `port` (0: one the system picks) and print the endpoint once listening, for the parent to read.

    The parent cannot pick a free port for us: between its probe and our bind another process may take it, and
    the parent would then talk to that process's server (its state reset, its queues deleted by another test).
    """
    # As moto's ThreadedMotoServer serves, but binding here: a port already taken fails at once (OSError), where
    # ThreadedMotoServer.start() would wait forever for a server thread that died.
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"http://{host}:{server.server_port}", flush=True)
    # Nobody reads our stdout after that line: anything more could fill the pipe and stall the server.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    server.serve_forever()  # until the parent terminates us


if __name__ == "__main__":
    if ANNOUNCE in sys.argv:  # python -m local.moto_server --announce HOST PORT
        arguments = sys.argv[sys.argv.index(ANNOUNCE) + 1 :]
        serve(arguments[0], int(arguments[1]))
    else:
        main()
