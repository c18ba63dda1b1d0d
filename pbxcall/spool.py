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
import os
from typing import Callable, Optional

from .errors import SpoolError

FILE_MODE = 0o644
Warn = Callable[[str], None]


def new_filename() -> str:
    """``call-`` and 16 lowercase hex digits from ``os.urandom``: unguessable, a handle."""
    return "call-" + os.urandom(8).hex()


def _owner(name: Optional[str], warn: Warn) -> Optional[tuple]:
    """(uid, gid) to give the file, or None.  Only root can give files away."""
    if not name or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        warn("file_owner %r is not a user here; the call file stays owned by root, "
             "and Asterisk cannot reschedule a retry of a file it does not own" % name)
        return None
    return entry.pw_uid, entry.pw_gid


def _stage(path: str, data: bytes, owner: Optional[tuple], mtime: Optional[float],
           fsync: bool) -> None:
    """Create ``path`` exclusively and make it final; remove it again on any failure."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, FILE_MODE)
            if owner is not None:
                os.fchown(fd, owner[0], owner[1])
            if mtime is not None:
                # A future mtime schedules the call; Asterisk ignores one set after the rename.
                os.utime(fd, (mtime, mtime))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _remove(path)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def queue(
    data: bytes,
    outgoing_path: str,
    staging_path: str,
    fallback_path: str,
    file_owner: Optional[str] = "asterisk",
    mtime: Optional[float] = None,
    fsync: bool = True,
    warn: Warn = lambda message: None,
) -> str:
    """Place ``data`` in ``outgoing_path`` atomically and return its basename.

    ``fallback_path`` is where to stage when ``staging_path`` is on another mount.
    Raises :class:`SpoolError` (with ``detail`` for the log) and leaves nothing
    behind, neither in ``outgoing/`` nor in staging, when anything fails.
    """
    name = new_filename()
    target = os.path.join(outgoing_path, name)
    owner = _owner(file_owner, warn)
    staged = os.path.join(staging_path, name)
    try:
        _stage(staged, data, owner, mtime, fsync)
        try:
            os.rename(staged, target)
        except OSError as exc:
            _remove(staged)
            if exc.errno != errno.EXDEV or os.path.realpath(fallback_path) == os.path.realpath(staging_path):
                raise
            staged = os.path.join(fallback_path, name)
            _stage(staged, data, owner, mtime, fsync)
            try:
                os.rename(staged, target)
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
