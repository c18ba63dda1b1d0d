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


def put(spool, data=DATA, **kwargs):
    kwargs.setdefault("file_owner", None)
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
        "try: print(queue(b'x' * %d, %r, %r, %r, file_owner=None))\n"
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
    name = queue(DATA, spool.outgoing, spool.tmp, spool.tmp, file_owner="nobody")
    st = os.stat(os.path.join(spool.outgoing, name))
    assert (st.st_uid, st.st_gid) == (65534, 65534)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown is only tried as root")
def test_unknown_owner_is_a_warning(spool):
    warnings = []
    name = queue(DATA, spool.outgoing, spool.tmp, spool.tmp, file_owner="no-such-user-x", warn=warnings.append)
    assert os.stat(os.path.join(spool.outgoing, name)).st_uid == 0
    assert len(warnings) == 1 and "no-such-user-x" in warnings[0]


def test_owner_is_left_alone_when_not_root(spool):
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from pbxcall.spool import queue\n"
            "print(queue(b'x', %r, %r, %r, file_owner='asterisk', warn=print))\n"
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
    name = queue(DATA, spool.outgoing, private_tmp, spool.tmp, file_owner=None, warn=warnings.append)
    assert spool.read(name).encode() == DATA
    assert os.listdir(private_tmp) == [] and spool.staged() == []
    assert len(warnings) == 1
    assert "outgoing_temp_path" in warnings[0] and spool.tmp in warnings[0] and "PrivateTmp" in warnings[0]


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
        queue(DATA, spool.outgoing, private_tmp, missing, file_owner=None)
    assert spool.calls() == [] and os.listdir(private_tmp) == []
