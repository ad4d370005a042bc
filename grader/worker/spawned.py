"""A worker in a freshly started interpreter, talking over its stdin and stdout.

The portable path (macOS, Windows, the student kit): no fork, no descriptor
passing, no bubblewrap. The protocol moves to private copies of descriptors 0 and
1 before any student code runs; the student's prints then go to descriptor 2,
which the grader drains like any worker's output.

    python -I -c "<boot>" TOOLKIT_ROOT      then one {"op": "init", "spec": {...}} frame
"""

from __future__ import annotations

import os
import sys


def main(toolkit_root: str) -> None:
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)

    import numpy  # noqa: F401 - imported before the toolkit leaves the path

    from grader.worker import codec, serve

    channel = codec.PipeChannel(proto_in, proto_out)
    try:
        header, _ = codec.recv_message(channel)
    except (codec.PeerClosed, codec.CodecError, OSError):
        os._exit(0)
    serve.scrub_toolkit_imports(toolkit_root)
    if sys.platform.startswith("linux"):  # a grader killed with SIGKILL takes its workers along
        serve._prctl(serve.PR_SET_PDEATHSIG, 9)
    serve.run(channel, header["spec"])
