"""Run the grader with one host name pinned to addresses checked beforehand.

    python -m grader.batch.course.pinned HOST=ADDR[,ADDR] -- PATH [grade options] --url URL

`grade batch --live` checks that a student's deployment resolves to public addresses, then
starts that student's grader through here: in this process, HOST resolves to those addresses
and nothing else, so a second DNS answer (a rebinding to the instructor's network) cannot
redirect the live probe. Other names resolve as usual. Student code never runs in this
process (it runs in the sandbox's children), so the pin affects only the grader's requests.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any

_original = socket.getaddrinfo


def pin(host: str, addresses: Sequence[str]) -> None:
    """From now on, getaddrinfo(host, ...) answers `addresses` only."""
    wanted = host.lower().rstrip(".")

    def getaddrinfo(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(name, str) and name.lower().rstrip(".") == wanted:
            found = []
            for address in addresses:
                found += _original(address, port, *args, **kwargs)
            return found
        return _original(name, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or "=" not in argv[0] or argv[1] != "--":
        print(
            "usage: python -m grader.batch.course.pinned HOST=ADDR[,ADDR] -- GRADE-ARGS…",
            file=sys.stderr,
        )
        return 2
    host, _, addresses = argv[0].partition("=")
    pin(host, [a for a in addresses.split(",") if a])
    from grader import cli
    from grader.exitcodes import INTERRUPTED

    try:
        return cli.main(list(argv[2:]))
    except KeyboardInterrupt:  # as grader.cli does: an interrupted grading writes nothing
        print("grade: interrupted, nothing written", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
