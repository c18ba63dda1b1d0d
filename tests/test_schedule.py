"""pbxcall.schedule: at / delay into a time, checked against datetime."""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcall.errors import InvalidSchedule
from pbxcall.schedule import iso_utc, parse_iso, when

NOW = 1796083200.0  # 2026-12-01T00:00:00Z


@pytest.mark.parametrize("text, epoch", [
    ("2026-12-01T03:00:00+03:00", NOW), ("2026-12-01T00:00:00Z", NOW), ("2026-12-01 00:00:00z", NOW),
    ("2026-11-30T19:00:00-0500", NOW), ("2026-12-01T00:00+00:00", NOW), ("2026-12-01T00:00:00.75Z", NOW + 0.75),
    ("2024-02-29T12:00:00Z", 1709208000.0), ("1970-01-01T00:00:00Z", 0.0),
])
def test_parse_iso(text, epoch):
    assert parse_iso(text) == epoch


@pytest.mark.parametrize("text", ["2026-12-01T00:00:00", "2026-12-01", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                                  "2026-12-01T24:00:00Z", "2026-12-01T00:00:00+24:00", "2026-12-01T00:00:00.Z",
                                  "tomorrow", "", "2026-12-01T00:00:00+3", "2026-12-01T00:00:00 +03:00",
                                  "\u0662026-12-01T00:00:00Z"])
def test_parse_iso_refuses(text):
    with pytest.raises(ValueError):
        parse_iso(text)


@given(st.datetimes(min_value=datetime.datetime(1971, 1, 1), max_value=datetime.datetime(2200, 1, 1)),
       st.integers(-14 * 60, 14 * 60))
def test_parse_iso_agrees_with_datetime(moment, offset_minutes):
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone, microsecond=0)
    assert parse_iso(aware.isoformat()) == aware.timestamp()


def test_iso_utc():
    assert iso_utc(NOW + 3600.9) == "2026-12-01T01:00:00Z"


@pytest.mark.parametrize("at, delay, expected", [
    (None, None, None), (None, "0", NOW), (None, "3600", NOW + 3600), (str(int(NOW) + 60), None, NOW + 60),
    ("2026-12-01T10:00:00+03:00", None, NOW + 7 * 3600), (str(int(NOW) - 30), None, NOW),  # clock skew
    (None, str(7 * 86400), NOW + 7 * 86400),
])
def test_when(at, delay, expected):
    assert when(at, delay, NOW, 7) == expected


@pytest.mark.parametrize("at, delay", [
    ("2026-11-30T23:58:00Z", None), (str(int(NOW) - 61), None), (None, str(7 * 86400 + 1)),
    ("2026-12-09T00:00:00Z", None), ("2026-12-01T10:00:00+03:00", "60"), ("soon", None), (None, "-5"),
    (None, "1.5"), (None, "\u0665"), ("", None), (None, ""),
    (None, "+60"), (None, " 60"), (None, "6_0"), ("+" + str(int(NOW) + 60), None), (str(int(NOW) + 60) + " ", None),
    ("2026-+1-01T00:00:00Z", None), ("2026-12-01T+1:00:00Z", None), ("2026-12-01T 1:00:00Z", None),
    ("2026-12-01T00:00:0_Z", None), ("2026-12-01T00:00:00+ 1:00", None),
])
def test_when_refuses(at, delay):
    with pytest.raises(InvalidSchedule) as info:
        when(at, delay, NOW, 7)
    assert (info.value.status, info.value.code) == (400, "invalid_schedule")


@pytest.mark.parametrize("at, delay, detail", [
    ("2026-12-01T10:00:00+03:00", "60", "both at and delay given"),
    ("soon", None, "not a time: at soon delay -"),
    (None, "1 5", "not a time: at - delay 1\\x205"),
    (None, "0" * 12, "not a time: at - delay 000000000000"),  # 12 digits, whatever their value
    ("0" * 12, None, "not a time: at 000000000000 delay -"),
    ("2026-11-30T23:58:00Z", None, "at 2026-11-30T23:58:00Z is in the past"),
    (str(int(NOW) + 7 * 86400 + 1), None, "at 1796688001 delay - is more than max_schedule_days 7 ahead"),
    (None, str(7 * 86400 + 1), "at - delay 604801 is more than max_schedule_days 7 ahead"),
])
def test_when_says_why_for_the_log(at, delay, detail):
    with pytest.raises(InvalidSchedule) as info:
        when(at, delay, NOW, 7)
    assert info.value.detail == detail


