"""File and path operations on ``posix`` directly — the spool, state and log modules'.

``import os`` costs a CGI process 0.8 ms (``os`` drags in ``posixpath``, ``stat``
and ``_collections_abc``), about a sixth of the interpreter's whole start-up, while
``posix`` is loaded before the first line runs.  So pbxcall's runtime modules use
``posix`` and the few path functions below, which behave as their ``os.path``
namesakes (tests/test_fileio.py checks them against ``os.path``).

``os``-level I/O on purpose, too: no buffering between pbxcall and the kernel, so
that what is written is written with the calls the comments promise (one
``O_APPEND`` write for a log line, a loop until every byte is out for a call file).
"""

import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import List, Optional

# -- paths (os.path's behaviour, POSIX only) -------------------------------------

def join(path: str, *parts: str) -> str:
    """``os.path.join``."""
    for part in parts:
        if part.startswith("/") or not path:
            path = part
        elif path.endswith("/"):
            path += part
        else:
            path += "/" + part
    return path


def dirname(path: str) -> str:
    """``os.path.dirname``."""
    head = path[:path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def normpath(path: str) -> str:
    """``os.path.normpath``."""
    if not path:
        return "."
    initial = len(path) - len(path.lstrip("/"))
    initial = 2 if initial == 2 else min(initial, 1)  # POSIX keeps exactly two leading slashes
    parts: "List[str]" = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != ".." or (not initial and not parts) or (parts and parts[-1] == ".."):
            parts.append(part)
        elif parts:
            parts.pop()
    return "/" * initial + "/".join(parts) or "."


def abspath(path: str) -> str:
    """``os.path.abspath``."""
    return normpath(path if path.startswith("/") else join(posix.getcwd(), path))


def exists(path: str) -> bool:
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isdir(path: str) -> bool:
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o040000
    except (OSError, ValueError):
        return False


def same_place(first: str, second: str) -> bool:
    """Whether two paths name the same directory: by inode when both exist (symlinks and
    bind mounts included), else by their normalised absolute form."""
    try:
        one, two = posix.stat(first), posix.stat(second)
        return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)
    except (OSError, ValueError):
        return abspath(first) == abspath(second)


def makedirs(path: str, mode: int = 0o750) -> None:
    """``os.makedirs(path, mode, exist_ok=True)``."""
    if isdir(path):
        return
    parent = dirname(path.rstrip("/"))
    if parent and parent != path and not isdir(parent):
        makedirs(parent, mode)
    try:
        posix.mkdir(path, mode)
    except FileExistsError:
        if not isdir(path):
            raise


def open_state(path: str, flags: int, mode: int = 0o640) -> int:
    """``posix.open`` of a file in pbxcall's state directory, creating the directories
    (0750) on first use only: a stat per request saved on the hot path."""
    try:
        return posix.open(path, flags, mode)
    except FileNotFoundError:
        makedirs(dirname(path), 0o750)
        return posix.open(path, flags, mode)


def getenv(name: str) -> "Optional[str]":
    """``os.environ.get(name)``: the process environment, decoded as ``os`` does."""
    value = posix.environ.get(name.encode())
    return value.decode(sys.getfilesystemencoding(), "surrogateescape") if value is not None else None


# -- I/O -------------------------------------------------------------------------

def read_all(fd: int, size: int = 4096) -> bytes:
    """Everything from ``fd``'s position to the end (one read for a small file)."""
    chunks: "List[bytes]" = []
    while True:
        chunk = posix.read(fd, size)
        chunks.append(chunk)
        if len(chunk) < size:  # a short read of a regular file is its end
            return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view):]


#: blank padding kept at the end of a rewritten state file before it is truncated
MAX_PADDING = 4096


def rewrite(fd: int, data: bytes, old_size: int) -> None:
    """Make ``data`` the content of the (locked) state file ``fd``, ``old_size`` long.

    Written over the old bytes, with newlines up to the old size: the readers skip
    blank lines, and truncating a file on ext4 costs a journal commit (~120 us
    against ~5 us, bench/README.md).  Only when the padding would pass MAX_PADDING is
    the file truncated.
    """
    if len(data) < old_size:
        if old_size - len(data) <= MAX_PADDING:
            data += b"\n" * (old_size - len(data))
        else:
            posix.ftruncate(fd, len(data))
    view, offset = memoryview(data), 0
    while offset < len(data):
        offset += posix.pwrite(fd, view[offset:], offset)


def append(path: str, data: bytes, create_dirs: bool = False) -> None:
    """Append ``data`` with one ``write`` on an ``O_APPEND`` descriptor.

    Lines from concurrent CGI processes never interleave or overwrite each other.
    """
    flags = posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC
    fd = open_state(path, flags) if create_dirs else posix.open(path, flags, 0o640)
    try:
        posix.write(fd, data)
    finally:
        posix.close(fd)
