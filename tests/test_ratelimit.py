"""pbxcall.ratelimit: limits that hold across separate real CGI processes."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcall.errors import RateLimited
from pbxcall.ratelimit import hit
from pbxcall.settings import Settings, parse_rate

from conftest import AUTH, FAST_TMP, SEED_QUERY
from helpers import as_nobody, cgi_environ, run_cgi_many


@pytest.mark.parametrize("text, rate", [("30/minute", (30, 60)), ("6/minutes", (6, 60)), ("1/second", (1, 1)),
                                        ("100/hour", (100, 3600)), ("5 / Day", (5, 86400))])
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0/minute", "x/minute", "5/week", "5", "-1/second", 30])
def test_parse_rate_refuses(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_window_counts_slices_and_errs_on_the_safe_side(spool):
    state = os.path.join(spool.base, "state")
    for second in range(3):
        hit(state, [("key.a", (3, 60))], clock=lambda: 1000.0 + second)
    with pytest.raises(RateLimited) as info:
        hit(state, [("key.a", (3, 60))], clock=lambda: 1030.0)
    # The 1000.0 request leaves the window at 1060.0; its one-second slice at 1061.0.
    assert info.value.retry_after == 31 and info.value.headers == [("Retry-After", "31")]
    with pytest.raises(RateLimited):
        hit(state, [("key.a", (3, 60))], clock=lambda: 1060.5)
    hit(state, [("key.a", (3, 60))], clock=lambda: 1061.0)
    with open(os.path.join(state, "rate.key.a")) as stream:
        assert stream.read().split() == ["1001", "1", "1002", "1", "1061", "1"]


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 5), seconds=st.sampled_from([1, 10, 60, 3600]),
       gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=40))
def test_never_more_than_the_limit_in_any_window(count, seconds, gaps):
    """Whatever the arrival times, no window of the limit's length holds more than count."""
    import shutil
    import tempfile
    state = tempfile.mkdtemp(dir=FAST_TMP)
    now, allowed = 1000.0, []
    try:
        for gap in gaps:
            now += gap * seconds / 30
            try:
                hit(state, [("key.k", (count, seconds))], clock=lambda: now)
                allowed.append(now)
            except RateLimited as exc:
                assert exc.retry_after >= 1
    finally:
        shutil.rmtree(state)
    for start in allowed:
        assert sum(start <= t < start + seconds for t in allowed) <= count


def test_state_files_stay_small(spool):
    state = os.path.join(spool.base, "state")
    for index in range(5000):
        hit(state, [("key.big", (1000000, 60))], clock=lambda: 1000.0 + index * 0.1)
    assert os.path.getsize(os.path.join(state, "rate.key.big")) < 61 * 16


def test_a_refused_request_costs_no_slot_in_any_bucket(spool):
    state = os.path.join(spool.base, "state")
    hit(state, [("from.101", (1, 60))], clock=lambda: 1000.0)
    with pytest.raises(RateLimited):
        hit(state, [("key.a", (2, 60)), ("from.101", (1, 60))], clock=lambda: 1001.0)
    hit(state, [("key.a", (2, 60)), ("from.102", (1, 60))], clock=lambda: 1002.0)
    hit(state, [("key.a", (2, 60)), ("from.103", (1, 60))], clock=lambda: 1003.0)  # key.a had only one use before
    with pytest.raises(RateLimited):
        hit(state, [("key.a", (2, 60))], clock=lambda: 1004.0)


def test_defaults_are_on():
    settings = Settings.from_mapping({"api_key": "k-123456789"})
    assert settings.rates == {"per_key": (60, 60), "per_from": (10, 60)}
    assert settings.state_path == "/var/spool/asterisk/pbxcall"
    assert Settings.from_mapping({"api_key": "k-123456789", "rate_limit": None}).rates == {}


def test_429_through_the_app(app_factory, spool):
    app = app_factory(rate_limit={"per_from": "2/minute"})
    for _ in range(2):
        app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH)
    response = app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, status=429)
    assert response.json == {"status": "ERROR", "error": "Too many requests", "code": "rate_limited"}
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    app.get("/api/make_call.php?from=102&to=89998887766", headers=AUTH)  # another extension
    assert len(spool.calls()) == 3


