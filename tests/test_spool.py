"""pbxcall.spool: a call file appears in outgoing/ whole, once, or not at all.

Real files and real faults wherever they can be caused: a spool that is missing or
not writable (as the unprivileged user 'nobody'), a file size limit (RLIMIT_FSIZE on
a real process).  EXDEV alone is injected (one mount here), and the tests say so.
"""

import errno
import os
import resource
import signal
import stat
import subprocess
import threading
import time

import pytest

from pbxcall import spool as spool_module
from pbxcall.errors import SpoolError
from pbxcall.spool import new_filename, queue

from helpers import ROOT, SYSTEM_PYTHON, Inotify, as_nobody

DATA = b"Channel: Local/101@from-internal\nExtension: 89998887766\n"


def no_warning(message):
    raise AssertionError("unexpected warning: " + message)


def put(spool, data=DATA, **kwargs):
    kwargs.setdefault("file_owner", None)
    kwargs.setdefault("fsync", True)
    kwargs.setdefault("warn", no_warning)
    return queue(data, spool.outgoing, kwargs.pop("staging", spool.tmp),
                 kwargs.pop("fallback", spool.tmp), **kwargs)


def test_filename_is_call_and_16_hex():
    names = {new_filename() for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert name.startswith("call-") and len(name) == 21
        assert set(name[5:]) <= set("0123456789abcdef")


def test_file_appears_whole_with_mode_0644(spool):
    name = put(spool)
    assert spool.calls() == [name] and spool.staged() == []
    path = os.path.join(spool.outgoing, name)
    with open(path, "rb") as stream:
        assert stream.read() == DATA
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_outgoing_only_ever_sees_a_rename(spool):
    """Asterisk takes any file closed in outgoing/ as a call: only MOVED_TO may happen there."""
    watch = Inotify(spool.outgoing)
    try:
        names = [put(spool) for _ in range(20)]
        # The directory's own events (opened for its fsync) carry no file name.
        events = [(mask, name) for mask, name in watch.events() if name]
    finally:
        watch.close()
    assert sorted(name for _, name in events) == sorted(names)
    assert all(mask == {"MOVED_TO"} for mask, _ in events), events


def test_future_mtime_is_set_before_the_file_is_visible(spool):
    when = time.time() + 3600
    name = put(spool, mtime=when)
    assert os.stat(os.path.join(spool.outgoing, name)).st_mtime == pytest.approx(when, abs=1e-3)


def test_without_fsync_the_file_is_the_same(spool):
    name = put(spool, fsync=False)
    assert spool.read(name).encode() == DATA


def test_concurrent_writers_never_collide(spool):
    names, errors = [], []

    def work():
        try:
            names.append(put(spool, DATA))
        except Exception as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(names) == spool.calls() and len(set(names)) == 50
    assert all(spool.read(name).encode() == DATA for name in names)
    assert spool.staged() == []


def test_missing_outgoing_is_spool_error_and_no_leftovers(spool):
    os.rmdir(spool.outgoing)
    with pytest.raises(SpoolError) as info:
        put(spool)
    assert "No such file or directory" in info.value.detail
    assert spool.staged() == []


def test_missing_staging_is_spool_error(spool):
    with pytest.raises(SpoolError):
        put(spool, staging=os.path.join(spool.base, "nope"), fallback=os.path.join(spool.base, "nope"))
    assert spool.calls() == []


def run_queue_in_process(spool, preexec_fn, data_size=len(DATA)):
    """queue() in a real child process; prints the error class and detail, or the name."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pbxcall.spool import queue\n"
        "try: print(queue(b'x' * %d, %r, %r, %r, file_owner=None, fsync=True, warn=print))\n"
        "except Exception as exc: print(type(exc).__name__, exc.detail)\n"
    ) % (ROOT, data_size, spool.outgoing, spool.tmp, spool.tmp)
    return subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code], stdout=subprocess.PIPE,
                          preexec_fn=preexec_fn, check=True).stdout.decode()


def test_outgoing_not_writable_for_the_user(spool):
    """Real: 'nobody' may stage (tmp is 0777) but not rename into a root-owned 0755 outgoing/."""
    os.chmod(spool.tmp, 0o777)
    if os.geteuid() != 0:
        os.chmod(spool.outgoing, 0o555)
    out = run_queue_in_process(spool, as_nobody)
    assert out.startswith("SpoolError ") and "Permission denied" in out
    assert spool.calls() == [] and spool.staged() == []


def test_file_size_limit_while_writing(spool):
    """Real: RLIMIT_FSIZE makes the kernel refuse the write half-way (EFBIG), like a full disk."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10))
    out = run_queue_in_process(spool, limit, data_size=100)
    assert out.startswith("SpoolError ") and "File too large" in out
    assert spool.calls() == [] and spool.staged() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_owner_as_root(spool):
    name = put(spool, file_owner="nobody")
    st = os.stat(os.path.join(spool.outgoing, name))
    assert (st.st_uid, st.st_gid) == (65534, 65534)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown is only tried as root")
def test_unknown_owner_is_a_warning(spool):
    warnings = []
    name = put(spool, file_owner="no-such-user-x", warn=warnings.append)
    assert os.stat(os.path.join(spool.outgoing, name)).st_uid == 0
    assert warnings == ["file_owner 'no-such-user-x' is not a user here; the call file stays owned by root, "
                        "and Asterisk cannot reschedule a retry of a file it does not own"]


def test_owner_is_left_alone_when_not_root(spool):
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from pbxcall.spool import queue\n"
            "print(queue(b'x', %r, %r, %r, file_owner='asterisk', fsync=True, warn=print))\n"
            % (ROOT, spool.outgoing, spool.tmp, spool.tmp))
    os.chmod(spool.outgoing, 0o777)
    os.chmod(spool.tmp, 0o777)
    out = subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code], stdout=subprocess.PIPE,
                         preexec_fn=as_nobody, check=True).stdout.decode().split()
    assert len(out) == 1 and spool.calls() == out  # no warning: not root, nothing tried


