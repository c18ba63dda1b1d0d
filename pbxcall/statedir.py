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
- ``hooks/<filename>``: for the webhook sender, whose call it is and its
  callback_url (pbxcall.webhook.subscription), until every event went to the outbox.
- ``outcome/<filename>``: with ``outcome`` on, made by pbxcall before the call file is
  queued, then appended to by Asterisk's dialplan (:mod:`pbxcall.outcome`).
- ``rate.*``: rate-limit buckets (:mod:`pbxcall.ratelimit`).
"""

import posix
import time

from .fileio import (
    NotRegularFile,
    append,
    join,
    open_dir,
    open_file,
    open_state,
    read_all,
    read_state,
    rewrite,
    write_all,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Callable, List, Optional, Tuple

INDEX_DIR = "index"
CANCELLED_DIR = "cancelled"
OUTCOME_DIR = "outcome"
HOOKS_DIR = "hooks"
PRUNE_EVERY = 3600  # seconds between opportunistic retention runs


def cancelled_path(state_path: str) -> str:
    """Where cancelled call files go: on the spool's filesystem, so a rename moves them."""
    return join(state_path, CANCELLED_DIR)


def outcome_path(state_path: str, filename: str) -> str:
    """The outcome file of call ``filename``, as the call file names it to Asterisk."""
    return join(state_path, OUTCOME_DIR, filename)


def _create(state_path: str, name: str, data: bytes, owner: "Optional[Tuple[int, int]]" = None) -> None:
    """State file ``name``, new (O_EXCL), holding ``data``; given to ``owner`` if any."""
    fd = open_state(state_path, name, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL)
    try:
        write_all(fd, data)
        if owner is not None:
            posix.fchown(fd, owner[0], owner[1])
    finally:
        posix.close(fd)


def outcome_create(state_path: str, filename: str, now: float, owner: "Optional[Tuple[int, int]]") -> None:
    """Make the call's outcome file, ``queued <epoch>``: Asterisk's FILE() appends lines
    only to a file that exists.  ``owner``: who Asterisk runs as, when pbxcall is root."""
    _create(state_path, "%s/%s" % (OUTCOME_DIR, filename), ("queued %d\n" % now).encode("ascii"), owner)


def hooks_create(state_path: str, filename: str, record: bytes) -> None:
    """Note that the sender must tell someone about call ``filename`` (before it is queued)."""
    _create(state_path, "%s/%s" % (HOOKS_DIR, filename), record)


def forget(state_path: str, filename: str) -> None:
    """Remove the hooks and outcome files of a call that never reached the spool (best effort)."""
    for directory in (HOOKS_DIR, OUTCOME_DIR):
        try:
            dir_fd = open_dir(join(state_path, directory))
        except OSError:
            continue
        try:
            posix.unlink(filename, dir_fd=dir_fd)
        except OSError:
            pass
        finally:
            posix.close(dir_fd)


def outcome_read(state_path: str, filename: str) -> "Optional[str]":
    """The text of the call's outcome file, or None if there is none."""
    data = read_state(state_path, "%s/%s" % (OUTCOME_DIR, filename))
    return None if data is None else data.decode("utf-8", "replace")


def _shard(external_id: str) -> str:
    import binascii

    return "%s/%02x" % (INDEX_DIR, binascii.crc32(external_id.encode("utf-8")) & 0xFF)


def index_add(state_path: str, external_id: str, filename: str) -> None:
    """Remember that ``filename`` is the newest call for ``external_id``."""
    append(_shard(external_id), ("%s %s\n" % (filename, external_id)).encode("utf-8"), state_path)


def index_find(state_path: str, external_id: str) -> "List[str]":
    """Filenames of the calls with ``external_id``, newest first."""
    data = (read_state(state_path, _shard(external_id)) or b"").decode("utf-8", "replace")
    found = []
    for line in reversed(data.splitlines()):
        filename, _, wanted = line.partition(" ")
        if wanted == external_id:
            found.append(filename)
    return found


