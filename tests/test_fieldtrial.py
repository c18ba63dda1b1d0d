"""Regressions from the field trials: each defect found there, at its root.

Real files and real processes: a real tmpfs filled to every level (root only: it
mounts one), real symlinks, FIFOs and directories where pbxcall expects files.
"""

import io
import json
import os
import subprocess
import threading
import time

import pytest

from pbxcall import ratelimit
from pbxcall.app import make_app
from pbxcall.errors import RateLimited
from pbxcall.settings import Settings

from conftest import AUTH, SEED_QUERY, Spool

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="mounts a tmpfs: root")


# -- answers that match reality ------------------------------------------------------

class TinyTmpfs:
    """A real tmpfs of ``pages`` 4 KiB pages and ``inodes`` inodes, mounted for the test."""

    def __init__(self, base, pages=48, inodes=64):
        self.path = os.path.join(base, "tiny")
        os.mkdir(self.path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,nr_inodes=%d,mode=755" % (pages * 4, inodes),
                        "tmpfs", self.path], check=True)

    def wipe(self):
        subprocess.run(["find", self.path, "-mindepth", "1", "-delete"], check=True)

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail, st.f_favail  # pages (f_frsize 4096), inodes

    def fill(self, pages, inodes):
        """Leave exactly ``pages`` free pages and ``inodes`` free inodes (or as near as the fs allows)."""
        filler = os.path.join(self.path, "filler")
        os.mkdir(filler)
        with open(os.path.join(filler, "bytes"), "wb") as stream:
            while self.free()[0] > pages:
                stream.write(b"x" * 4096)
                stream.flush()
        index = 0
        while self.free()[1] > inodes:
            open(os.path.join(filler, "i%d" % index), "w").close()
            index += 1

    def umount(self):
        subprocess.run(["umount", "-l", self.path], check=False)


@ROOT_ONLY
def test_item1_200_if_and_only_if_the_call_is_in_outgoing_at_every_fill_level(spool):
    """Issue 13 item 1: a full filesystem never gives 500 for a queued call, nor 200
    for one that is not there.  Every request has an external_id, dedupe and both
    rate limits on, on a spool and state that are new (first call) or already used, and
    with the outcome and webhook files (written before the rename too)."""
    tiny = TinyTmpfs(spool.base)
    outcomes = {}
    try:
        for warm, extras in ((False, False), (True, False), (False, True)):
            for pages in range(0, 9):
                for inodes in range(0, 12):
                    tiny.wipe()
                    local = Spool(os.path.join(tiny.path, "spool"))
                    os.mkdir(os.path.join(local.base, "outgoing_done"))
                    more = {"outcome": True, "webhooks": [{"url": "http://127.0.0.1:9/hook",
                                                           "secret": "whsec-0123456789abcdef"}]} if extras else {}
                    settings = Settings.from_mapping(local.config(
                        dedupe_seconds=10, rate_limit={"per_key": "1000/minute", "per_from": "1000/minute"}, **more))
                    app = make_app(settings, io.StringIO())
                    if warm:
                        assert call(app, "from=101&to=89990000001&external_id=warm")[0] == 200
                    before = set(local.calls())
                    tiny.fill(pages, inodes)
                    status, answer = call(app, SEED_QUERY)
                    new = set(local.calls()) - before
                    assert (status == 200) == bool(new), (warm, pages, inodes, status, answer, new)
                    assert status in (200, 500), answer
                    if status == 200:
                        assert new == {answer["filename"]}
                        assert local.read(answer["filename"]).endswith("Archive: yes\n")
                    else:
                        assert answer["code"] == "spool_error", answer
                    assert local.staged() == [], (warm, pages, inodes)
                    outcomes[status] = outcomes.get(status, 0) + 1
    finally:
        tiny.umount()
    # the sweep reached both sides of the edge
    assert outcomes.get(200) and outcomes.get(500), outcomes


def call(app, query, path="/api/make_call.php", method="GET"):
    """One request through the WSGI app -> (status, JSON)."""
    seen = []
    environ = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
               "REMOTE_ADDR": "127.0.0.1", "HTTP_AUTHORIZATION": AUTH["Authorization"],
               "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO()}
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return int(seen[0].split()[0]), json.loads(body.decode())


# -- rate limits count exactly under every interleaving (item 19) -----------------------

