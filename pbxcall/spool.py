"""Put a call file into Asterisk's spool: whole, once, or not at all (SPEC §5).

Asterisk watches ``outgoing/`` with inotify and takes any file closed there as a
call, finished or not, dotfiles included.  So the file is written, fsynced and
given its owner, mode and (for a scheduled call) mtime in a staging directory,
then renamed into ``outgoing/``: the one atomic step Asterisk sees.

The staging directory must be on the same filesystem as ``outgoing/``; the old
default ``/tmp`` is not under Apache, whose systemd unit has ``PrivateTmp=true``.
On ``EXDEV`` the file is staged again in ``<spool>/tmp`` and a warning names the
setting to change.  A copy into ``outgoing/`` is never made: it is not atomic.

This is the only module that touches the spool.
"""

import errno
import posix

from .errors import SpoolError
from .fileio import NotRegularFile, abspath, dirname, join, open_dir, open_file, read_all, same_place, write_all

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Callable, Iterator, List, Optional, Tuple
    Warn = Callable[[str], None]
    Place = Tuple[str, str, bool]  # (where, directory, follow)

FILE_MODE = 0o644


def new_filename() -> str:
    """``call-`` and 16 lowercase hex digits from ``posix.urandom``: unguessable, a handle."""
    return "call-" + posix.urandom(8).hex()


def owner(name: "Optional[str]", warn: "Warn") -> "Optional[Tuple[int, int]]":
    """(uid, gid) to give the file, or None.  Only root can give files away."""
    if not name or posix.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        warn("file_owner %r is not a user here; the call file stays owned by root, "
             "and Asterisk cannot reschedule a retry of a file it does not own" % name)
        return None
    return entry.pw_uid, entry.pw_gid


def _stage(path: str, data: bytes, owner: "Optional[Tuple[int, int]]", mtime: "Optional[float]",
           fsync: bool) -> None:
    """Create ``path`` exclusively and make it final; remove it again on any failure."""
    fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW | posix.O_CLOEXEC, 0o600)
    try:
        try:
            write_all(fd, data)
            posix.fchmod(fd, FILE_MODE)
            if owner is not None:
                posix.fchown(fd, owner[0], owner[1])
            if mtime is not None:
                # A future mtime schedules the call; Asterisk ignores one set after the rename.
                posix.utime(fd, (mtime, mtime))
            if fsync:
                posix.fsync(fd)
        finally:
            posix.close(fd)
    except BaseException:
        _remove(path)
        raise


def _remove(path: str) -> None:
    try:
        posix.unlink(path)
    except OSError:
        pass


