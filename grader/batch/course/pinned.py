"""One host name pinned to addresses checked beforehand, for the rest of the process.

`grade batch --live` checks that a student's deployment resolves to public addresses, then starts
that student's grader with `--pin-host HOST=ADDR[,ADDR]` (grader/cli.py): in that process, HOST
resolves to those addresses and nothing else, so a second DNS answer (a rebinding to the
instructor's network) cannot redirect the live probe. Other names resolve as usual. Student code
never runs in this process (it runs in the sandbox's children), so the pin affects only the grader's
requests.
"""

from __future__ import annotations

import socket
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