class InjectedExdev:
    """FAULT INJECTED: rename() out of ``bad_dir`` fails with EXDEV, as across two mounts.

    Real EXDEV needs a second filesystem (systemd's PrivateTmp gives Apache one);
    this machine's tests run on one mount, so the error is injected here.
    """

    def __init__(self, monkeypatch, bad_dir):
        self.bad_dir = bad_dir
        self.real_rename = os.rename
        monkeypatch.setattr(spool_module.posix, "rename", self)

    def __call__(self, src, dst):
        if os.path.dirname(src) == self.bad_dir:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return self.real_rename(src, dst)


def test_exdev_falls_back_to_spool_tmp_and_says_which_setting(spool, monkeypatch):
    private_tmp = os.path.join(spool.base, "private-tmp")
    os.mkdir(private_tmp)
    InjectedExdev(monkeypatch, private_tmp)
    warnings = []
    name = put(spool, staging=private_tmp, warn=warnings.append)
    assert spool.read(name).encode() == DATA
    assert os.listdir(private_tmp) == [] and spool.staged() == []
    assert warnings == [
        "outgoing_temp_path %s is on another filesystem than outgoing_path %s (systemd PrivateTmp makes /tmp "
        "one under Apache); staged in %s instead: set \"outgoing_temp_path\": '%s'" % (
            private_tmp, spool.outgoing, spool.tmp, spool.tmp)]


def test_exdev_without_a_fallback_is_spool_error(spool, monkeypatch):
    InjectedExdev(monkeypatch, spool.tmp)
    with pytest.raises(SpoolError) as info:
        put(spool)
    assert "Invalid cross-device link" in info.value.detail
    assert spool.calls() == [] and spool.staged() == []


def test_exdev_and_fallback_also_failing(spool, monkeypatch):
    private_tmp = os.path.join(spool.base, "private-tmp")
    os.mkdir(private_tmp)
    InjectedExdev(monkeypatch, private_tmp)
    missing = os.path.join(spool.base, "no-tmp")
    with pytest.raises(SpoolError):
        put(spool, staging=private_tmp, fallback=missing)
    assert spool.calls() == [] and os.listdir(private_tmp) == []


# -- what queue() opens, and how ----------------------------------------------------------

