"""pbxcall.app under WebTest: the endpoint exactly as SPEC §1-3."""

import json
import os
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webtest import TestApp

from pbxcall.app import make_app
from pbxcall.jsonwire import dumps

from conftest import AUTH, SEED_KEY, SEED_QUERY
from helpers import fixture

SEED_JSON = ('{"status": "OK", "from": "101", "to": "89998887766", "external_id": "crm-2345", '
             '"filename": "%s", "file": "%s"}')


def assert_json_headers(response):
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"


def test_seed_request_exact_json_and_golden_file(client, spool):
    response = client(SEED_QUERY)
    name = spool.calls()[0]
    assert response.body.decode() == SEED_JSON % (name, name)
    assert_json_headers(response)
    assert spool.only_call() == fixture("seed.call")
    assert spool.staged() == []


def test_old_php_example_without_external_id(client, spool):
    response = client("from=30&to=89229954595")
    assert response.json["external_id"] is None
    assert list(response.json) == ["status", "from", "to", "external_id", "filename", "file"]
    assert spool.only_call() == fixture("legacy.call")


def test_to_is_normalised_in_answer_and_file(client, spool):
    response = client("from=101&to=" + urllib.parse.quote("+7 (999) 888-77-66"))
    assert response.json["to"] == "+79998887766"
    assert "Extension: +79998887766\n" in spool.only_call()


def test_bearer_scheme_is_case_insensitive(app, spool):
    app.get("/api/make_call.php?" + SEED_QUERY, headers={"Authorization": "bEaReR  " + SEED_KEY})
    assert len(spool.calls()) == 1


def test_redirect_authorization_variable(app, spool):
    app.get("/api/make_call.php?" + SEED_QUERY,
            extra_environ={"REDIRECT_HTTP_AUTHORIZATION": "Bearer " + SEED_KEY})
    assert len(spool.calls()) == 1


def test_mounted_under_another_prefix(app, spool):
    app.get("/crm/v1/make_call.php?" + SEED_QUERY, headers=AUTH)
    app.get("/make_call.php?" + SEED_QUERY, headers=AUTH,
            extra_environ={"SCRIPT_NAME": "/api/make_call.php", "PATH_INFO": ""})
    assert len(spool.calls()) == 2


def test_post_form(app, spool):
    response = app.post("/api/make_call.php", SEED_QUERY, headers=AUTH,
                        content_type="application/x-www-form-urlencoded")
    assert response.json["external_id"] == "crm-2345"
    assert spool.only_call() == fixture("seed.call")


def test_post_json_with_numbers(app, spool):
    response = app.post("/api/make_call.php", json.dumps({"from": 101, "to": 89998887766,
                                                           "external_id": "crm-2345"}),
                        headers=AUTH, content_type="application/json; charset=utf-8")
    assert (response.json["from"], response.json["to"]) == ("101", "89998887766")
    assert spool.only_call() == fixture("seed.call")


def test_post_query_and_body_merge(app, spool):
    app.post("/api/make_call.php?from=101", "to=89998887766&external_id=crm-2345&from=101", headers=AUTH)
    assert spool.only_call() == fixture("seed.call")


def test_post_with_fields_in_query_and_empty_body(app, spool):
    app.post("/api/make_call.php?" + SEED_QUERY, "", headers=AUTH, content_type="application/json")
    assert spool.only_call() == fixture("seed.call")


def test_extra_fields_are_ignored(client, spool):
    client(SEED_QUERY + "&lead=7&lead=8&api_key=whatever&note=" + urllib.parse.quote("a\nb"))
    assert spool.only_call() == fixture("seed.call")


def test_same_value_twice_is_fine(client, spool):
    client(SEED_QUERY + "&to=89998887766")
    assert len(spool.calls()) == 1


def test_empty_external_id_means_none(client, spool):
    assert client("from=30&to=89229954595&external_id=").json["external_id"] is None
    assert spool.only_call() == fixture("legacy.call")


def test_dot_dot_slash_in_external_id_never_touches_a_path(client, spool):
    response = client("from=101&to=89998887766&external_id=../../etc/passwd")
    assert response.json["filename"].startswith("call-")
    assert "Set: CDR(userfield)=../../etc/passwd\n" in spool.only_call()


