"""One execution environment: `python -m local.worker <read fd> <write fd> <handler>`.

Started by `WorkerProcessRuntime`. Its init phase imports the handler; then it serves invocations sent over
the pipe until told to stop or the pipe closes. stdout/stderr are the environment's log stream.
"""

from __future__ import annotations

import sys
import traceback
from multiprocessing.connection import Connection

from local.runtime import load_handler


def serve(receive: Connection, send: Connection, handler_spec: str) -> None:
    try:
        handler = load_handler(handler_spec)
    # The init phase failing is reported to the parent, which names the environment and its log.
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        send.send(("init_error", f"{type(error).__name__}: {error}"))
        return
    send.send(("ready", None))
    while True:
        try:
            command, event, spec = receive.recv()
        except EOFError:
            return
        if command == "stop":
            return
        try:
            response = handler(event, spec.start())
        # As Lambda's runtime does: an unhandled error becomes the invocation's error response.
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            send.send(("error", {"errorType": type(error).__name__, "errorMessage": str(error)}))
        else:
            send.send(("ok", response))
        sys.stdout.flush()


def main(argv: list[str]) -> None:
    read_fd, write_fd, handler_spec = int(argv[0]), int(argv[1]), argv[2]
    serve(Connection(read_fd, writable=False), Connection(write_fd, readable=False), handler_spec)


if __name__ == "__main__":
    main(sys.argv[1:])
