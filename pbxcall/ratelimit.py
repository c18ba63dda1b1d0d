"""Rate limits that hold across separate CGI processes (no daemon, no database).

Each bucket (``key.<name>``, ``from.<extension>``) is a small file in the state
directory.  It counts the requests let through in slices of 1/60 of the window
(one second for ``N/minute``): ``<slice number> <count>`` lines, at most 61, so a
request reads and writes a few hundred bytes however high the limit is.  A slice
counts as long as any part of it lies inside the window, which errs on the safe
side: never more than N requests in any window, at the price of refusing a
little early at the edge.

A request locks every bucket it touches with ``fcntl.flock`` (always in the same
order, so two processes cannot deadlock), checks all of them, and records itself
in all of them only if every one has room: N parallel requests never let more
than the limit through, and a refused request costs no slot.
"""

import posix
import time

from .errors import RateLimited, SpoolError
from .fileio import open_state, read_all, rewrite

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Callable, Dict, List, Sequence, Tuple
    Rate = Tuple[int, int]  # (requests, seconds)
    Bucket = Tuple[str, Rate]  # (file name, rate)

SLICES = 60  # a window is counted in this many slices


def _slices(data: bytes) -> "Dict[int, int]":
    counts: "Dict[int, int]" = {}
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            counts[int(parts[0])] = counts.get(int(parts[0]), 0) + int(parts[1])
    return counts  # a line torn by a crash is skipped: the others still count


def check(counts: "Dict[int, int]", rate: "Rate", now: float) -> "Tuple[Dict[int, int], int]":
    """(the slices still in the window or newer, seconds to wait or 0 if there is room).

    A slice newer than ``now`` (written by a process whose clock read later) counts:
    dropping it would let its requests through again.
    """
    count, seconds = rate
    width = max(1, seconds // SLICES)
    first = int((now - seconds) // width)  # the oldest slice that still overlaps the window
    # Kept up to a window ahead; beyond that the clock was stepped back: start afresh.
    live = {index: value for index, value in counts.items() if first <= index <= int((now + seconds) // width)}
    excess = sum(live.values()) - count + 1
    if excess <= 0:
        return live, 0
    for index in sorted(live):  # wait until enough of the oldest slices have left the window
        excess -= live[index]
        if excess <= 0:
            wait = (index + 1) * width + seconds - now
            return live, max(1, int(wait) + (wait > int(wait)))
    return live, seconds  # pragma: no cover - only when count < 1, which settings refuse


def hit(state_path: str, buckets: "Sequence[Bucket]", clock: "Callable[[], float]" = time.time) -> None:
    """Count one request in every bucket, or raise :class:`RateLimited` and count none.

    The clock is read with every lock held: a process that read it before waiting for
    a lock would count itself in a slice older than the ones written meanwhile, and
    slices newer than its time would be dropped as "not yet".  Slices newer than this
    request's own time (a clock a little ahead elsewhere) are kept and counted.
    """
    if not buckets:
        return
    import fcntl

    fds: "List[int]" = []
    try:
        for name, _ in sorted(buckets):
            fd = open_state(state_path, "rate." + name, posix.O_RDWR | posix.O_CREAT)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        now = clock()
        kept = []
        retry_after = 0
        for fd, (_, rate) in zip(fds, sorted(buckets)):
            data = read_all(fd)
            live, wait = check(_slices(data), rate, now)
            retry_after = max(retry_after, wait)
            kept.append((live, len(data), max(1, rate[1] // SLICES)))
        if retry_after:
            raise RateLimited(retry_after, "limit reached for %s" % ", ".join(
                "%s (%d/%ds)" % (name, rate[0], rate[1]) for name, rate in sorted(buckets)))
        for fd, (live, size, width) in zip(fds, kept):
            index = int(now // width)
            live[index] = live.get(index, 0) + 1
            rewrite(fd, "".join("%d %d\n" % pair for pair in sorted(live.items())).encode("ascii"), size)
    except OSError as exc:
        # Fail closed: a limit that cannot be checked lets nothing through.
        raise SpoolError(None, "rate limit state in %s (state_path) must be writable by this user: %s"
                         % (state_path, exc))
    finally:
        for fd in fds:
            posix.close(fd)  # closing releases the lock