class Descriptors:
    """OBSERVED, not faked: records the flags, descriptor flags and mode of every
    descriptor the spool writes to or fsyncs, then lets the real call go on."""

    def __init__(self, monkeypatch):
        import fcntl

        self.fcntl = fcntl
        self.seen = []
        real_write_all, real_fsync = spool_module.write_all, os.fsync
        monkeypatch.setattr(spool_module, "write_all", lambda fd, data: self.note("write", fd, real_write_all, data))
        monkeypatch.setattr(spool_module.posix, "fsync", lambda fd: self.note("fsync", fd, real_fsync))

    def note(self, what, fd, real, *args):
        flags = self.fcntl.fcntl(fd, self.fcntl.F_GETFL)
        self.seen.append((what, flags & (os.O_NOFOLLOW | os.O_DIRECTORY | os.O_ACCMODE),
                          self.fcntl.fcntl(fd, self.fcntl.F_GETFD), stat.S_IMODE(os.fstat(fd).st_mode)))
        return real(fd, *args)


def test_the_staged_file_is_private_close_on_exec_and_not_followed_while_written(spool, monkeypatch):
    """Staging may be a shared /tmp: 0600 until whole, O_NOFOLLOW, and no descriptor
    leaks into a process another thread starts; the directory is fsynced as one."""
    seen = Descriptors(monkeypatch).seen
    put(spool)
    assert seen == [("write", os.O_NOFOLLOW | os.O_WRONLY, 1, 0o600),
                    ("fsync", os.O_NOFOLLOW | os.O_WRONLY, 1, 0o644),
                    ("fsync", os.O_DIRECTORY | os.O_RDONLY, 1, 0o755)]
    del seen[:]
    put(spool, fsync=False)
    assert [entry[0] for entry in seen] == ["write"]


def test_a_symlink_or_file_already_at_the_staged_name_is_never_written_through(spool, outside_file):
    name = "call-00000000000000aa"
    os.symlink(outside_file, os.path.join(spool.tmp, name))
    with pytest.raises(SpoolError) as info:
        put(spool, name=name)
    assert info.value.detail == "cannot queue %s in %s via %s/%s: [Errno 17] File exists: '%s/%s'" % (
        name, spool.outgoing, spool.tmp, name, spool.tmp, name)
    assert spool.calls() == [] and os.path.islink(os.path.join(spool.tmp, name))
    with open(outside_file) as stream:
        assert stream.read() == "keep me\n"


@pytest.fixture
def outside_file(spool):
    path = os.path.join(spool.base, "precious")
    with open(path, "w") as stream:
        stream.write("keep me\n")
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_owner_uid_and_gid_are_the_users_own(spool):
    import pwd

    user = next(entry for entry in pwd.getpwall() if entry.pw_uid != entry.pw_gid)  # Debian: sync 4:65534
    st = os.stat(os.path.join(spool.outgoing, put(spool, file_owner=user.pw_name)))
    assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid)


def test_a_failed_directory_fsync_after_the_rename_is_a_warning_not_an_error(spool, monkeypatch):
    """FAULT INJECTED: fsync of outgoing/ fails with EIO (a failing disk cannot be made
    here).  The rename is done, so the call is queued and the caller hears of it."""
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isdir("/proc/self/fd/%d" % fd):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)
    monkeypatch.setattr(spool_module.posix, "fsync", fsync)
    warnings = []
    name = put(spool, warn=warnings.append)
    assert spool.calls() == [name]
    assert warnings == ["fsync of %s failed after queueing %s: [Errno 5] Input/output error" % (spool.outgoing, name)]


def test_an_error_other_than_exdev_never_tries_the_fallback(spool):
    os.rmdir(spool.outgoing)
    fallback = os.path.join(spool.base, "fallback")
    os.mkdir(fallback)
    name = "call-00000000000000bb"
    with pytest.raises(SpoolError) as info:
        put(spool, fallback=fallback, name=name)
    staged = os.path.join(spool.tmp, name)
    assert info.value.detail == "cannot queue %s in %s via %s: [Errno 2] No such file or directory: '%s' -> '%s'" % (
        name, spool.outgoing, staged, staged, os.path.join(spool.outgoing, name))
    assert spool.staged() == [] and os.listdir(fallback) == []


