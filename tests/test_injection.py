"""No input ever produces a call file with a line the template does not have.

Hypothesis throws arbitrary text (and arbitrary bytes) at from, to and external_id
through the real WSGI app and a real spool; every answer is either 200 with a file
that Asterisk's parser reads as exactly the template's lines, or a 4xx and no file.
"""

import io
import os
import shutil
import tempfile
import urllib.parse

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from webtest import TestApp

from pbxcall.app import make_app
from pbxcall.numbers import normalise_to
from pbxcall.settings import Settings

from conftest import AUTH, FAST_TMP, Spool
from helpers import spool_lines

EXAMPLES = int(os.environ.get("PBXCALL_FUZZ_EXAMPLES", "2500"))
NASTY = ["\r", "\n", "\r\n", ";", "#", " #", "\x00", "=", " ", "\t", "..", "/", "@", "Application: System",
         "\u2028", "\x85", "\ufeff", "%0A", "*", "+", "-", "(", ")", "."]
text_fields = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("0123456789+*#-. ()"), max_size=20),
    st.lists(st.sampled_from(NASTY + ["1", "23", "456", "crm", "x"]), max_size=8).map("".join),
    st.text(min_size=1000, max_size=2100),
)

# Valid values half the time, so that the 200 branch is taken often and checked line by line.
def half_valid(valid):
    return st.booleans().flatmap(lambda ok: valid if ok else text_fields)


from_fields = half_valid(st.from_regex(r"\A[0-9]{2,8}\Z"))
to_fields = half_valid(st.from_regex(r"\A\+?([0-9][ ().-]?){3,15}\Z"))
external_ids = st.one_of(st.none(), half_valid(st.from_regex(r"\A[A-Za-z0-9._:@/+=-]{1,128}\Z")))

@pytest.fixture(scope="module")
def world():
    base = tempfile.mkdtemp(prefix="pbxcall-fuzz-", dir=FAST_TMP)
    spool = Spool(base)
    config = spool.config()
    app = TestApp(make_app(Settings.from_mapping(config), io.StringIO()))
    yield app, spool
    shutil.rmtree(base, ignore_errors=True)


def expected_lines(from_, to, external_id):
    lines = [("Channel", "Local/%s@from-internal" % from_), ("CallerID", '"%s" <%s>' % (to, from_)),
             ("Account", from_), ("Context", "from-internal"), ("Extension", to), ("Priority", "1"),
             ("MaxRetries", "2"), ("RetryTime", "60"), ("WaitTime", "30")]
    if external_id:
        lines += [("Set", "CDR(userfield)=" + external_id), ("Set", "__PBXCALL_EXTERNAL_ID=" + external_id)]
    return lines + [("Archive", "yes")]


def check(app, spool, query, sent):
    response = app.get("/api/make_call.php?" + query, headers=AUTH, expect_errors=True)
    event("HTTP %d" % response.status_int)  # --hypothesis-show-statistics shows the mix
    calls = spool.calls()
    assert spool.staged() == []
    if response.status_int == 200:
        assert len(calls) == 1
        text = spool.read(calls[0])
        os.unlink(os.path.join(spool.outgoing, calls[0]))
        assert all(0x20 <= ord(char) < 0x7F for char in text.replace("\n", ""))
        if sent is not None:
            from_, to, external_id = sent
            assert spool_lines(text) == expected_lines(from_, normalise_to(to), external_id or None)
        else:
            assert [key for key, _ in spool_lines(text)][:9] == [key for key, _ in expected_lines("", "", "")]
    else:
        assert 400 <= response.status_int < 500, response.text
        assert response.json["status"] == "ERROR"
        assert calls == []


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(from_=from_fields, to=to_fields, external_id=external_ids)
def test_any_text_gives_template_lines_or_nothing(world, from_, to, external_id):
    app, spool = world
    fields = [("from", from_), ("to", to)] + ([("external_id", external_id)] if external_id is not None else [])
    check(app, spool, urllib.parse.urlencode(fields), (from_, to, external_id))


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=200))
def test_any_query_bytes(world, raw):
    app, spool = world
    check(app, spool, urllib.parse.quote_from_bytes(raw, safe="=&%+"), None)


@pytest.mark.parametrize("field, value", [
    ("to", "123\r\nApplication: System"), ("to", "123\nApplication: System"), ("to", "123%0A"),
    ("to", "123;Application: System"), ("to", "123 #x"), ("to", "\x00123"), ("to", "1" * 2000),
    ("from", "101\nChannel: Local/666@evil"), ("from", "101;x"), ("from", "1" * 2000),
    ("external_id", "x\nApplication: System"), ("external_id", "x;y"), ("external_id", "x #y"),
    ("external_id", "x\x00"), ("external_id", "x" * 2000), ("external_id", "x\r"),
])
def test_explicit_injections_write_nothing(world, field, value):
    app, spool = world
    fields = {"from": "101", "to": "89998887766", field: value}
    response = app.get("/api/make_call.php?" + urllib.parse.urlencode(fields), headers=AUTH, expect_errors=True)
    assert response.status_int == 400 and spool.calls() == []


@pytest.mark.parametrize("raw", ["to=%FF%FE", "to=%C3%28", "external_id=%80", "from=%ED%A0%80"])
def test_non_utf8_is_bad_request(world, raw):
    app, spool = world
    response = app.get("/api/make_call.php?from=101&to=123456&" + raw, headers=AUTH, expect_errors=True)
    assert (response.status_int, response.json["code"]) == (400, "bad_request") and spool.calls() == []