def test_archive_and_templates_from_settings(app_factory, spool):
    app = app_factory(archive=True, channel_context="originate-skipvm", max_retries=0, retry_time=120,
                      wait_time=45, caller_id='"CRM {external_id}" <{from}>', account="crm-{from}")
    app.get("/api/make_call.php?from=101&to=%2B79998887766&external_id=crm-2345", headers=AUTH)
    assert spool.only_call() == fixture("custom.call")


BAD_BODY = b"x" * (64 * 1024 + 1)

# (description, method, path, query, body, content type, headers) -> (status, code)
ERROR_TABLE = [
    ("from too short", "GET", "/api/make_call.php", "from=1&to=89998887766", None, None, AUTH, 400, "invalid_from"),
    ("from missing", "GET", "/api/make_call.php", "to=89998887766", None, None, AUTH, 400, "invalid_from"),
    ("from letters", "GET", "/api/make_call.php", "from=abc&to=89998887766", None, None, AUTH, 400, "invalid_from"),
    ("to too short", "GET", "/api/make_call.php", "from=101&to=12", None, None, AUTH, 400, "invalid_to"),
    ("to missing", "GET", "/api/make_call.php", "from=101", None, None, AUTH, 400, "invalid_to"),
    ("to feature code", "GET", "/api/make_call.php", "from=101&to=*97", None, None, AUTH, 400, "invalid_to"),
    ("to with #", "GET", "/api/make_call.php", "from=101&to=123%23", None, None, AUTH, 400, "invalid_to"),
    ("to with ;", "GET", "/api/make_call.php", "from=101&to=123%3B4", None, None, AUTH, 400, "invalid_to"),
    ("external_id space", "GET", "/api/make_call.php", "from=101&to=89998887766&external_id=a+b", None, None,
     AUTH, 400, "invalid_external_id"),
    ("external_id 129", "GET", "/api/make_call.php", "from=101&to=89998887766&external_id=" + "x" * 129,
     None, None, AUTH, 400, "invalid_external_id"),
    ("to LF", "GET", "/api/make_call.php", "from=101&to=123%0AApplication:+System", None, None, AUTH, 400,
     "bad_request"),
    ("external_id CR", "GET", "/api/make_call.php", "from=101&to=123456&external_id=a%0Db", None, None, AUTH,
     400, "bad_request"),
    ("from NUL", "GET", "/api/make_call.php", "from=10%001&to=123456", None, None, AUTH, 400, "bad_request"),
    ("not UTF-8", "GET", "/api/make_call.php", "from=101&to=%FF%FE", None, None, AUTH, 400, "bad_request"),
    ("bad percent", "GET", "/api/make_call.php", "from=101&to=12%G3", None, None, AUTH, 400, "bad_request"),
    ("repeated field", "GET", "/api/make_call.php", "from=101&to=123456&to=654321", None, None, AUTH, 400,
     "bad_request"),
    ("body too big", "POST", "/api/make_call.php", "", BAD_BODY, "application/x-www-form-urlencoded", AUTH,
     400, "bad_request"),
    ("bad JSON", "POST", "/api/make_call.php", "", b"{from", "application/json", AUTH, 400, "bad_request"),
    ("JSON list", "POST", "/api/make_call.php", "", b"[1]", "application/json", AUTH, 400, "bad_request"),
    ("JSON object value", "POST", "/api/make_call.php", "", b'{"from": {"a": 1}, "to": "123456"}',
     "application/json", AUTH, 400, "bad_request"),
    ("JSON bool", "POST", "/api/make_call.php", "", b'{"from": true, "to": "123456"}', "application/json",
     AUTH, 400, "bad_request"),
    ("multipart", "POST", "/api/make_call.php", "", b"--x--", "multipart/form-data; boundary=x", AUTH, 400,
     "bad_request"),
    ("query vs body", "POST", "/api/make_call.php", "to=123456", b"from=101&to=654321",
     "application/x-www-form-urlencoded", AUTH, 400, "bad_request"),
    ("no key", "GET", "/api/make_call.php", SEED_QUERY, None, None, {}, 401, "unauthorized"),
    ("wrong key", "GET", "/api/make_call.php", SEED_QUERY, None, None, {"Authorization": "Bearer nope"}, 401,
     "unauthorized"),
    ("key prefix", "GET", "/api/make_call.php", SEED_QUERY, None, None,
     {"Authorization": "Bearer " + SEED_KEY[:-1]}, 401, "unauthorized"),
    ("Basic scheme", "GET", "/api/make_call.php", SEED_QUERY, None, None, {"Authorization": "Basic " + SEED_KEY},
     401, "unauthorized"),
    ("empty bearer", "GET", "/api/make_call.php", SEED_QUERY, None, None, {"Authorization": "Bearer "}, 401,
     "unauthorized"),
    ("bad key, bad fields", "GET", "/api/make_call.php", "from=x&to=%FF", None, None, {}, 401, "unauthorized"),
    ("other name", "GET", "/api/other.php", SEED_QUERY, None, None, AUTH, 404, "not_found"),
    ("path info", "GET", "/api/make_call.php/x", SEED_QUERY, None, None, AUTH, 404, "not_found"),
    ("PUT", "PUT", "/api/make_call.php", SEED_QUERY, b"", None, AUTH, 405, "method_not_allowed"),
    ("DELETE", "DELETE", "/api/make_call.php", SEED_QUERY, None, None, AUTH, 405, "method_not_allowed"),
    ("HEAD", "HEAD", "/api/make_call.php", SEED_QUERY, None, None, AUTH, 405, "method_not_allowed"),
    ("OPTIONS", "OPTIONS", "/api/make_call.php", SEED_QUERY, None, None, AUTH, 405, "method_not_allowed"),
]


