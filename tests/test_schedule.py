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
])
def test_when_refuses(at, delay):
    with pytest.raises(InvalidSchedule) as info:
        when(at, delay, NOW, 7)
    assert (info.value.status, info.value.code) == (400, "invalid_schedule")
