"""Rate limits that hold across separate CGI processes (no daemon, no database).

Each bucket (``key.<name>``, ``from.<extension>``) is a small file in the state
directory holding the times of the requests let through within the window.  A
request locks every bucket it touches with ``fcntl.flock`` (always in the same
order, so two processes cannot deadlock), checks all of them, and records itself
in all of them only if every one has room: N parallel requests never let more
than the limit through, and a refused request costs no slot.
"""

import posix
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import List, Optional, Sequence, Tuple
    Rate = Tuple[int, int]  # (requests, seconds)
    Bucket = Tuple[str, Rate]  # (file name, rate)

from .errors import RateLimited, SpoolError
from .fileio import join, makedirs, read_all, rewrite

def _times(data: bytes) -> "List[float]":
    times = []
    for word in data.split():
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
        makedirs(state_path, 0o750)
        for name, _ in sorted(buckets):
            fd = posix.open(join(state_path, "rate." + name),
                         posix.O_RDWR | posix.O_CREAT | posix.O_NOFOLLOW | posix.O_CLOEXEC, 0o640)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        kept = []
        retry_after = 0
        for fd, (name, (count, seconds)) in zip(fds, sorted(buckets)):
            data = read_all(fd)
            times = sorted(stamp for stamp in _times(data) if now - seconds < stamp <= now + 1)
            if len(times) >= count:
                wait = times[len(times) - count] + seconds - now
                retry_after = max(retry_after, int(wait) + (wait > int(wait)))  # whole seconds, rounded up
            kept.append((times, len(data)))
        if retry_after:
            raise RateLimited(retry_after, "limit reached for %s" % ", ".join(
                "%s (%d/%ds)" % (name, rate[0], rate[1]) for name, rate in sorted(buckets)))
        for fd, (times, size) in zip(fds, kept):
            rewrite(fd, "".join("%.6f\n" % stamp for stamp in times + [now]).encode("ascii"), size)
    except OSError as exc:
        # Fail closed: a limit that cannot be checked lets nothing through.
        raise SpoolError(None, "rate limit state in %s (state_path) must be writable by this user: %s"
                         % (state_path, exc))
    finally:
        for fd in fds:
            posix.close(fd)  # closing releases the lock
