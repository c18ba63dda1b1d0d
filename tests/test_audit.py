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