def test_parallel_cgi_processes_never_exceed_the_limit(spool, write_config):
    """30 real CGI processes at once against 10/minute per key: exactly 10 calls."""
    config = write_config(rate_limit={"per_key": "10/minute"})
    results = run_cgi_many([cgi_environ("from=%d&to=89998887766" % (100 + index), config=config)
                            for index in range(30)])
    statuses = sorted(status for status, _, _, _ in results)
    assert statuses == [200] * 10 + [429] * 20
    assert len(spool.calls()) == 10
    assert all("retry-after" in headers for status, headers, _, _ in results if status == 429)


def test_state_directory_not_writable_fails_closed(spool, write_config):
    os.chmod(spool.outgoing, 0o777)
    os.chmod(spool.tmp, 0o777)
    config = write_config(rate_limit={"per_key": "10/minute"}, state_path="/proc/pbxcall-state")
    os.chmod(config, 0o644)
    [(status, _, body, stderr)] = run_cgi_many([cgi_environ(SEED_QUERY, config=config)], preexec_fn=as_nobody)
    assert (status, json.loads(body.decode())["code"]) == (500, "spool_error")
    assert "state_path" in stderr and spool.calls() == []




def test_a_torn_line_is_skipped_and_the_others_count():
    from pbxcall.ratelimit import _slices

    assert _slices(b"100 3\n101 2\n10") == {100: 3, 101: 2}  # the writer died mid-line
    assert _slices(b"100 3\n\n\n100 1\n1 2 3\nx 1\n-1 4\n") == {100: 4}


@pytest.mark.parametrize("now, wait", [(1059.0, 2), (1059.5, 2), (1060.2, 1), (1060.99, 1), (1000.5, 61)])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(now, wait):
    """One slot (1/minute) used at t=1000 (slice 1000): it frees at 1061 (the slice must
    leave the window whole); Retry-After is never 0 and never less than the wait."""
    from pbxcall.ratelimit import check

    live, got = check({1000: 1}, (1, 60), now)
    assert live == {1000: 1} and got == wait


def test_a_slot_frees_exactly_when_its_slice_leaves_the_window():
    from pbxcall.ratelimit import check

    assert check({1000: 1}, (1, 60), 1060.99)[1] == 1
    assert check({1000: 1}, (1, 60), 1061.0) == ({}, 0)


# -- what mutation testing found untested (issue 13 item 20) ---------------------------

def test_an_hour_is_counted_in_minute_slices():
    from pbxcall.ratelimit import check

    # one call in the slice 960-1019 s: the window of an hour frees it at 1020 + 3600
    assert check({16: 1}, (1, 3600), 1000.0) == ({16: 1}, 3620)


def test_retry_after_waits_for_as_many_slices_as_needed():
    from pbxcall.ratelimit import check

    assert check({1000: 1, 1001: 1}, (1, 60), 1030.0) == ({1000: 1, 1001: 1}, 32)


def test_a_slice_exactly_a_window_ahead_is_kept():
    from pbxcall.ratelimit import check

    assert check({1060: 1}, (1, 60), 1000.5)[0] == {1060: 1}
    assert check({1061: 1}, (1, 60), 1000.5)[0] == {}


def test_the_refusal_names_each_bucket_and_its_rate(spool):
    state = os.path.join(spool.base, "state")
    hit(state, [("from.101", (1, 60)), ("key.a", (5, 3600))], clock=lambda: 1000.0)
    with pytest.raises(RateLimited) as info:
        hit(state, [("from.101", (1, 60)), ("key.a", (5, 3600))], clock=lambda: 1001.0)
    assert info.value.detail == "limit reached for from.101 (1/60s), key.a (5/3600s)"


def test_state_that_cannot_be_written_names_the_setting(spool):
    from pbxcall.errors import SpoolError

    state = os.path.join(spool.base, "not-a-directory")
    with open(state, "w"):
        pass
    with pytest.raises(SpoolError) as info:
        hit(state, [("key.a", (1, 60))], clock=lambda: 1000.0)
    assert info.value.detail.startswith("rate limit state in %s (state_path) must be writable by this user: " % state)
