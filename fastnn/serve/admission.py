"""How much ``/api/predict`` work the server holds at once, and the answer past that bound.

A request is admitted when it arrives and leaves when it is answered; while
admitted it waits its turn (to be read, decoded, put in a forward pass).  At
most :data:`MAX_PENDING` requests, holding at most :data:`MAX_PENDING_BYTES`
of request bodies (each counted at its declared ``Content-Length``, or the
1 MiB body limit when it declares none), are admitted at once.  Past either
bound a request is answered at once with a JSON 503 and ``Retry-After``, so a
client always gets JSON and the server's memory and queueing delay stay
bounded however many clients come.
"""

from __future__ import annotations

#: Requests admitted at once (queued or being answered).
MAX_PENDING = 512
#: Request bodies held at once, in bytes (64 MiB: 512 canvas snapshots of 128 kB).
MAX_PENDING_BYTES = 64 << 20
#: Seconds a refused client is asked to wait before trying again.
RETRY_AFTER = 1


class Admission:
    """Counts the requests and body bytes the server holds; refuses past the bounds."""

    def __init__(self, max_pending: int = MAX_PENDING, max_bytes: int = MAX_PENDING_BYTES):
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self.pending = 0
        self.bytes = 0

    def enter(self, size: int) -> bool:
        """Admit a request whose body is at most ``size`` bytes; False if the server is full."""
        if self.pending >= self.max_pending or self.bytes + size > self.max_bytes:
            return False
        self.pending += 1
        self.bytes += size
        return True

    def leave(self, size: int) -> None:
        """The request admitted with ``size`` has been answered."""
        self.pending -= 1
        self.bytes -= size

    def refusal(self) -> str:
        """Why a request was refused, for its 503."""
        return (
            f"the server is busy ({self.pending} requests in hand, at most {self.max_pending}); "
            f"try again in {RETRY_AFTER} s"
        )
