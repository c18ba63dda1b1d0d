"""Bad input at scale: at least 10,000 generated requests against the WSGI app.

Any bytes in the query string, the headers and the body; oversize bodies, lying
Content-Lengths, huge headers; JSON nested hundreds deep, names given twice, numbers
of any size; paths with more after an endpoint; status and cancel of names that are
a directory, a FIFO or a symlink in the spool.  Never a 500, never a hang, never a
traceback, and any call file written has only the template's lines.
"""

import io
import json
import os
import shutil
import tempfile
import urllib.parse

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pbxcall.app import make_app
from pbxcall.settings import Settings

from conftest import FAST_TMP, SEED_KEY, Spool
from helpers import TEMPLATE_KEYWORDS, spool_lines

EXAMPLES = int(os.environ.get("PBXCALL_FUZZ_REQUESTS", "10000"))
latin1 = st.binary(max_size=300).map(lambda raw: raw.decode("latin-1"))
plausible_query = st.fixed_dictionaries({}, optional={
    "from": st.one_of(st.from_regex(r"\A[0-9]{2,8}\Z"), st.text(max_size=12)),
    "to": st.one_of(st.from_regex(r"\A\+?[0-9]{3,15}\Z"), st.text(max_size=20)),
    "external_id": st.one_of(st.from_regex(r"\A[A-Za-z0-9._:@/+=-]{1,20}\Z"), st.text(max_size=20)),
    "at": st.one_of(st.from_regex(r"\A[0-9]{1,40}\Z"), st.text(max_size=30)),
    "delay": st.one_of(st.from_regex(r"\A[0-9]{1,40}\Z"), st.text(max_size=10)),
    "filename": st.one_of(st.sampled_from(["call-%016x" % index for index in range(4)]), st.text(max_size=24)),
    "junk": st.text(max_size=20),
}).map(urllib.parse.urlencode)
#: names like calls that are not regular files in the fuzz spool (see ``world``)
ODD_NAMES = ["call-%016x" % index for index in range(4)]
nested = st.tuples(st.integers(1, 400), st.sampled_from(["[", '{"from": '])).map(
    lambda case: (case[1] * case[0] + "1" + ("]" if case[1] == "[" else "}") * case[0]).encode())
duplicated = st.tuples(st.sampled_from(["from", "to", "external_id", "at", "junk"]), st.text(max_size=8),
                       st.text(max_size=8)).map(
    lambda case: ('{"%s": %s, "to": "89998887766", "from": "101", "%s": %s}'
                  % (case[0], json.dumps(case[1]), case[0], json.dumps(case[2]))).encode())
huge_numbers = st.fixed_dictionaries({}, optional={
    "from": st.integers(), "to": st.integers(), "delay": st.integers(), "at": st.integers(),
    "external_id": st.integers(-10 ** 400, 10 ** 400)}).map(lambda d: json.dumps(d).encode())


def mostly(usual, other, percent=80):
    """``usual`` in ``percent`` of the cases: the deeper code paths get most of the requests."""
    return st.integers(1, 100).flatmap(lambda roll: usual if roll <= percent else other)


request = st.fixed_dictionaries({
    "REQUEST_METHOD": mostly(st.sampled_from(["GET", "POST"]),
                             st.one_of(st.sampled_from(["PUT", "HEAD", "OPTIONS", "get"]), latin1)),
    "PATH_INFO": mostly(st.just("/api/make_call.php"), st.one_of(
        st.sampled_from(["/api/call_status.php", "/api/cancel_call.php", "/api/other.php",
                         "/api/make_call.php/make_call.php", "/api/call_status.php/make_call.php",
                         "/api/make_call.php/", "/make_call.php/x/make_call.php"]), latin1), 80),
    "QUERY_STRING": mostly(plausible_query, latin1, 60),
    "HTTP_AUTHORIZATION": mostly(st.just("Bearer " + SEED_KEY), st.one_of(
        st.none(), latin1, latin1.map(lambda text: "Bearer " + text)), 70),
    "CONTENT_TYPE": st.one_of(st.none(), st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                                          "multipart/form-data", "text/plain; charset=utf-8"]),
                              latin1),
    "body": st.one_of(st.binary(max_size=500), plausible_query.map(str.encode),
                      st.dictionaries(st.sampled_from(["from", "to", "external_id"]),
                                      st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans(),
                                                st.lists(st.integers(), max_size=2))).map(
                                                    lambda d: json.dumps(d).encode()),
                      nested, duplicated, huge_numbers,
                      st.integers(64 * 1024 - 2, 64 * 1024 + 2).map(lambda n: b"x" * n)),
    "length": st.one_of(st.just("actual"), st.none(), st.sampled_from(["-1", "abc", "99999999", "0", "3"])),
    "huge": st.one_of(st.none(), st.integers(1, 20000).map(lambda n: "h" * n)),
})


@pytest.fixture(scope="module")
def world():
    base = tempfile.mkdtemp(prefix="pbxcall-fuzz-", dir=FAST_TMP)
    spool = Spool(base)
    done = os.path.join(base, "outgoing_done")
    os.mkdir(done)
    # Names like calls that are not calls: a directory, a FIFO, symlinks (to a file, dangling).
    for directory in (spool.outgoing, done):
        os.mkdir(os.path.join(directory, ODD_NAMES[0]))
        os.mkfifo(os.path.join(directory, ODD_NAMES[1]))
        os.symlink("/etc/hostname", os.path.join(directory, ODD_NAMES[2]))
        os.symlink("/nonexistent/x", os.path.join(directory, ODD_NAMES[3]))
    log = io.StringIO()
    app = make_app(Settings.from_mapping(spool.config()), log)
    yield app, spool, log
    shutil.rmtree(base, ignore_errors=True)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=request)
def test_no_request_breaks_pbxcall(world, case):
    app, spool, log = world
    body = case.pop("body")
    length = case.pop("length")
    huge = case.pop("huge")
    environ = {"SCRIPT_NAME": "", "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body), "wsgi.errors": log,
               "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": False,
               "wsgi.multiprocess": True, "wsgi.run_once": True}
    environ.update({name: value for name, value in case.items() if value is not None})
    if length == "actual":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    if huge is not None:
        environ["HTTP_X_HUGE"] = huge
        environ["HTTP_COOKIE"] = huge
    seen = []
    payload = b"".join(app(environ, lambda status, headers: seen.append((status, dict(headers)))))
    status = int(seen[0][0].split()[0])
    event("HTTP %d" % status)
    assert status in (200, 400, 401, 404, 405), payload
    assert seen[0][1]["Content-Type"] == "application/json; charset=utf-8"
    answer = json.loads(payload.decode("ascii"))
    assert answer["status"] == ("OK" if status == 200 else "ERROR")
    assert "Traceback" not in log.getvalue()
    log.seek(0)
    log.truncate()
    for name in spool.calls():
        if name in ODD_NAMES:
            continue
        keywords = [keyword for keyword, _ in spool_lines(spool.read(name))]
        # without and with external_id
        assert keywords in (TEMPLATE_KEYWORDS[:9] + ["Archive"], TEMPLATE_KEYWORDS)
        os.unlink(os.path.join(spool.outgoing, name))
    assert spool.staged() == []