def request(app, method, path, query, body, content_type, headers, status):
    return app.request(path + ("?" + query if query else ""), method=method, body=body,
                       headers=dict(headers, **({"Content-Type": content_type} if content_type else {})),
                       status=status, expect_errors=True)


@pytest.mark.parametrize("case", ERROR_TABLE, ids=[case[0] for case in ERROR_TABLE])
def test_error_table(app, spool, case):
    _, method, path, query, body, content_type, headers, status, code = case
    response = request(app, method, path, query, body, content_type, headers, status)
    assert (response.status_int, response.headers["Content-Type"]) == (status, "application/json; charset=utf-8")
    assert response.headers["Cache-Control"] == "no-store"
    if method != "HEAD":
        assert (response.json["status"], response.json["code"]) == ("ERROR", code)
        assert list(response.json) == ["status", "error", "code"]
    assert spool.calls() == [] and spool.staged() == []


@pytest.mark.parametrize("code, text", [
    ("invalid_from", "Invalid from number"), ("invalid_to", "Invalid to number"),
    ("invalid_external_id", "Invalid external_id"), ("unauthorized", "Unauthorized"),
])
def test_old_php_error_texts(app, code, text):
    case = next(case for case in ERROR_TABLE if case[-1] == code)
    assert request(app, *case[1:-1]).json["error"] == text


def test_401_says_bearer_and_405_says_allow(app):
    assert request(app, "GET", "/api/make_call.php", SEED_QUERY, None, None, {}, 401) \
        .headers["WWW-Authenticate"] == 'Bearer realm="pbxcall"'
    assert request(app, "PUT", "/api/make_call.php", "", b"", None, AUTH, 405).headers["Allow"] == "GET, POST"


def test_missing_header_logs_the_apache_hint(app):
    request(app, "GET", "/api/make_call.php", SEED_QUERY, None, None, {}, 401)
    assert "CGIPassAuth On" in app.log.getvalue()
    assert 'SetEnvIf Authorization "(.+)" HTTP_AUTHORIZATION=$1' in app.log.getvalue()


def test_wrong_key_does_not_log_the_hint_nor_the_token(app):
    request(app, "GET", "/api/make_call.php", SEED_QUERY, None, None, {"Authorization": "Bearer guess-0001"}, 401)
    log = app.log.getvalue()
    assert "CGIPassAuth" not in log and "guess-0001" not in log
    assert "outcome=unauthorized status=401 client=127.0.0.1" in log


def test_one_log_line_per_request_without_the_key(client, app, spool):
    client(SEED_QUERY)
    lines = app.log.getvalue().splitlines()
    assert len(lines) == 1
    assert SEED_KEY not in lines[0]
    name = spool.calls()[0]
    assert lines[0].endswith("outcome=ok status=200 client=127.0.0.1 key=default from=101 to=89998887766 "
                             "external_id=crm-2345 filename=" + name)


