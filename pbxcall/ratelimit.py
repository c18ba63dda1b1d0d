"""Rate limits that hold across separate CGI processes (no daemon, no database).

Each bucket (``key.<name>``, ``from.<extension>``) is a small file in the state
directory holding the times of the requests let through within the window.  A
request locks every bucket it touches with ``fcntl.flock`` (always in the same
order, so two processes cannot deadlock), checks all of them, and records itself
in all of them only if every one has room: N parallel requests never let more
than the limit through, and a refused request costs no slot.
"""

import math
import os
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import List, Optional, Sequence, Tuple
    Rate = Tuple[int, int]  # (requests, seconds)
    Bucket = Tuple[str, Rate]  # (file name, rate)

from .errors import RateLimited, SpoolError
from .fileio import read_all, replace_contents

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(text: str) -> "Rate":
    """``"30/minute"`` -> (30, 60); ValueError for anything else."""
    count, _, unit = str(text).partition("/")
    unit = unit.strip().lower()
    seconds = UNITS.get(unit[:-1] if unit.endswith("s") else unit)  # "minutes" too
    if not count.strip().isdigit() or seconds is None or int(count) < 1:
        raise ValueError("a rate is N/second, N/minute, N/hour or N/day with N >= 1, got %r" % (text,))
    return int(count), seconds


def _times(fd: int) -> "List[float]":
    times = []
    for word in read_all(fd).split():
        try:
            times.append(float(word))
        except ValueError:
            pass  # a line torn by a crash: the other entries still count
    return times


def hit(state_path: str, buckets: "Sequence[Bucket]", now: "Optional[float]" = None) -> None:
    """Count one request in every bucket, or raise :class:`RateLimited` and count none."""
    if not buckets:
        return
    import fcntl

    now = time.time() if now is None else now
    fds = []  # type: List[int]
    try:
        os.makedirs(state_path, mode=0o750, exist_ok=True)
        for name, _ in sorted(buckets):
            fd = os.open(os.path.join(state_path, "rate." + name),
                         os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        kept = []
        retry_after = 0
        for fd, (name, (count, seconds)) in zip(fds, sorted(buckets)):
            times = sorted(stamp for stamp in _times(fd) if now - seconds < stamp <= now + 1)
            if len(times) >= count:
                retry_after = max(retry_after, math.ceil(times[len(times) - count] + seconds - now))
            kept.append(times)
        if retry_after:
            raise RateLimited(retry_after, "limit reached for %s" % ", ".join(
                "%s (%d/%ds)" % (name, rate[0], rate[1]) for name, rate in sorted(buckets)))
        for fd, times in zip(fds, kept):
            replace_contents(fd, "".join("%.6f\n" % stamp for stamp in times + [now]).encode("ascii"))
    except OSError as exc:
        # Fail closed: a limit that cannot be checked lets nothing through.
        raise SpoolError(None, "rate limit state in %s (state_path) must be writable by this user: %s"
                         % (state_path, exc))
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock
