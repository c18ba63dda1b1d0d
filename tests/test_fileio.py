"""pbxcall.fileio's path functions behave as their os.path namesakes."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcall import fileio

paths = st.lists(st.sampled_from(["", "/", "//", "a", "b", ".", "..", "...", "x y", "/a", "a/", "c/../d"]),
                 max_size=6).map("/".join) | st.text(alphabet="/.ab", max_size=12)


@given(paths, paths, paths)
def test_join(a, b, c):
    assert fileio.join(a, b) == os.path.join(a, b)
    assert fileio.join(a, b, c) == os.path.join(a, b, c)


@given(paths)
def test_dirname_normpath_abspath(path):
    assert fileio.dirname(path) == os.path.dirname(path)
    assert fileio.normpath(path) == os.path.normpath(path)
    assert fileio.abspath(path) == os.path.abspath(path)


def test_exists_isdir_makedirs_same_place(tmp_path):
    deep = str(tmp_path / "a" / "b" / "c")
    assert not fileio.exists(deep) and not fileio.isdir(deep)
    fileio.makedirs(deep, 0o750)
    fileio.makedirs(deep, 0o750)  # again: fine
    assert fileio.isdir(deep) and oct(os.stat(deep).st_mode & 0o777) == "0o750"
    (tmp_path / "f").write_text("x")
    assert fileio.exists(str(tmp_path / "f")) and not fileio.isdir(str(tmp_path / "f"))
    with pytest.raises(FileExistsError):
        fileio.makedirs(str(tmp_path / "f"))
    os.symlink(deep, str(tmp_path / "link"))
    assert fileio.same_place(str(tmp_path / "link"), deep)
    assert fileio.same_place(str(tmp_path / "x" / ".." / "a"), str(tmp_path / "a"))
    assert fileio.same_place("/no/such/a/../b", "/no/such/b")
    assert not fileio.same_place(deep, str(tmp_path))


def test_getenv(monkeypatch):
    monkeypatch.setenv("PBXCALL_TEST_VALUE", "v\u00e9")
    assert fileio.getenv("PBXCALL_TEST_VALUE") == "v\u00e9"
    assert fileio.getenv("PBXCALL_TEST_MISSING_VALUE") is None


def test_state_files_are_opened_close_on_exec_and_never_through_a_symlink(tmp_path):
    """Issue 13 item 20: O_CLOEXEC or O_NOFOLLOW dropped from the state files went unnoticed."""
    import fcntl

    state = str(tmp_path / "state")
    fd = fileio.open_state(state, "rate.key.x", os.O_RDWR | os.O_CREAT)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)
    os.symlink(str(tmp_path / "target"), os.path.join(state, "rate.key.y"))
    with pytest.raises(fileio.NotRegularFile):
        fileio.open_state(state, "rate.key.y", os.O_RDWR | os.O_CREAT)
    assert not os.path.exists(str(tmp_path / "target"))
    os.mkfifo(os.path.join(state, "fifo"))
    with pytest.raises(fileio.NotRegularFile):  # at once: O_NONBLOCK
        fileio.open_state(state, "fifo", os.O_RDONLY)
    os.symlink(str(tmp_path), os.path.join(state, "index"))
    with pytest.raises(fileio.NotRegularFile):
        fileio.open_state(state, "index/ab", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    assert not os.path.exists(str(tmp_path / "ab"))
