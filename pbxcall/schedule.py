"""When to place a call: ``at`` (ISO 8601 with an offset, or Unix seconds) or ``delay``.

Pure: text and the current time in, epoch seconds out.  Asterisk schedules a call by
the call file's mtime; :mod:`pbxcall.spool` sets it before the rename.  ``datetime``
is not used: Python 3.6 has no ``fromisoformat``, and a CGI process pays for imports.
"""

from .errors import InvalidSchedule, shown

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Optional

#: an ``at`` this far in the past still counts as "now" (clocks of CRM and PBX differ)
SKEW_SECONDS = 60


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` admits other scripts; ``isascii`` is 3.7+)."""
    return bool(text) and all("0" <= char <= "9" for char in text)


def _digits(text: str, start: int, count: int) -> int:
    part = text[start:start + count]
    if len(part) != count or not _is_digits(part):
        raise ValueError(text)
    return int(part)


def parse_iso(text: str) -> float:
    """``2026-12-01T10:00:00+03:00`` (or ``Z``, ``+0300``, fractions, space for T) -> epoch."""
    year, month, day = _digits(text, 0, 4), _digits(text, 5, 2), _digits(text, 8, 2)
    if text[4:5] != "-" or text[7:8] != "-" or text[10:11] not in ("T", "t", " "):
        raise ValueError(text)
    hour, minute = _digits(text, 11, 2), _digits(text, 14, 2)
    if text[13:14] != ":":
        raise ValueError(text)
    pos, second, fraction = 16, 0, 0.0
    if text[pos:pos + 1] == ":":
        second = _digits(text, pos + 1, 2)
        pos += 3
        if text[pos:pos + 1] in (".", ","):
            end = pos + 1
            while _is_digits(text[end:end + 1]):
                end += 1
            if end == pos + 1:  # a point without digits
                raise ValueError(text)
            fraction, pos = float("0." + text[pos + 1:end]), end
    zone = text[pos:]
    if zone in ("Z", "z"):
        offset = 0
    elif zone[:1] in ("+", "-") and len(zone) in (5, 6) and (len(zone) == 5 or zone[3] == ":"):
        hours, minutes = _digits(zone, 1, 2), _digits(zone, len(zone) - 2, 2)
        if hours > 23 or minutes > 59:
            raise ValueError(text)
        offset = (hours * 60 + minutes) * 60 * (1 if zone[0] == "+" else -1)
    else:
        raise ValueError(text)  # an offset is required: a bare local time is ambiguous
    if not (1 <= month <= 12 and 1 <= day <= _month_days(year, month) and hour <= 23 and minute <= 59
            and second <= 59):
        raise ValueError(text)
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second + fraction - offset


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def iso_utc(epoch: float) -> str:
    """Epoch seconds -> ``2026-12-01T07:00:00Z`` (whole seconds)."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


#: digits in a Unix time or a delay: 11 reach the year 5138, far past max_schedule_days
MAX_DIGITS = 11


def when(at: "Optional[str]", delay: "Optional[str]", now: float, max_days: int) -> "Optional[int]":
    """The epoch second to place the call, ``None`` for "now", or :class:`InvalidSchedule`.

    Whole seconds, rounded up (never earlier than asked): Asterisk reads a call file's
    mtime in whole seconds, and the answer, the file and a duplicate's answer must all
    say the same second.
    """
    if at is None and delay is None:
        return None
    if at is not None and delay is not None:
        raise InvalidSchedule(None, "both at and delay given")
    try:
        if delay is not None:
            if not _is_digits(delay) or len(delay) > MAX_DIGITS:
                raise ValueError(delay)
            target = now + int(delay)
        elif at is not None and _is_digits(at):
            if len(at) > MAX_DIGITS:
                raise ValueError(at)
            target = float(int(at))
        else:
            target = parse_iso(at or "")
    except (ValueError, OverflowError):
        raise InvalidSchedule(None, "not a time: at %s delay %s" % (shown(at), shown(delay)))
    if target < now - SKEW_SECONDS:
        raise InvalidSchedule(None, "at %s is in the past" % shown(at))
    if target > now + max_days * 86400:
        raise InvalidSchedule(None, "at %s delay %s is more than max_schedule_days %d ahead"
                              % (shown(at), shown(delay), max_days))
    target = max(target, now)
    return int(target) + (target > int(target))