def test_exdev_then_a_failing_rename_from_the_fallback_leaves_nothing(spool, monkeypatch):
    private_tmp = os.path.join(spool.base, "private-tmp")
    os.mkdir(private_tmp)
    InjectedExdev(monkeypatch, private_tmp)
    os.rmdir(spool.outgoing)
    with pytest.raises(SpoolError) as info:
        put(spool, staging=private_tmp)
    assert "No such file or directory" in info.value.detail and spool.tmp in info.value.detail
    assert os.listdir(private_tmp) == [] and spool.staged() == []


# -- names, places, reading, moving and pruning -------------------------------------------

@pytest.mark.parametrize("name", ["call-X" + "0" * 15, "call-g" + "0" * 15, "call-" + "A" * 16, "call-" + "0" * 15,
                                  "call-" + "0" * 17, "Call-" + "0" * 16, "call_" + "0" * 16, "call-" + "0" * 15 + "/"])
def test_is_call_name_refuses_anything_but_call_and_16_lowercase_hex(name):
    assert not spool_module.is_call_name(name)
    assert spool_module.is_call_name("call-0123456789abcdef")


def made(directory, name="call-0123456789abcdef", mode=0o644, data=b"Status: Completed\n"):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "wb") as stream:
        stream.write(data)
    os.chmod(path, mode)
    return path


def test_places_follow_only_the_outgoing_path_of_the_settings(spool):
    """An admin may point outgoing_path at a symlink; outgoing_done/ and cancelled/,
    made by Asterisk and pbxcall, are never followed if one is put there."""
    real = os.path.join(spool.base, "outgoing.real")
    os.rename(spool.outgoing, real)
    os.symlink(real, spool.outgoing)
    state = os.path.join(spool.base, "pbxcall")
    places = spool_module.places(spool.outgoing, state)
    made(real, "call-000000000000000a")
    assert spool_module.where(places, "call-000000000000000a") == "outgoing"
    assert spool_module.locate(places, "call-000000000000000a")[0] == "outgoing"
    assert spool_module.move_out(spool.outgoing, os.path.join(state, "cancelled"), "call-000000000000000a")
    assert spool_module.where(places, "call-000000000000000a") == "cancelled"
    elsewhere = os.path.join(spool.base, "elsewhere")
    made(elsewhere, "call-000000000000000b")
    os.symlink(elsewhere, os.path.join(spool.base, "outgoing_done"))
    os.rename(os.path.join(state, "cancelled"), os.path.join(state, "cancelled.real"))
    os.symlink(elsewhere, os.path.join(state, "cancelled"))
    assert spool_module.where(places, "call-000000000000000b") is None
    assert spool_module.locate(places, "call-000000000000000b") is None


def test_a_call_file_is_known_by_its_type_alone_never_through_a_symlink(spool):
    done = os.path.join(spool.base, "outgoing_done")
    places = spool_module.places(spool.outgoing, os.path.join(spool.base, "pbxcall"))
    made(done, "call-000000000000000a", mode=0o755)  # an odd mode is still a file
    os.symlink(made(spool.base, "call-000000000000000f"), os.path.join(done, "call-000000000000000b"))
    assert spool_module.where(places, "call-000000000000000a") == "outgoing_done"
    assert spool_module.where(places, "call-000000000000000b") is None


def test_locate_reads_a_file_that_is_not_utf8(spool):
    made(spool.outgoing, data=b"Channel: Local/101@from-internal\nSet: X=\xff\xfe\n")
    where, text, st = spool_module.locate(spool_module.places(spool.outgoing, spool.base), "call-0123456789abcdef")
    assert (where, text, st.st_size) == ("outgoing", "Channel: Local/101@from-internal\nSet: X=\ufffd\ufffd\n", 43)


def test_move_out_moves_a_file_whatever_its_mode_and_says_when_it_was_gone(spool):
    target = os.path.join(spool.base, "pbxcall", "cancelled")
    made(spool.outgoing, mode=0o755)
    assert spool_module.move_out(spool.outgoing, target, "call-0123456789abcdef") is True
    assert os.listdir(target) == ["call-0123456789abcdef"] and spool.calls() == []
    assert spool_module.move_out(spool.outgoing, target, "call-0123456789abcdef") is False


