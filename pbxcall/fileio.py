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

import errno
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


# -- opening files under the spool and the state directory ------------------------
#
# One set of rules for every file pbxcall opens there, read or written: a symlink is
# never followed (a root-run command must not truncate, create or move anything
# outside), only a regular file is used (a FIFO named like a call must not hang a
# request, a directory must not fail it), and nothing blocks on open (O_NONBLOCK).
# The directories pbxcall makes itself inside those places (index/, cancelled/, and
# Asterisk's outgoing_done/) are opened without following a symlink either, and the
# files in them are reached through that descriptor.

#: flags added to every open under the spool and the state directory
SAFE_FLAGS = posix.O_NOFOLLOW | posix.O_CLOEXEC | posix.O_NONBLOCK
_DIR_FLAGS = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC


class NotRegularFile(OSError):
    """A name pbxcall uses is something else: a symlink, directory, FIFO or device
    where a file should be, or a symlink or file where a directory should be."""


def _regular(fd: int, path: str) -> int:
    mode = posix.fstat(fd).st_mode
    if mode & 0o170000 != 0o100000:
        posix.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file", path)
    return fd


def open_file(path: str, flags: int, mode: int = 0o640, dir_fd: "Optional[int]" = None) -> int:
    """Open ``path`` (relative to ``dir_fd`` if given) under the rules above.

    A symlink raises OSError (ELOOP), anything but a regular file NotRegularFile.
    """
    try:
        fd = posix.open(path, flags | SAFE_FLAGS, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise NotRegularFile(exc.errno, exc.strerror, path)
        raise
    return _regular(fd, path)


def open_dir(path: str, create: bool = False, dir_fd: "Optional[int]" = None, follow: bool = False) -> int:
    """A descriptor of directory ``path`` (relative to ``dir_fd`` if given), never
    through a symlink at its last step unless ``follow`` (a path from the settings);
    ``create``: made (0750) when missing."""
    flags = _DIR_FLAGS & ~posix.O_NOFOLLOW if follow else _DIR_FLAGS
    try:
        try:
            return posix.open(path, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise
        if dir_fd is None:
            makedirs(path, 0o750)
        else:
            try:
                posix.mkdir(path, 0o750, dir_fd=dir_fd)
            except FileExistsError:
                pass
        return posix.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotRegularFile(exc.errno, "not a directory of its own (a symlink or a file)", path)
        raise


def open_state(state_path: str, name: str, flags: int, mode: int = 0o640) -> int:
    """:func:`open_file` of ``name`` in pbxcall's state directory: ``rate.key.x``, or
    ``index/ab`` in a subdirectory of pbxcall's own, which is never followed if it is
    a symlink (``state_path`` itself is the admin's and may be one).  Directories are
    made (0750) when a file is created in them: on first use only, no stat per request."""
    create = bool(flags & posix.O_CREAT)
    subdirectory, _, base = name.rpartition("/")
    dir_fd = open_dir(state_path, create, follow=True)
    try:
        if subdirectory:
            inner = open_dir(subdirectory, create, dir_fd)
            posix.close(dir_fd)
            dir_fd = inner
        return open_file(base, flags, mode, dir_fd)
    finally:
        posix.close(dir_fd)


def read_state(state_path: str, name: str) -> "Optional[bytes]":
    """The content of state file ``name`` (:func:`open_state`'s rules), or None when it
    is not there or is not a regular file."""
    try:
        fd = open_state(state_path, name, posix.O_RDONLY)
    except (FileNotFoundError, NotRegularFile):
        return None
    try:
        return read_all(fd)
    finally:
        posix.close(fd)


def write_whole(path: str, data: bytes, mode: int = 0o640, exclusive: bool = False,
                keep_owner: bool = False) -> bool:
    """``path`` holds ``data`` whole, or is left as it was: a temporary file beside it
    (never through a symlink), fsynced, then renamed over ``path`` — or, ``exclusive``,
    linked to it, False if ``path`` exists already.  ``keep_owner``: an existing file's
    owner is kept (as root, rewriting the admin's settings file)."""
    directory, _, base = path.rpartition("/")
    temporary = join(directory, ".%s.%s.tmp" % (base, posix.urandom(4).hex()))
    fd = posix.open(temporary, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW | posix.O_CLOEXEC,
                    mode)
    try:
        try:
            write_all(fd, data)
            posix.fchmod(fd, mode)
            if keep_owner:
                try:
                    st = posix.stat(path)
                    posix.fchown(fd, st.st_uid, st.st_gid)
                except (FileNotFoundError, PermissionError):
                    pass
            posix.fsync(fd)
        finally:
            posix.close(fd)
        if not exclusive:
            posix.rename(temporary, path)
            return True
        try:
            posix.link(temporary, path)  # fails if another process wrote it meanwhile
        except FileExistsError:
            return False
        finally:
            posix.unlink(temporary)
        return True
    except BaseException:
        try:
            posix.unlink(temporary)
        except OSError:
            pass
        raise


def read_file(path: str, limit: int) -> bytes:
    """A regular file's content, at most ``limit`` bytes (more is an OSError), without
    blocking: for files given by their path in the settings (which may be a symlink)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC | posix.O_NONBLOCK)
    _regular(fd, path)
    try:
        if posix.fstat(fd).st_size > limit:
            raise OSError(errno.EFBIG, "larger than %d bytes" % limit, path)
        data = read_all(fd)
    finally:
        posix.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, "larger than %d bytes" % limit, path)
    return data


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


def append(path: str, data: bytes, state_path: "Optional[str]" = None) -> None:
    """Append ``data`` with one ``write`` on an ``O_APPEND`` descriptor.

    Lines from concurrent CGI processes never interleave or overwrite each other.
    With ``state_path``, ``path`` is a name in the state directory (:func:`open_state`'s
    rules); without, a log file the admin named, which may be a symlink or a pipe.
    """
    flags = posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC
    fd = open_state(state_path, path, flags) if state_path else posix.open(path, flags, 0o640)
    try:
        posix.write(fd, data)
    finally:
        posix.close(fd)
