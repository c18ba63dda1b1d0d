"""Call lifecycle: status through every state, dedupe, scheduling, cancel, retention.

Asterisk's side is played by tests/helpers.py (asterisk_attempt, asterisk_finish),
which write exactly what pbx/pbx_spool.c writes: 'StartRetry: <pid> <n> (<time>)'
lines after a blank line with the mtime moved on, and on completion a rename into
outgoing_done/ under the same basename followed by 'Status: Completed|Expired|Failed'.
"""

import json
import os
import time

import pytest

from pbxcall import statedir

from conftest import AUTH
from helpers import Inotify, asterisk_attempt, asterisk_finish, cgi_environ, fixture, run_cgi_many

CALL = "/api/make_call.php?from=101&to=89998887766&external_id=crm-2345"
STATUS_KEYS = ["status", "filename", "from", "to", "external_id", "state", "attempts", "scheduled_at",
               "updated_at", "outcome"]


def status(app, query, code=200):
    return app.get("/api/call_status.php?" + query, headers=AUTH, status=code).json


def cancel(app, name, code=200):
    return app.post("/api/cancel_call.php?filename=" + name, headers=AUTH, status=code).json


def test_status_through_every_state(app, spool):
    name = app.get(CALL, headers=AUTH).json["filename"]
    first = status(app, "filename=" + name)
    assert list(first) == STATUS_KEYS
    assert (first["state"], first["attempts"], first["from"], first["to"], first["external_id"]) == (
        "queued", 0, "101", "89998887766", "crm-2345")
    asterisk_attempt(spool.outgoing, name, 1)
    assert (status(app, "filename=" + name)["state"], status(app, "filename=" + name)["attempts"]) == ("dialing", 1)
    asterisk_attempt(spool.outgoing, name, 1, word="EndRetry")
    asterisk_attempt(spool.outgoing, name, 2)
    dialing = status(app, "filename=" + name)
    assert (dialing["state"], dialing["attempts"]) == ("dialing", 2)
    assert dialing["scheduled_at"] > first["scheduled_at"]  # the next retry
    asterisk_finish(spool.outgoing, name, "Expired")
    expired = status(app, "filename=" + name)
    assert (expired["state"], expired["attempts"], expired["scheduled_at"]) == ("expired", 2, None)
    # outcome off: a finished call's outcome is unknown, never a guess; before the end, null
    assert (expired["outcome"]["agent"], expired["outcome"]["customer"]) == ("unknown", "unknown")
    assert set(first["outcome"].values()) == {None}


@pytest.mark.parametrize("word, state", [("Completed", "completed"), ("Expired", "expired"), ("Failed", "failed")])
def test_finished_states(app, spool, word, state):
    name = app.get(CALL, headers=AUTH).json["filename"]
    asterisk_attempt(spool.outgoing, name, 1)
    asterisk_finish(spool.outgoing, name, word)
    assert status(app, "filename=" + name)["state"] == state
    with open(os.path.join(spool.base, "outgoing_done", name)) as stream:
        assert stream.read().endswith("Status: %s\n" % word)


def test_scheduled_state_and_response(app, spool):
    response = app.get(CALL + "&delay=3600", headers=AUTH).json
    assert list(response) == ["status", "from", "to", "external_id", "filename", "file", "scheduled_at"]
    found = status(app, "filename=" + response["filename"])
    assert found["state"] == "scheduled" and found["scheduled_at"] == response["scheduled_at"]


def test_status_by_external_id_is_the_newest(app, spool):
    older = app.get(CALL, headers=AUTH).json["filename"]
    newer = app.get(CALL.replace("to=89998887766", "to=89998887700"), headers=AUTH).json["filename"]
    assert status(app, "external_id=crm-2345")["filename"] == newer
    os.unlink(os.path.join(spool.outgoing, newer))  # gone (e.g. Archive off and finished)
    assert status(app, "external_id=crm-2345")["filename"] == older
    shard = os.listdir(os.path.join(spool.base, "pbxcall", statedir.INDEX_DIR))
    assert len(shard) == 1  # one small file read, not the archive scanned


@pytest.mark.parametrize("query", ["filename=call-0000000000000000", "filename=../../etc/passwd",
                                   "filename=call-XYZ", "external_id=nobody", "filename=CALL-0123456789ABCDEF"])
def test_unknown_calls(app, query):
    assert status(app, query, 404) == {"status": "ERROR", "error": "Unknown call", "code": "unknown_call"}


def test_status_needs_a_handle_and_a_key(app):
    assert status(app, "", 400)["code"] == "bad_request"
    assert app.get("/api/call_status.php?filename=call-0000000000000000", status=401).json["code"] == "unauthorized"


