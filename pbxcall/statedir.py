"""pbxcall's own small state, beside the spool (``state_path``, default <spool>/pbxcall).

- ``index/<xx>``: ``<filename> <external_id>`` lines, sharded by CRC-32 of the id, so
  that the most recent call for an external_id is found by reading one small file,
  not by scanning the archive.  Lines are appended with one ``O_APPEND`` write; a
  shard is rewritten (temporary file + rename, under its lock) only by pruning.
- ``dedupe.<key>.<from>``: the calls of the last ``dedupe_seconds`` for one key and
  extension, held under ``flock`` while a request checks it, places its call and
  records it: identical requests racing each other give one call.
- ``prune.stamp`` / ``prune.lock``: when retention last ran; one process at a time.
- ``cancelled/``: cancelled call files (moved there by :mod:`pbxcall.spool`).
- ``rate.*``: rate-limit buckets (:mod:`pbxcall.ratelimit`).
"""

import posix
import time

from .fileio import append, join, open_state, read_all, rewrite

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Callable, List, Optional, Tuple

INDEX_DIR = "index"
CANCELLED_DIR = "cancelled"
PRUNE_EVERY = 3600  # seconds between opportunistic retention runs


def cancelled_path(state_path: str) -> str:
    """Where cancelled call files go: on the spool's filesystem, so a rename moves them."""
    return join(state_path, CANCELLED_DIR)


def _shard(state_path: str, external_id: str) -> str:
    import binascii

    return join(state_path, INDEX_DIR, "%02x" % (binascii.crc32(external_id.encode("utf-8")) & 0xFF))


def index_add(state_path: str, external_id: str, filename: str) -> None:
    """Remember that ``filename`` is the newest call for ``external_id``."""
    append(_shard(state_path, external_id), ("%s %s\n" % (filename, external_id)).encode("utf-8"), create_dirs=True)


def index_find(state_path: str, external_id: str) -> "List[str]":
    """Filenames of the calls with ``external_id``, newest first."""
    try:
        fd = posix.open(_shard(state_path, external_id), posix.O_RDONLY | posix.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        data = read_all(fd).decode("utf-8", "replace")
    finally:
        posix.close(fd)
    found = []
    for line in reversed(data.splitlines()):
        filename, _, wanted = line.partition(" ")
        if wanted == external_id:
            found.append(filename)
    return found


def index_prune(state_path: str, keep: "Callable[[str], bool]") -> int:
    """Rewrite each shard with only the lines whose filename ``keep`` accepts -> lines dropped."""
    import fcntl

    directory = join(state_path, INDEX_DIR)
    try:
        names = posix.listdir(directory)
    except FileNotFoundError:
        return 0
    dropped = 0
    for name in names:
        if len(name) != 2:
            continue
        path = join(directory, name)
        fd = posix.open(path, posix.O_RDWR | posix.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            lines = read_all(fd).decode("utf-8", "replace").splitlines(True)
            kept = [line for line in lines if keep(line.partition(" ")[0])]
            if len(kept) == len(lines):
                continue
            dropped += len(lines) - len(kept)
            temporary = path + ".new"
            with open(temporary, "w", encoding="utf-8") as stream:
                stream.write("".join(kept))
            # Appends that raced the rewrite went to the old file: carry them over.
            tail = read_all(fd).decode("utf-8", "replace")
            if tail:
                with open(temporary, "a", encoding="utf-8") as stream:
                    stream.write(tail)
            posix.rename(temporary, path)
        finally:
            posix.close(fd)
    return dropped


class Dedupe:
    """The lock and record of recent calls for one key and extension (``with Dedupe(...)``).

    A ``window`` of 0 turns it off: no file, no lock, nothing is ever a duplicate.
    """

    def __init__(self, state_path: str, key_name: str, from_: str, window: int) -> None:
        self.path = join(state_path, "dedupe.%s.%s" % (key_name, from_))
        self.window = window
        self.fd = -1
        self.size = 0
        self.entries: "List[Tuple[float, str, str, str, str]]" = []

    def __enter__(self) -> "Dedupe":
        if self.window <= 0:
            return self
        import fcntl

        self.fd = open_state(self.path, posix.O_RDWR | posix.O_CREAT | posix.O_NOFOLLOW | posix.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        now = time.time()
        data = read_all(self.fd)
        self.size = len(data)
        for line in data.decode("utf-8", "replace").splitlines():
            parts = line.split(" ")
            if len(parts) == 5:
                try:
                    stamp = float(parts[0])
                except ValueError:
                    continue
                if now - self.window <= stamp <= now + 1:  # a clock step back drops old entries
                    self.entries.append((stamp, parts[1], parts[2], parts[3], parts[4]))
        return self

    def find(self, to: str, external_id: "Optional[str]") -> "Optional[Tuple[str, Optional[float]]]":
        """(filename, scheduled_at or None) of a recent identical call, or None."""
        for _, filename, seen_to, seen_id, scheduled in reversed(self.entries):
            if seen_to == to and seen_id == (external_id or "-"):
                return filename, (float(scheduled) if scheduled != "-" else None)
        return None

    def record(self, filename: str, to: str, external_id: "Optional[str]", scheduled: "Optional[float]") -> None:
        if self.fd < 0:
            return
        self.entries.append((time.time(), filename, to, external_id or "-",
                             "%.0f" % scheduled if scheduled is not None else "-"))
        rewrite(self.fd, "".join("%.3f %s %s %s %s\n" % entry for entry in self.entries).encode("utf-8"), self.size)

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            posix.close(self.fd)  # releases the lock


def prune_due(state_path: str, now: float) -> "Optional[int]":
    """An fd holding ``prune.lock`` when retention should run now, else None.

    At most once per PRUNE_EVERY seconds, one process at a time; the caller closes
    the fd (releasing the lock) when done.
    """
    import fcntl

    stamp = join(state_path, "prune.stamp")
    try:
        if now - posix.stat(stamp).st_mtime < PRUNE_EVERY:
            return None
    except FileNotFoundError:
        pass
    fd = open_state(join(state_path, "prune.lock"), posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        posix.close(fd)
        return None  # another process is pruning
    with open(stamp, "w"):
        pass
    posix.utime(stamp, (now, now))
    return fd