def test_log_line_cannot_be_forged(client, app):
    client("from=101&to=12+outcome%3Dok+key%3Dadmin", status=400)
    lines = app.log.getvalue().splitlines()
    assert len(lines) == 1 and " to=12\\x20outcome\\x3dok\\x20key\\x3dadmin " in lines[0]


def test_key_names_in_the_log(app_factory):
    app = app_factory(api_key=Ellipsis, api_keys=[{"name": "crm", "key": "k1-aaaaaaaa"},
                                                  {"name": "shop", "key": "k2-bbbbbbbb"}])
    app.get("/api/make_call.php?" + SEED_QUERY, headers={"Authorization": "Bearer k2-bbbbbbbb"})
    app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=401)
    log = app.log.getvalue()
    assert "key=shop" in log and "k2-bbbbbbbb" not in log and "k1-aaaaaaaa" not in log


def test_log_file_setting(app_factory, spool):
    path = os.path.join(spool.base, "pbxcall.log")
    app = app_factory(log_file=path)
    app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH)
    with open(path) as stream:
        assert "outcome=ok" in stream.read()
    assert app.log.getvalue() == ""


def test_unexpected_exception_is_generic_json_and_traceback_in_log(app, spool, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom from a bug")
    from pbxcall import callfile
    monkeypatch.setattr(callfile, "render", explode)
    response = app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=500)
    assert response.json == {"status": "ERROR", "error": "Internal error", "code": "internal_error"}
    assert_json_headers(response)
    assert "Traceback" in app.log.getvalue() and "RuntimeError" in app.log.getvalue()
    assert spool.calls() == []


def test_spool_error(app_factory, spool):
    os.rmdir(spool.outgoing)
    app = app_factory()
    response = app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=500)
    assert response.json == {"status": "ERROR", "error": "Could not queue the call", "code": "spool_error"}
    assert spool.outgoing in app.log.getvalue()  # the details go to the log only
    assert spool.outgoing not in response.text and spool.staged() == []


def file_app(environ_config, log):
    return TestApp(make_app(None, log), extra_environ={"PBXCALL_CONFIG": environ_config,
                                                       "REMOTE_ADDR": "127.0.0.1"})


def test_config_not_found(spool):
    import io
    log = io.StringIO()
    response = file_app(os.path.join(spool.base, "missing.json"), log).get(
        "/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=500)
    assert response.json == {"status": "ERROR", "error": "Configuration file not found", "code": "config_error"}
    assert "missing.json" in log.getvalue()


def test_config_invalid_and_placeholder(write_config, spool):
    import io
    log = io.StringIO()
    path = write_config(api_key="change-me")
    response = file_app(path, log).get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=500)
    assert response.json == {"status": "ERROR", "error": "Invalid configuration", "code": "config_error"}
    assert "placeholder" in log.getvalue() and spool.calls() == []


def test_settings_file_is_reloaded_when_it_changes(write_config, spool):
    import io
    path = write_config()
    app = file_app(path, io.StringIO())
    app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH)
    write_config(api_key="another-key-456", archive=False)
    app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=401)
    app.get("/api/make_call.php?" + SEED_QUERY, headers={"Authorization": "Bearer another-key-456"})
    assert sum("Archive: yes" not in spool.read(name) for name in spool.calls()) == 1


def test_unknown_setting_is_logged_as_warning(write_config):
    import io
    log = io.StringIO()
    file_app(write_config(colour="blue"), log).get("/api/make_call.php?" + SEED_QUERY, headers=AUTH)
    assert "warning" in log.getvalue() and "'colour'" in log.getvalue()


@pytest.mark.parametrize("obj", [
    {"a": "plain", "b": None, "c": True, "d": False, "e": 7},
    {"q": 'quote " back \\ nl \n cr \r tab \t bs \b ff \f nul \x00 del \x7f'},
    {"u": "\u0430\u0431\u0432 \u20ac \U0001f4de \ud800"},
    {"outcome": {"agent": "answered", "talk_seconds": 3, "ended_at": None, "nested": {"x": True}}, "after": 1},
])
def test_dumps_is_json_dumps(obj):
    assert dumps(obj) == json.dumps(obj)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(),
                    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20))
def test_loads_is_json_loads(value):
    from pbxcall.jsonwire import loads
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert loads(" \n" + json.dumps(value, indent=2) + "\t") == value