def test_a_key_sees_only_calls_it_could_have_placed(app_factory, spool):
    keys = [{"name": "a", "key": "k1-aaaaaaaa", "allowed_from": ["101"]},
            {"name": "b", "key": "k2-bbbbbbbb", "allowed_from": ["102"]}]
    app = app_factory(api_key=Ellipsis, api_keys=keys)
    name = app.get(CALL, headers={"Authorization": "Bearer k1-aaaaaaaa"}).json["filename"]
    app.get("/api/call_status.php?filename=" + name, headers={"Authorization": "Bearer k1-aaaaaaaa"})
    app.get("/api/call_status.php?filename=" + name, headers={"Authorization": "Bearer k2-bbbbbbbb"}, status=404)
    app.post("/api/cancel_call.php?filename=" + name, headers={"Authorization": "Bearer k2-bbbbbbbb"}, status=404)
    assert spool.calls() == [name]


# -- double-click protection ---------------------------------------------------

def test_duplicate_within_the_window(app_factory, spool):
    app = app_factory(dedupe_seconds=10)
    first = app.get(CALL, headers=AUTH).json
    again = app.get(CALL, headers=AUTH).json
    assert again == dict(first, duplicate=True)
    other = app.get(CALL.replace("crm-2345", "crm-2346"), headers=AUTH).json
    assert "duplicate" not in other and len(spool.calls()) == 2


def test_duplicate_window_ends(app_factory, spool):
    app = app_factory(dedupe_seconds=1)
    app.get(CALL, headers=AUTH)
    time.sleep(1.1)
    assert "duplicate" not in app.get(CALL, headers=AUTH).json
    assert len(spool.calls()) == 2


def test_twenty_identical_requests_at_once_give_one_call(spool, write_config):
    config = write_config(dedupe_seconds=10)
    results = run_cgi_many([cgi_environ(CALL.split("?")[1], config=config) for _ in range(20)])
    answers = [json.loads(body.decode()) for _, _, body, _ in results]
    assert [status for status, _, _, _ in results] == [200] * 20
    assert len({answer["filename"] for answer in answers}) == 1
    assert sum(answer.get("duplicate", False) for answer in answers) == 19
    assert spool.calls() == [answers[0]["filename"]]
    assert spool.only_call() == fixture("seed.call")


# -- scheduling ----------------------------------------------------------------