def index_prune(state_path: str, keep: "Callable[[str], bool]") -> int:
    """Rewrite each shard with only the lines whose filename ``keep`` accepts -> lines dropped."""
    try:
        dir_fd = open_dir(join(state_path, INDEX_DIR))
    except (FileNotFoundError, NotRegularFile):
        return 0
    try:
        return sum(_prune_shard(dir_fd, name, keep) for name in posix.listdir(dir_fd) if len(name) == 2)
    finally:
        posix.close(dir_fd)


def _prune_shard(dir_fd: int, name: str, keep: "Callable[[str], bool]") -> int:
    import fcntl

    try:
        fd = open_file(name, posix.O_RDWR, dir_fd=dir_fd)
    except (FileNotFoundError, NotRegularFile):
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lines = read_all(fd).decode("utf-8", "replace").splitlines(True)
        kept = [line for line in lines if keep(line.partition(" ")[0])]
        if len(kept) == len(lines):
            return 0
        temporary = name + ".new"
        try:
            posix.unlink(temporary, dir_fd=dir_fd)  # left by a process killed mid-rewrite
        except FileNotFoundError:
            pass
        out = open_file(temporary, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL, dir_fd=dir_fd)
        try:
            write_all(out, "".join(kept).encode("utf-8"))
            # Appends that raced the rewrite went to the old file: carry them over.
            write_all(out, read_all(fd))
        finally:
            posix.close(out)
        posix.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return len(lines) - len(kept)
    finally:
        posix.close(fd)


class Dedupe:
    """The lock and record of recent calls for one key and extension (``with Dedupe(...)``).

    A ``window`` of 0 turns it off: no file, no lock, nothing is ever a duplicate.
    """

    def __init__(self, state_path: str, key_name: str, from_: str, window: int) -> None:
        self.state_path = state_path
        self.name = "dedupe.%s.%s" % (key_name, from_)
        self.window = window
        self.fd = -1
        self.size = 0
        self.entries: "List[Tuple[float, str, str, str, str]]" = []

    def __enter__(self) -> "Dedupe":
        if self.window <= 0:
            return self
        import fcntl

        self.fd = open_state(self.state_path, self.name, posix.O_RDWR | posix.O_CREAT)
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

    def find(self, to: str, external_id: "Optional[str]",
             queued: "Callable[[str], bool]") -> "Optional[Tuple[str, Optional[float]]]":
        """(filename, scheduled_at or None) of a recent identical call, or None.

        Only a call whose file ``queued`` still finds counts: a cancelled call (moved to
        cancelled/) or one that never reached the spool does not stop a new click.
        """
        for _, filename, seen_to, seen_id, scheduled in reversed(self.entries):
            if seen_to == to and seen_id == (external_id or "-") and queued(filename):
                return filename, (float(scheduled) if scheduled != "-" else None)
        return None

    def record(self, filename: str, to: str, external_id: "Optional[str]", scheduled: "Optional[int]") -> None:
        """Remember the call; ``scheduled`` is whole seconds, as the answer gives it."""
        if self.fd < 0:
            return
        self.entries.append((time.time(), filename, to, external_id or "-",
                             "%d" % scheduled if scheduled is not None else "-"))
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

    try:
        if now - posix.lstat(join(state_path, "prune.stamp")).st_mtime < PRUNE_EVERY:
            return None
    except FileNotFoundError:
        pass
    fd = open_state(state_path, "prune.lock", posix.O_RDWR | posix.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        stamp = open_state(state_path, "prune.stamp", posix.O_WRONLY | posix.O_CREAT)
        try:
            posix.utime(stamp, (now, now))
        finally:
            posix.close(stamp)
    except BlockingIOError:
        posix.close(fd)
        return None  # another process is pruning
    except BaseException:
        posix.close(fd)
        raise
    return fd