def strict_json(text):
    """json.loads as jsonwire reads: no NaN or Infinity (not JSON), and a name given
    twice in an object with different values is an error (json keeps the last)."""
    def constant(name):
        raise ValueError(name)

    def pairs(items):
        result = {}
        for name, value in items:
            if name in result and result[name] != value:
                raise ValueError("duplicate %r" % name)
            result[name] = value
        return result
    return json.loads(text, parse_constant=constant, object_pairs_hook=pairs)


@settings(max_examples=3000)
@given(st.text(alphabet='{}[]":,0123456789.eE+-truefalsn \\u\t\nd8A', max_size=24) | st.text(max_size=20))
def test_loads_fails_where_strict_json_loads_fails(text):
    from pbxcall.jsonwire import loads

    try:
        expected = strict_json(text)
    except ValueError:
        with pytest.raises(ValueError):
            loads(text)
    else:
        assert loads(text) == expected


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "-Infinity", "", "   ", "1 2", '{"a": 1}x'])
def test_loads_refuses_what_is_not_json(text):
    from pbxcall.jsonwire import loads
    with pytest.raises(ValueError):
        loads(text)


@pytest.mark.parametrize("text", [
    "-0", "0.5", "1e5", "1E+2", "2e-3", "1e400", "-1.5E-7", "123456789012345678901234567890", '"\\ud83d\\ude00"',
    '"\\ud83d"', '"\\u00e9\\n\\t\\/\\\\\\""', '"\\uDC00\\uD800"', "  [ ]  ", '{"a": {"b": [1, 2, {}]}}',
    '{"a": 1, "a": 1}', '{"a": [1], "a": [1]}',
    "01", "1.", ".5", "-", "--1", "1e", "1e+", '"\\x"', '"\\u12"', '"a\tb"', "[1,]",
    '{"a":1,}', "[1 2]", '{"a" 1}', "{1: 2}", "tru", "nul", '"abc', "[", "{", "\ufeff1",
])
def test_loads_edge_cases_like_json(text):
    from pbxcall.jsonwire import loads
    try:
        expected = strict_json(text)
    except ValueError:
        with pytest.raises(ValueError):
            loads(text)
    else:
        assert loads(text) == expected and type(loads(text)) is type(expected)