def test_item19_clock_is_read_under_the_lock_and_newer_slices_are_kept(spool):
    """The field trial's interleaving, forced: ten calls at t=101.2, then one process
    whose clock said 100.99 before it waited for the lock, then nine at t=101.5.
    Before: the late process rewrote the bucket without the 101 slice, and all twenty
    went through (19 in one window).  Now its clock is read under the lock."""
    state = os.path.join(spool.base, "state")
    bucket = [("from.101", (10, 60))]
    for _ in range(10):
        ratelimit.hit(state, bucket, clock=lambda: 101.2)
    with pytest.raises(RateLimited):
        ratelimit.hit(state, bucket, clock=lambda: 100.99)  # a clock a little behind: still counted
    for _ in range(9):
        with pytest.raises(RateLimited):
            ratelimit.hit(state, bucket, clock=lambda: 101.5)


def test_item19_a_process_that_waited_for_the_lock_counts_at_its_own_time(spool):
    """A real second thread holds the bucket's lock while the first waits; the first's
    clock is read only when it gets the lock (the injected clock records when)."""
    import fcntl

    from pbxcall.fileio import open_state

    state = os.path.join(spool.base, "state")
    bucket = [("from.101", (1, 60))]
    fd = open_state(state, "rate.from.101", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    read_at = []

    def clock():
        read_at.append(time.monotonic())
        return 1000.0

    worker = threading.Thread(target=ratelimit.hit, args=(state, bucket, clock))
    worker.start()
    time.sleep(0.3)
    released = time.monotonic()
    os.close(fd)
    worker.join(5)
    assert read_at and read_at[0] >= released


def test_item19_slices_ahead_of_the_clock_count():
    """check() keeps slices newer than now (up to a window ahead) and counts them."""
    live, wait = ratelimit.check({102: 10}, (10, 60), 101.5)
    assert live == {102: 10} and wait > 0
    live, wait = ratelimit.check({101 + 61: 10}, (10, 60), 101.5)  # a window ahead: a clock stepped back
    assert live == {} and wait == 0


# -- bad input is a 400, never a 500 (item 2) --------------------------------------------

CALL = "/api/make_call.php?" + SEED_QUERY


@pytest.mark.parametrize("extra", ["&at=" + "9" * 17, "&at=" + "1" * 40, "&delay=" + "9" * 17,
                                   "&delay=" + "9" * 400, "&at=99999999999", "&delay=100000000000"])
def test_item2_huge_schedules_are_400(app, spool, extra):
    """17 digits and more raised OverflowError while formatting the refusal: a 500."""
    answer = app.get(CALL + extra, headers=AUTH, status=400).json
    assert answer["code"] == "invalid_schedule" and spool.calls() == []


@pytest.mark.parametrize("depth", [33, 300, 5000])
def test_item2_deeply_nested_json_body_is_400(app, spool, depth):
    for body in ("[" * depth + "]" * depth, '{"from": ' * depth + '"101"' + "}" * depth):
        answer = app.post("/api/make_call.php", body, headers=dict(AUTH, **{"Content-Type": "application/json"}),
                          status=400).json
        assert answer["code"] == "bad_request", answer
    assert spool.calls() == []


def test_item2_json_name_twice_with_different_values_is_refused_like_the_query(app, spool):
    """The last value silently won: a body could show one 'to' and dial another."""
    headers = dict(AUTH, **{"Content-Type": "application/json"})
    twice = '{"from": "101", "to": "89998887766", "to": "89990000000"}'
    answer = app.post("/api/make_call.php", twice, headers=headers, status=400).json
    assert answer["error"] == "Field 'to' is given twice with different values"
    assert spool.calls() == []
    same = '{"from": "101", "to": "89998887766", "to": "89998887766"}'
    assert app.post("/api/make_call.php", same, headers=headers).json["to"] == "89998887766"


# -- dedupe after cancel, and one scheduled_at (item 3) ------------------------------------

def test_item3_a_click_after_a_cancel_places_a_new_call(app_factory, spool):
    app = app_factory(dedupe_seconds=10)
    first = app.get(CALL, headers=AUTH).json
    assert app.post("/api/cancel_call.php?filename=" + first["filename"], headers=AUTH).json["state"] == "cancelled"
    again = app.get(CALL, headers=AUTH).json
    assert "duplicate" not in again and again["filename"] != first["filename"]
    assert spool.calls() == [again["filename"]]
    assert app.get(CALL, headers=AUTH).json == dict(again, duplicate=True)  # and that one is protected


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.7, 0.999])
def test_item3_a_duplicate_answers_the_same_scheduled_at(app_factory, spool, monkeypatch, fraction):
    """The first answer truncated, the dedupe record rounded: 1 s apart.  Now whole
    seconds, rounded up, from when() on: answer, file and duplicate agree."""
    now = 1800000000 + fraction
    monkeypatch.setattr(time, "time", lambda: now)
    app = app_factory(dedupe_seconds=10)
    first = app.get(CALL + "&delay=60", headers=AUTH).json
    again = app.get(CALL + "&delay=60", headers=AUTH).json
    assert again["duplicate"] is True and again["scheduled_at"] == first["scheduled_at"]
    mtime = os.stat(os.path.join(spool.outgoing, first["filename"])).st_mtime
    assert mtime == 1800000060 + (fraction > 0)
    assert first["scheduled_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


# -- cancel by external_id (item 4) ---------------------------------------------------------

def test_item4_cancel_by_external_id_cancels_the_newest_call_with_it(app, spool):
    older = app.get(CALL + "&delay=600", headers=AUTH).json["filename"]
    newer = app.get(CALL + "&delay=900", headers=AUTH).json["filename"]
    answer = app.post("/api/cancel_call.php?external_id=crm-2345", headers=AUTH).json
    assert (answer["state"], answer["filename"], answer["scheduled_at"]) == ("cancelled", newer, None)
    assert spool.calls() == [older]
    assert app.post("/api/cancel_call.php?external_id=crm-0000", headers=AUTH, status=404).json["code"] == \
        "unknown_call"
    assert app.post("/api/cancel_call.php", headers=AUTH, status=400).json["error"] == "Give filename or external_id"


# -- symlinks are never followed (item 6) -------------------------------------------------

@pytest.fixture
def outside(spool):
    """A directory and a file outside the spool and state, which nothing may touch."""
    path = os.path.join(spool.base, "outside")
    os.mkdir(path)
    with open(os.path.join(path, "precious"), "w") as stream:
        stream.write("keep me\n")
    return path


def untouched(outside):
    with open(os.path.join(outside, "precious")) as stream:
        assert stream.read() == "keep me\n"
    assert sorted(os.listdir(outside)) == ["precious"]


def test_item6_state_symlinks_are_never_followed(app_factory, spool, outside):
    """prune.stamp truncated its target, a dangling prune.lock created one, an index
    shard appended to its target: as root, anywhere on the system."""
    import binascii

    state = os.path.join(spool.base, "pbxcall")
    os.makedirs(os.path.join(state, "index"))
    precious = os.path.join(outside, "precious")
    os.symlink(precious, os.path.join(state, "prune.stamp"))
    os.utime(os.path.join(state, "prune.stamp"), (1, 1), follow_symlinks=False)  # retention is due
    os.symlink(os.path.join(outside, "created"), os.path.join(state, "prune.lock"))
    shard = "%02x" % (binascii.crc32(b"crm-2345") & 0xFF)
    os.symlink(precious, os.path.join(state, "index", shard))
    app = app_factory()
    status = app.get(CALL, headers=AUTH, expect_errors=True).status_int
    assert status == 500 and spool.calls() == []  # the index line is written before the rename
    untouched(outside)
    os.unlink(os.path.join(state, "index", shard))
    assert app.get(CALL, headers=AUTH).status_int == 200  # retention refuses its lock: a warning
    assert "retention" in app.log.getvalue() or "prune" in app.log.getvalue()
    untouched(outside)
    for name in ("rate.key.default", "rate.from.101", "dedupe.default.101"):
        os.symlink(precious, os.path.join(state, name))
    limited = app_factory(dedupe_seconds=10, rate_limit={"per_key": "5/minute"})
    assert limited.get(CALL, headers=AUTH, expect_errors=True).json["code"] == "spool_error"
    untouched(outside)


def test_item6_a_cancelled_or_index_directory_that_is_a_symlink_is_refused(app, spool, outside):
    state = os.path.join(spool.base, "pbxcall")
    os.makedirs(state)
    os.symlink(outside, os.path.join(state, "cancelled"))
    name = app.get(CALL + "&delay=600", headers=AUTH).json["filename"]
    answer = app.post("/api/cancel_call.php?filename=" + name, headers=AUTH, status=500).json
    assert answer["code"] == "spool_error" and spool.calls() == [name]
    untouched(outside)
    os.symlink(outside, os.path.join(state, "index2"))
    os.rename(os.path.join(state, "index"), os.path.join(state, "index.real"))
    os.rename(os.path.join(state, "index2"), os.path.join(state, "index"))
    assert app.get("/api/call_status.php?external_id=crm-2345", headers=AUTH, status=404).json["code"] == \
        "unknown_call"
    untouched(outside)


def test_item6_retention_never_deletes_through_a_symlinked_outgoing_done(app, spool, outside, write_config):
    from pbxcall import cli

    target = os.path.join(outside, "call-0123456789abcdef")
    with open(target, "w") as stream:
        stream.write("Status: Completed\n")
    os.utime(target, (1, 1))
    os.symlink(outside, os.path.join(spool.base, "outgoing_done"))
    assert cli.main(["prune", "--config", write_config()]) == 0
    assert os.path.exists(target)


# -- odd files named like calls (item 7) ---------------------------------------------------

def odd_files(directory):
    """A directory, a FIFO and a symlink named like calls -> their names."""
    names = ["call-%016x" % index for index in range(3)]
    os.makedirs(directory, exist_ok=True)
    os.mkdir(os.path.join(directory, names[0]))
    os.mkfifo(os.path.join(directory, names[1]))
    os.symlink("/etc/hostname", os.path.join(directory, names[2]))
    return names


@pytest.mark.parametrize("where", ["outgoing", "outgoing_done"])
def test_item7_status_and_cancel_of_odd_files_are_404_at_once(app, spool, where):
    names = odd_files(os.path.join(spool.base, where))
    started = time.monotonic()
    for name in names:
        assert app.get("/api/call_status.php?filename=" + name, headers=AUTH, status=404).json["code"] == \
            "unknown_call"
        assert app.post("/api/cancel_call.php?filename=" + name, headers=AUTH, status=404).json["code"] == \
            "unknown_call"
    assert time.monotonic() - started < 5
    assert sorted(os.listdir(os.path.join(spool.base, where))) == names


def test_item7_prune_skips_what_it_cannot_remove_and_goes_on(spool, write_config, capsys):
    from pbxcall import cli

    done = os.path.join(spool.base, "outgoing_done")
    names = odd_files(done)
    old = os.path.join(done, "call-ffffffffffffffff")
    with open(old, "w") as stream:
        stream.write("Status: Completed\n")
    for name in names + ["call-ffffffffffffffff"]:
        os.utime(os.path.join(done, name), (1, 1), follow_symlinks=False)
    assert cli.main(["prune", "--config", write_config()]) == 0
    out, err = capsys.readouterr()
    assert not os.path.exists(old) and sorted(os.listdir(done)) == names
    assert "removed 1 archived" in out
    for name in names[:2]:
        assert "%s: not a regular file, left alone" % name in err


# -- only the three exact endpoints (item 10) ----------------------------------------------

@pytest.mark.parametrize("path", ["/api/make_call.php/make_call.php", "/api/call_status.php/make_call.php",
                                  "/api/make_call.php/", "/api/make_call.php/x", "/x/cancel_call.php/call_status.php"])
def test_item10_anything_but_an_exact_endpoint_is_a_json_404(app, spool, path):
    answer = app.get(path + "?" + SEED_QUERY, headers=AUTH, status=404).json
    assert answer["code"] == "not_found" and spool.calls() == []


# -- small ones (item 18) ---------------------------------------------------------------

def test_item18_status_and_cancel_log_lines_name_the_call(app, spool):
    name = app.get(CALL + "&delay=600", headers=AUTH).json["filename"]
    app.get("/api/call_status.php?filename=" + name, headers=AUTH)
    app.post("/api/cancel_call.php?filename=" + name, headers=AUTH)
    lines = app.log.getvalue().splitlines()
    assert len(lines) == 3
    for line in lines[1:]:
        assert " from=101 to=89998887766 external_id=crm-2345 filename=%s" % name in line, line