def test_schedule_mtime_is_set_before_the_file_appears(app, spool):
    """inotify on outgoing/: the file arrives by one rename and is never touched after (no ATTRIB)."""
    watch = Inotify(spool.outgoing)
    try:
        at = int(time.time()) + 7200
        response = app.get(CALL + "&at=%d" % at, headers=AUTH).json
        events = [(mask, name) for mask, name in watch.events() if name]
    finally:
        watch.close()
    assert events == [({"MOVED_TO"}, response["filename"])]
    assert os.stat(os.path.join(spool.outgoing, response["filename"])).st_mtime == at
    assert response["scheduled_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def test_schedule_iso_with_offset(app, spool):
    at = time.strftime("%Y-%m-%dT%H:%M:%S+03:00", time.gmtime(time.time() + 3 * 3600 + 600))
    response = app.get(CALL + "&at=" + at.replace("+", "%2B"), headers=AUTH).json
    mtime = os.stat(os.path.join(spool.outgoing, response["filename"])).st_mtime
    assert abs(mtime - (time.time() + 600)) < 5


@pytest.mark.parametrize("extra", ["&delay=-1", "&delay=soon", "&at=2020-01-01T00:00:00Z", "&delay=700000",
                                   "&at=2026-12-01T10:00:00", "&at=1&delay=1", "&at=", "&delay="])
def test_bad_schedules(app, spool, extra):
    response = app.get(CALL + extra, headers=AUTH, status=400).json
    assert response == {"status": "ERROR", "error": "Invalid schedule", "code": "invalid_schedule"}
    assert spool.calls() == []


# -- cancel ----------------------------------------------------------------------

def test_cancel_scheduled_and_queued(app, spool):
    for extra in ("&delay=600", ""):
        name = app.get(CALL + extra, headers=AUTH).json["filename"]
        answer = cancel(app, name)
        assert (answer["state"], answer["filename"]) == ("cancelled", name)
        assert name not in spool.calls()
        assert os.path.exists(os.path.join(spool.base, "pbxcall", "cancelled", name))
        assert status(app, "filename=" + name)["state"] == "cancelled"
        assert cancel(app, name)["state"] == "cancelled"  # again: same answer


def test_cancel_too_late(app, spool):
    name = app.get(CALL, headers=AUTH).json["filename"]
    asterisk_attempt(spool.outgoing, name, 1)
    assert cancel(app, name, 409) == {"status": "ERROR", "error": "The call has already started",
                                      "code": "already_started"}
    asterisk_finish(spool.outgoing, name, "Completed")
    assert cancel(app, name, 409)["code"] == "already_finished"
    assert cancel(app, "call-0000000000000000", 404)["code"] == "unknown_call"


def test_cancel_is_post_only(app):
    response = app.get("/api/cancel_call.php?filename=call-0000000000000000", headers=AUTH, status=405)
    assert response.headers["Allow"] == "POST" and response.json["code"] == "method_not_allowed"


def test_cancel_races_never_lose_or_copy_the_call(spool, write_config):
    """Real processes: 6 cancels and 10 status reads of the same call at once, 5 times over."""
    config = write_config()
    for _ in range(5):
        [(code, _, body, _)] = run_cgi_many([cgi_environ(CALL.split("?")[1] + "&delay=600", config=config)])
        name = json.loads(body.decode())["filename"]
        envs = []
        for index in range(16):
            script = "/api/cancel_call.php" if index % 8 < 3 else "/api/call_status.php"
            envs.append(cgi_environ("filename=" + name, config=config, SCRIPT_NAME=script,
                                    REQUEST_METHOD="POST" if "cancel" in script else "GET"))
        results = run_cgi_many(envs)
        states = [json.loads(body.decode()).get("state") for _, _, body, _ in results]
        assert [code for code, _, _, _ in results] == [200] * 16, states
        assert set(states) <= {"scheduled", "cancelled"}
        assert [states[i] for i in range(16) if i % 8 < 3] == ["cancelled"] * 6
        copies = [os.path.exists(os.path.join(spool.outgoing, name)),
                  os.path.exists(os.path.join(spool.base, "pbxcall", "cancelled", name))]
        assert copies == [False, True]


# -- retention -------------------------------------------------------------------

def age(path, days):
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_retention_removes_only_pbxcall_files_past_the_limit(app, spool, write_config, capsys):
    from pbxcall import cli

    done = os.path.join(spool.base, "outgoing_done")
    cancelled = os.path.join(spool.base, "pbxcall", "cancelled")
    os.makedirs(done)
    os.makedirs(cancelled)
    files = {
        (done, "call-00000000000000aa"): (31, False), (done, "call-00000000000000bb"): (29, True),
        (done, "call-aa"): (99, True), (done, "wakeup-101.call"): (99, True),
        (done, "call-00000000000000AA"): (99, True),
        (cancelled, "call-00000000000000cc"): (31, False), (spool.tmp, "call-00000000000000dd"): (0.05, False),
        (spool.tmp, "call-00000000000000ee"): (0.01, True), (spool.tmp, "other"): (9, True),
        (spool.outgoing, "call-00000000000000ff"): (99, True),  # a queued call is never retention's business
    }
    for (directory, name), (days, _) in files.items():
        with open(os.path.join(directory, name), "w") as stream:
            stream.write("Channel: Local/101@from-internal\n")
        age(os.path.join(directory, name), days)
    statedir.index_add(os.path.join(spool.base, "pbxcall"), "x-1", "call-00000000000000aa")
    statedir.index_add(os.path.join(spool.base, "pbxcall"), "x-1", "call-00000000000000bb")
    assert cli.main(["prune", "--config", write_config()]) == 0
    assert capsys.readouterr().out == ("removed 2 archived or cancelled call files, 1 staging leftovers, "
                                       "1 index lines\n")
    for (directory, name), (_, kept) in files.items():
        assert os.path.exists(os.path.join(directory, name)) is kept, name
    assert statedir.index_find(os.path.join(spool.base, "pbxcall"), "x-1") == ["call-00000000000000bb"]


def test_retention_runs_at_most_once_an_hour_after_a_call(app, spool):
    done = os.path.join(spool.base, "outgoing_done")
    os.makedirs(done)
    old = os.path.join(done, "call-00000000000000aa")
    open(old, "w").close()
    age(old, 40)
    app.get(CALL, headers=AUTH)
    assert not os.path.exists(old)
    open(old, "w").close()
    age(old, 40)
    app.get(CALL, headers=AUTH)
    assert os.path.exists(old)  # the stamp is fresh: not again within the hour
    age(os.path.join(spool.base, "pbxcall", "prune.stamp"), 1 / 24 + 0.001)
    app.get(CALL, headers=AUTH)
    assert not os.path.exists(old)


def test_retention_failure_never_fails_the_request(app, spool, monkeypatch):
    from pbxcall import retention

    monkeypatch.setattr(retention, "run", lambda settings, now: 1 / 0)
    assert app.get(CALL, headers=AUTH).json["status"] == "OK"
    assert "ZeroDivisionError" in app.log.getvalue()
