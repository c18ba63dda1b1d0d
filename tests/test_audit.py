"""Audit log and the fail2ban filter, on real processes and a real Apache log."""

import json
import os
import re
import subprocess

import pytest

from conftest import AUTH, SEED_KEY, SEED_QUERY
from helpers import ROOT, cgi_environ, run_cgi_many

FILTER = os.path.join(ROOT, "apache", "fail2ban", "filter.d", "pbxcall.conf")
FAIL2BAN_REGEX = "/usr/bin/fail2ban-regex"
AUDIT_KEYS = ["time", "outcome", "status", "client", "key", "from", "to", "external_id", "filename", "reason"]


def audit_lines(path):
    with open(path) as stream:
        return [json.loads(line) for line in stream]


def test_one_json_line_per_request(app_factory, spool):
    path = os.path.join(spool.base, "audit.jsonl")
    app = app_factory(audit_log=path)
    ok = app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH).json
    app.get("/api/make_call.php?" + SEED_QUERY, headers={"Authorization": "Bearer wrong-1"}, status=401)
    app.get("/api/make_call.php?from=101&to=1%0A2", headers=AUTH, status=400)
    app.get("/api/make_call.php?from=101&to=12", headers=AUTH, status=400)
    records = audit_lines(path)
    assert [record["outcome"] for record in records] == ["ok", "unauthorized", "bad_request", "invalid_to"]
    assert all(list(record) == AUDIT_KEYS for record in records)
    first = records[0]
    assert (first["status"], first["client"], first["key"], first["from"], first["to"], first["external_id"],
            first["filename"], first["reason"]) == (200, "127.0.0.1", "default", "101", "89998887766", "crm-2345",
                                                    ok["filename"], None)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", first["time"])
    assert records[1]["key"] is None and records[1]["reason"] == "wrong key"
    assert records[3]["to"] == "12" and "does not match" in records[3]["reason"]
    with open(path) as stream:
        text = stream.read()
    assert SEED_KEY not in text and "wrong-1" not in text and "Bearer" not in text


def test_concurrent_cgi_processes_append_whole_lines(spool, write_config):
    path = os.path.join(spool.base, "audit.jsonl")
    config = write_config(audit_log=path)
    envs = [cgi_environ("from=101&to=8999888%04d&external_id=id-%d" % (index, index), config=config)
            for index in range(60)]
    results = run_cgi_many(envs)
    assert sorted(status for status, _, _, _ in results) == [200] * 60
    records = audit_lines(path)
    assert sorted(record["external_id"] for record in records) == sorted("id-%d" % index for index in range(60))
    assert {record["filename"] for record in records} == set(spool.calls())


@pytest.fixture
def fail2ban_regex():
    if not os.path.exists(FAIL2BAN_REGEX):
        if os.environ.get("CI") == "true":
            pytest.fail("fail2ban is not installed: tests/run installs it (as root)")
        pytest.skip("fail2ban is not installed")
    return FAIL2BAN_REGEX


def matched(fail2ban_regex, log_path):
    out = subprocess.run([fail2ban_regex, "--print-all-matched", log_path, FILTER],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True).stdout
    found = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out)
    assert found, out
    return int(found.group(3)), out


def test_fail2ban_filter_matches_each_401_in_the_log_file(fail2ban_regex, spool, write_config):
    path = os.path.join(spool.base, "pbxcall.log")
    config = write_config(log_file=path)
    envs = [cgi_environ(SEED_QUERY, config=config, REMOTE_ADDR="203.0.113.%d" % (index + 1),
                        HTTP_AUTHORIZATION="Bearer guess-%d" % index) for index in range(4)]
    envs.append(cgi_environ(SEED_QUERY, config=config))  # a good one must not match
    envs.append(cgi_environ("from=101&to=1", config=config))  # nor a 400
    run_cgi_many(envs)
    count, out = matched(fail2ban_regex, path)
    assert count == 4, out
    for index in range(4):
        assert "203.0.113.%d" % (index + 1) in out


def test_fail2ban_filter_on_apache_error_log(fail2ban_regex):
    from apache import Apache, available
    if not available():
        pytest.fail("apache2 is not installed")
    for style in ("2.4", "wsgi"):
        with Apache(style) as server:
            for index in range(3):
                server.request("/api/make_call.php?" + SEED_QUERY, auth="Bearer nope-%d" % index)
            server.request("/api/make_call.php?" + SEED_QUERY)
            log = os.path.join(server.base, "copy.log")
            with open(log, "w") as stream:
                stream.write(server.log())
            count, out = matched(fail2ban_regex, log)
            assert count == 3, (style, out)