@pytest.mark.parametrize("text, problem", [
    ('{"a": 1, "a": 2}', "given twice"), ('{"to": "1", "x": 0, "to": "2"}', "given twice"),
    ('{"a": {"b": 1}, "a": {"b": 2}}', "given twice"),
    ("[" * 33 + "]" * 33, "Nested more than 32"), ('{"a": ' * 33 + "1" + "}" * 33, "Nested more than 32"),
    ("[" * 100000, "Nested more than 32"),
])
def test_loads_refuses_ambiguous_names_and_deep_nesting(text, problem):
    """Where jsonwire refuses what json takes: a name with two values (json keeps the
    last, so a reader of the first would be fooled), and nesting past 32 (json raises
    RecursionError somewhere past 1,000)."""
    from pbxcall.jsonwire import loads
    with pytest.raises(ValueError, match=problem):
        loads(text)
    assert loads("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)


@pytest.mark.parametrize("char, code", [("%1F", "bad_request"), ("%7F", "bad_request"), ("%C2%80", "bad_request"),
                                        ("%C2%9F", "bad_request"), ("%C2%A0", "invalid_to"),
                                        ("%F0%90%80%80", "invalid_to"), ("%ED%A0%80", "bad_request")])
def test_control_characters_at_their_edges(client, spool, char, code):
    """DEL and C1 controls are refused as such (400 bad_request); U+00A0 and U+10000 are
    characters, refused by the number's pattern; a UTF-8 surrogate is not UTF-8."""
    answer = client("from=101&to=8999" + char + "8887766", status=400).json
    assert answer["code"] == code and spool.calls() == []


def test_compact_json_as_php_json_encode_sends_it(app, spool):
    body = b'{"from":"101","to":"89998887766","external_id":"crm-2345","delay":0}'
    answer = app.post("/api/make_call.php", body, headers=dict(AUTH, **{"Content-Type": "application/json"})).json
    assert (answer["from"], answer["to"], answer["external_id"]) == ("101", "89998887766", "crm-2345")
    assert spool.calls() == [answer["filename"]]


# -- jsonwire: what mutation testing found untested (issue 13 item 20) --------------------

@given(st.dictionaries(st.text(max_size=6), st.one_of(st.text(), st.integers(), st.booleans(), st.none()),
                       max_size=4))
def test_dumps_is_json_dumps_on_any_flat_object(obj):
    assert dumps(obj) == json.dumps(obj)


def test_dumps_at_the_edges_of_escaping():
    for text in ("~", "\x7f", " ", "\x1f", "\uffff", "\U00010000", "\U0010ffff", "\ud800"):
        assert dumps({"a": text}) == json.dumps({"a": text}), repr(text)


def arrays(depth):
    return "[" * depth + "]" * depth


def objects(depth):
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize("text, message", [
    ("X", "Expecting value (char 0)"), ("[1 2]", "Expecting ',' delimiter (char 3)"),
    ('{"a" 1}', "Expecting ':' delimiter (char 5)"),
    ("{1: 2}", "Expecting property name enclosed in double quotes (char 1)"),
    ("[" * 33, "Nested more than 32 deep (char 32)"),
    ('{"ab": 1, "ab": 2}', "name 'ab' given twice with different values (char 17)"),
    ("1X", "Extra data (char 1)"), (' "\\b\\f" X', "Extra data (char 8)"),
    ('"abc', "Unterminated string (char 0)"), ('"a\x01b"', "Invalid control character (char 2)"),
    ('"\\u12G4"', "Invalid \\uXXXX escape (char 3)"), ('"\\u12', "Invalid \\uXXXX escape (char 3)"),
    ('"\\uXXXX"', "Invalid \\uXXXX escape (char 3)"),
    ("-X", "Expecting value (char 0)"), ("-", "Expecting value (char 0)"), ("1.x", "Extra data (char 1)"),
    ("1e", "Extra data (char 1)"), ("1E+", "Extra data (char 1)"), ("01", "Extra data (char 1)"),
    ('"\\x"', "Invalid \\escape (char 1)"), ('"\\u12"', "Invalid \\uXXXX escape (char 3)"),
    ("[0, " + arrays(32) + "]", "Nested more than 32 deep (char 35)"),
    ('{"a": 0, "b": ' + arrays(32) + "}", "Nested more than 32 deep (char 45)"),
])
def test_loads_error_messages(text, message):
    from pbxcall.jsonwire import loads
    with pytest.raises(ValueError) as info:
        loads(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text", [
    arrays(32), objects(32),
    "[0, 0, " + arrays(31) + "]",  # siblings before a deep one add no depth
    '{"a": 0, "b": 0, "c": ' + objects(31) + "}",
    "[" + ", ".join([arrays(31)] * 3) + "]",
    '{"a": ' + arrays(31) + ', "b": ' + objects(31) + "}",
])
def test_loads_counts_depth_exactly(text):
    from pbxcall.jsonwire import loads
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize("text", [
    r'"\ud800\udc00"', r'"\udbff\udfff"', r'"\ud7ff\udc00"', r'"\ud800\udbff"', r'"\udbff\ue000"',
    r'"\ud800"', r'"\udc00"', r'"\udfff\ud800"', r'"\ud800\u0041"', r'"\ud800x"', r'"\uDBFF\uDFFF"',
    r'"\udc00\udc00"', r'"\ud801\udc01"', r'"\udbfe\udffe"',
    "1.5", "-0.0", "1E+2", "0.5e-3", "-12", "0", "[1e5, 2E-1, -3.25]",
])
def test_loads_surrogates_and_numbers_as_json_does(text):
    """A high surrogate (D800-DBFF) and a low one (DC00-DFFF) make one character, as
    json makes it; anything else stays a lone surrogate, also as json keeps it."""
    from pbxcall.jsonwire import loads
    ours, theirs = loads(text), json.loads(text)
    assert ours == theirs and type(ours) is type(theirs)


def test_loads_escapes_and_whitespace():
    from pbxcall.jsonwire import loads
    assert loads(' \t\n\r"\\b\\f\\n\\r\\t\\/\\\\\\"" ') == "\b\f\n\r\t/\\\""
    assert loads("[1, 2, {\"a\": [3]}]") == [1, 2, {"a": [3]}]
    long_name = "n" * 50
    with pytest.raises(ValueError) as info:
        loads('{"%s": 1, "%s": 2}' % (long_name, long_name))
    assert str(info.value).startswith("name '%s' given twice" % ("n" * 40))