def _fsync_dir(path: str) -> None:
    fd = posix.open(path, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    try:
        posix.fsync(fd)
    finally:
        posix.close(fd)


def queue(
    data: bytes,
    outgoing_path: str,
    staging_path: str,
    fallback_path: str,
    *,
    file_owner: "Optional[str]",
    fsync: bool,
    warn: "Warn",
    mtime: "Optional[float]" = None,
    name: "Optional[str]" = None,
) -> str:
    """Place ``data`` in ``outgoing_path`` atomically and return its basename
    (``name``, or a new one).  The owner, fsync and warning sink are the caller's
    settings, always given: no default stands in for a setting.

    ``fallback_path`` is where to stage when ``staging_path`` is on another mount.
    Raises :class:`SpoolError` (with ``detail`` for the log) and leaves nothing
    behind, neither in ``outgoing/`` nor in staging, when anything fails.  Once the
    rename is done nothing raises: the call is Asterisk's, and the answer must say so.
    """
    name = name or new_filename()
    target = join(outgoing_path, name)
    given = owner(file_owner, warn)
    staged = join(staging_path, name)
    try:
        _stage(staged, data, given, mtime, fsync)
        try:
            posix.rename(staged, target)
        except OSError as exc:
            _remove(staged)
            if exc.errno != errno.EXDEV or same_place(fallback_path, staging_path):
                raise
            staged = join(fallback_path, name)
            _stage(staged, data, given, mtime, fsync)
            try:
                posix.rename(staged, target)
            except BaseException:
                _remove(staged)
                raise
            warn("outgoing_temp_path %s is on another filesystem than outgoing_path %s "
                 "(systemd PrivateTmp makes /tmp one under Apache); staged in %s instead: "
                 "set \"outgoing_temp_path\": %r" % (staging_path, outgoing_path, fallback_path,
                                                      fallback_path))
    except OSError as exc:
        raise SpoolError(None, "cannot queue %s in %s via %s: %s" % (
            name, outgoing_path, staged, exc))
    if fsync:
        try:
            _fsync_dir(outgoing_path)
        except OSError as exc:
            # The rename is done: Asterisk will place the call, so the answer is still 200.
            warn("fsync of %s failed after queueing %s: %s" % (outgoing_path, name, exc))
    return name


# -- reading and moving call files (status, cancel, retention) ----------------

#: Asterisk's archive directory, beside outgoing/ (pbx_spool.c: <spool>/outgoing_done)
DONE_DIR = "outgoing_done"
_HEX = frozenset("0123456789abcdef")


def is_call_name(name: str) -> bool:
    """``call-`` and 16 lowercase hex digits: the names pbxcall gives, and the only
    files it ever reads, moves or deletes."""
    return len(name) == 21 and name.startswith("call-") and _HEX.issuperset(name[5:])


def done_path(outgoing_path: str) -> str:
    return join(dirname(abspath(outgoing_path)), DONE_DIR)


def places(outgoing_path: str, state_path: str) -> "List[Place]":
    """Where a call's file can be, in the order calls move: outgoing/, outgoing_done/,
    cancelled/, as (where, directory, follow): ``follow`` for the directory named in
    the settings; the ones pbxcall or Asterisk make are never followed if a symlink."""
    from .callstate import CANCELLED, DONE, OUTGOING
    from .statedir import cancelled_path

    return [(OUTGOING, outgoing_path, True), (DONE, done_path(outgoing_path), False),
            (CANCELLED, cancelled_path(state_path), False)]


def _opened(places: "List[Place]") -> "Iterator[Tuple[str, int]]":
    """(where, directory descriptor) of each of ``places`` that exists as a directory."""
    for place, directory, follow in places:
        try:
            dir_fd = open_dir(directory, follow=follow)
        except (FileNotFoundError, NotRegularFile):
            continue
        try:
            yield place, dir_fd
        finally:
            posix.close(dir_fd)


def where(places: "List[Place]", name: str) -> "Optional[str]":
    """The first of ``places`` that has ``name`` as a regular file (a stat, no read)."""
    for place, dir_fd in _opened(places):
        try:
            if posix.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode & 0o170000 == 0o100000:
                return place
        except FileNotFoundError:
            pass
    return None


def locate(places: "List[Place]", name: str) -> "Optional[Tuple[str, str, posix.stat_result]]":
    """``(where, text, stat)`` of call file ``name`` in the first of ``places`` that
    has it as a regular file, or None.

    Calls only move forward (outgoing/ to outgoing_done/ or cancelled/), so looking in
    that order never misses a call that moves while we look.  A directory, FIFO or
    symlink by that name is not a call (fileio's rules): it is passed over.
    """
    for place, dir_fd in _opened(places):
        try:
            fd = open_file(name, posix.O_RDONLY, dir_fd=dir_fd)
        except (FileNotFoundError, NotRegularFile):
            continue
        try:
            st = posix.fstat(fd)
            text = read_all(fd).decode("utf-8", "replace")
        finally:
            posix.close(fd)
        return place, text, st
    return None


def move_out(outgoing_path: str, target_dir: str, name: str) -> bool:
    """Rename ``outgoing/<name>`` into ``target_dir`` (one atomic step, same filesystem;
    ``target_dir`` made if missing, never followed if it is a symlink).

    False if the file was no longer there (Asterisk took it); SpoolError otherwise.
    """
    source = target = -1
    try:
        source = open_dir(outgoing_path, follow=True)
        target = open_dir(target_dir, create=True)
        if posix.stat(name, dir_fd=source, follow_symlinks=False).st_mode & 0o170000 != 0o100000:
            raise NotRegularFile(errno.EINVAL, "not a regular file", name)
        posix.rename(name, name, src_dir_fd=source, dst_dir_fd=target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise SpoolError(None, "cannot move %s out of %s into %s (a real directory on the same "
                               "filesystem): %s" % (name, outgoing_path, target_dir, exc))
    finally:
        for fd in (source, target):
            if fd >= 0:
                posix.close(fd)
    return True


def prune(directories: "List[Tuple[str, float, bool]]", now: float) -> "Tuple[int, List[str]]":
    """Delete pbxcall's own files older than their limit: [(directory, max age s,
    follow)] -> (count, what could not be removed).

    Only regular files with names :func:`is_call_name` accepts are touched; anything
    else stays, and a file that cannot be removed is reported, not a reason to stop.
    """
    removed = 0
    problems: "List[str]" = []
    for directory, max_age, follow in directories:
        try:
            dir_fd = open_dir(directory, follow=follow)
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append("%s: not pruned: %s" % (directory, exc.strerror or exc))
            continue
        try:
            for name in posix.listdir(dir_fd):
                if not is_call_name(name):
                    continue
                try:
                    st = posix.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if st.st_mode & 0o170000 != 0o100000:
                        problems.append("%s/%s: not a regular file, left alone" % (directory, name))
                    elif st.st_mtime < now - max_age:
                        posix.unlink(name, dir_fd=dir_fd)
                        removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    problems.append("%s/%s: cannot remove: %s" % (directory, name, exc.strerror or exc))
        finally:
            posix.close(dir_fd)
    return removed, problems