def test_move_out_never_moves_a_symlink_or_a_directory(spool):
    target = os.path.join(spool.base, "cancelled")
    os.symlink(made(spool.base), os.path.join(spool.outgoing, "call-000000000000000a"))
    os.mkdir(os.path.join(spool.outgoing, "call-000000000000000b"))
    for name in ("call-000000000000000a", "call-000000000000000b"):
        with pytest.raises(SpoolError) as info:
            spool_module.move_out(spool.outgoing, target, name)
        assert info.value.detail == (
            "cannot move %s out of %s into %s (a real directory on the same filesystem): "
            "[Errno 22] not a regular file: '%s'" % (name, spool.outgoing, target, name))
    assert spool.calls() == ["call-000000000000000a", "call-000000000000000b"] and os.listdir(target) == []


def test_move_out_closes_what_it_opened_and_nothing_else(spool):
    """In a real process with stdin closed (so a directory gets descriptor 0) and with
    outgoing/ missing (so nothing gets opened): the same descriptors before and after."""
    code = ("import os, sys; sys.path.insert(0, %r)\n"
            "from pbxcall.spool import move_out\n"
            "os.close(0)\n"
            "before = sorted(os.listdir('/proc/self/fd'))\n"
            "moved = move_out(%r, %r, 'call-0123456789abcdef')\n"
            "os.rmdir(%r)\n"
            "gone = move_out(%r, %r, 'call-0123456789abcdef')\n"
            "print(moved, gone, before == sorted(os.listdir('/proc/self/fd')))\n") % (
        ROOT, spool.outgoing, spool.tmp, spool.outgoing, spool.outgoing, spool.tmp)
    made(spool.outgoing)
    out = subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert out == "True False True\n"


def test_prune_removes_old_regular_files_whatever_their_mode_and_keeps_the_boundary(spool):
    now = 1000000.0
    done = os.path.join(spool.base, "outgoing_done")
    for name, age, mode in (("call-000000000000000a", 101, 0o755), ("call-000000000000000b", 100, 0o644),
                            ("call-000000000000000c", 5, 0o644), ("not-a-call", 1000, 0o644)):
        path = made(done, name, mode=mode)
        os.utime(path, (now - age, now - age))
    assert spool_module.prune([(done, 100.0, False)], now) == (1, [])  # exactly 100 s old stays
    assert sorted(os.listdir(done)) == ["call-000000000000000b", "call-000000000000000c", "not-a-call"]


def test_prune_reports_what_it_leaves_and_goes_on_to_the_next_directory(spool, outside_file):
    now = 1000000.0
    linked = os.path.join(spool.base, "linked")
    os.symlink(spool.tmp, linked)
    done = os.path.join(spool.base, "outgoing_done")
    os.makedirs(done)
    os.utime(outside_file, (1, 1))
    os.symlink(outside_file, os.path.join(done, "call-000000000000000a"))
    os.utime(os.path.join(done, "call-000000000000000a"), (1, 1), follow_symlinks=False)
    os.utime(made(done, "call-000000000000000b"), (1, 1))
    missing = os.path.join(spool.base, "missing")
    assert spool_module.prune([(missing, 1.0, False), (linked, 1.0, False), (done, 1.0, False)], now) == (1, [
        "%s: not pruned: not a directory of its own (a symlink or a file)" % linked,
        "%s/call-000000000000000a: not a regular file, left alone" % done])
    assert os.listdir(done) == ["call-000000000000000a"] and os.path.exists(outside_file)


def test_prune_reports_a_file_it_may_not_remove(spool):
    """Real: 'nobody' prunes a root-owned 0755 directory (EACCES on unlink)."""
    done = os.path.join(spool.base, "outgoing_done")
    for name in ("call-000000000000000a", "call-000000000000000b"):
        os.utime(made(done, name), (1, 1))
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from pbxcall.spool import prune\n"
            "print(prune([(%r, 1.0, False)], 1000000.0))\n") % (ROOT, done)
    out = subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code], stdout=subprocess.PIPE, preexec_fn=as_nobody,
                         check=True).stdout.decode()
    assert out == "(0, [%s])\n" % ", ".join(
        repr("%s/%s: cannot remove: Permission denied" % (done, name))
        for name in os.listdir(done))  # in the order the directory lists them
    assert sorted(os.listdir(done)) == ["call-000000000000000a", "call-000000000000000b"]