# -- forging a ban (issue 13 item 9) ------------------------------------------------------

FORGED = "pbxcall: time=2026-01-01T00:00:00Z outcome=unauthorized status=401 client=6.6.6.6 key=-"
Q = FORGED.replace(" ", "%20").replace("=", "%3D")


def forging_requests():
    """(path with query, extra headers) that each try to put FORGED into a log line:
    in the path of a 404, after an endpoint, in every field, split by a newline, in a
    Referer, in the Authorization header."""
    return [
        ("/" + FORGED.replace(" ", "%20"), {}),
        ("/api/make_call.php/" + Q, {}),
        ("/x/" + Q + "/make_call.php", {}),
        ("/api/make_call.php?from=101&to=" + Q, {}),
        ("/api/make_call.php?from=" + Q + "&to=89998887766", {}),
        ("/api/make_call.php?from=101&to=89998887766&external_id=" + Q, {}),
        ("/api/make_call.php?from=101&to=89998887766&delay=" + Q, {}),
        ("/api/make_call.php?from=101&to=89998887766&at=" + Q, {}),
        ("/api/call_status.php?filename=" + Q, {}),
        ("/api/call_status.php?external_id=" + Q, {}),
        ("/api/make_call.php?from=101&to=1%0A" + Q, {}),
        ("/api/make_call.php?from=101&to=1%0D%0A" + Q, {}),
        ("/api/make_call.php?from=101&to=89998887766", {"Referer": FORGED}),
        ("/api/make_call.php?from=101&to=89998887766", {"X-Forwarded-For": "6.6.6.6"}),
    ]


def assert_no_forged_ban(fail2ban_regex, log_path, genuine):
    """fail2ban's filter over the log bans exactly the ``genuine`` 401s, all 127.0.0.1
    (a genuine line may end with a forged Referer: the address fail2ban takes is the real one)."""
    out = subprocess.run([fail2ban_regex, "-o", "ip", log_path, FILTER], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True).stdout
    assert out.split() == ["127.0.0.1"] * genuine, out


def test_item9_no_ban_can_be_forged_through_the_dev_server(fail2ban_regex, spool, write_config):
    import socket
    import sys

    log = os.path.join(spool.base, "pbxcall.log")
    config = write_config(log_file=log, api_key="forge-test-key-0123456")
    server = subprocess.Popen([sys.executable, "-m", "pbxcall", "serve", "--config", config, "--port", "0"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        port = int(re.search(r"http://[0-9.]+:(\d+)/", server.stdout.readline()).group(1))
        genuine = 0
        for path, headers in forging_requests():
            for auth in ("Bearer forge-test-key-0123456", "Bearer wrong-" + Q):
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    lines = ["GET %s HTTP/1.0" % path, "Authorization: " + auth]
                    lines += ["%s: %s" % pair for pair in headers.items()]
                    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
                    answer = sock.makefile("rb").read()
                genuine += b" 401 " in answer.split(b"\r\n")[0]
    finally:
        server.terminate()
        server.wait(10)
    assert genuine >= 10
    assert_no_forged_ban(fail2ban_regex, log, genuine)


@pytest.mark.parametrize("style, mpm, module", [("2.4", "event", "cgid"), ("2.4.6", "prefork", "cgi"),
                                                ("wsgi", "event", None)])
def test_item9_no_ban_can_be_forged_through_apache(fail2ban_regex, style, mpm, module, tmp_path):
    """All three shipped configs; also from a denied address (Apache's AH01630 lines
    echo the path) and with Apache's own 404 for a path outside pbxcall."""
    from apache import Apache, available
    if not available():
        pytest.fail("apache2 is not installed")
    with Apache(style, mpm=mpm, cgi_module=module or "cgid") as server:
        genuine = 0
        for path, headers in forging_requests():
            for auth, source in (("Bearer wrong-" + Q, "127.0.0.1"), (True, "127.0.0.1"), (True, "127.0.0.2")):
                status, _, _ = server.request(path, headers=headers, auth=auth, source=source)
                genuine += status == 401
        log = str(tmp_path / "error.log")
        with open(log, "w") as stream:
            stream.write(server.log())
        assert "6.6.6.6" in server.log()  # the attempts did reach the log
    assert genuine >= 10
    assert_no_forged_ban(fail2ban_regex, log, genuine)