@pytest.mark.parametrize("at, delay, now, expected", [
    (None, "0" * 9 + "60", NOW, NOW + 60),  # 11 digits are allowed
    ("0" + str(int(NOW) + 60), None, NOW, NOW + 60),
    (str(int(NOW) - 60), None, NOW, NOW),  # exactly the allowed clock skew: now
    (None, "0", NOW + 0.25, NOW + 1),  # whole seconds, never earlier than asked
    (None, "10", NOW + 0.75, NOW + 11),
    (str(int(NOW) - 30), None, NOW + 0.5, NOW + 1),
    ("2026-12-01T00:00:00.5Z", None, NOW, NOW + 1),
    (None, str(7 * 86400), NOW, NOW + 7 * 86400),  # exactly max_schedule_days ahead
    (str(int(NOW) + 7 * 86400), None, NOW, NOW + 7 * 86400),
])
def test_when_at_its_edges(at, delay, now, expected):
    got = when(at, delay, now, 7)
    assert got == expected and isinstance(got, int)


@pytest.mark.parametrize("text, epoch", [
    ("0000-03-01T00:00:00Z", -719468 * 86400.0),  # the algorithm's own epoch: year 0 is a leap year
    ("0000-02-29T00:00:00Z", -719469 * 86400.0),
    ("0001-01-01T00:00:00Z", -62135596800.0),  # datetime.min
    ("1600-02-29T00:00:00Z", -11670998400.0),  # 1600 is a leap year (divisible by 400)
    ("2000-02-29T23:59:59Z", 951868799.0),
    ("2100-03-01T00:00:00Z", 4107542400.0),
    ("2000-03-01T00:00:00Z", 951868800.0),  # 2000 // 400 != 2000 // 401: the era is exact
    ("2026-12-01T00:00:00.000Z", NOW),
    ("2026-07-31T00:00:00Z", 1785456000.0), ("2026-10-31T00:00:00Z", 1793404800.0),
    ("2026-12-31T00:00:00Z", NOW + 30 * 86400), ("2024-02-29T00:00:00Z", 1709164800.0),
    ("2026-12-01T00:00:00,25+00:00", NOW + 0.25),
    ("2026-12-01t00:00:00.000001Z", NOW + 0.000001),
    ("2026-12-01T23:59:59-23:59", NOW + 86399 + 86340),
])
def test_parse_iso_far_and_odd(text, epoch):
    assert parse_iso(text) == epoch


@pytest.mark.parametrize("text", ["1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-00-01T00:00:00Z",
                                  "2026-12-00T00:00:00Z", "2026-12-01T00:60:00Z", "2026-12-01T00:00:60Z",
                                  "2026-12-01T00:00:00+00:60", "2026-12-01T00:00:00+0000Z", "2026-12-01T00:00:00+00-00",
                                  "2026/12/01T00:00:00Z", "2026-12/01T00:00:00Z", "2026-12-01X00:00:00Z",
                                  "2026-12-01T00-00:00Z", "2026-12-01T00:00:00Zz", "2026-12-01T00:00:00,Z",
                                  "2026-12-01T00:00Z0", "2026-12-01T00:00:00*00:00", "2026-12-01T00:00:00.5E1Z",
                                  "2026-12-01T00:00:00.e5Z", "2024-02-30T00:00:00Z", "2026-06-31T00:00:00Z",
                                  "2026-09-31T00:00:00Z", "2026-11-31T00:00:00Z", "2026-01-32T00:00:00Z"])
def test_parse_iso_refuses_more(text):
    with pytest.raises(ValueError):
        parse_iso(text)
