"""Normalise and validate the three request fields.  Pure: values in, values out.

A value that passes here ends up inside an Asterisk call file, whose parser has
hazards of its own (``;`` ends a line anywhere, ``#`` after a space starts a
comment, a newline starts a new keyword).  So besides the configurable patterns a
fixed character set applies that no setting can widen: dial strings are ASCII
letters, digits, ``+``, ``*`` and ``#``; ``external_id`` has its own fixed set.

The default patterns are checked with plain string operations, so a CGI request
that keeps the defaults never imports ``re`` (see bench/README.md).
"""

from .errors import InvalidExternalId, InvalidFrom, InvalidTo, shown

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Callable, Optional

DEFAULT_FROM_PATTERN = "^[0-9]{2,8}$"
DEFAULT_TO_PATTERN = r"^\+?[0-9]{3,15}$"

#: stripped from ``to`` before it is checked: what people type inside phone numbers
TO_STRIP = " -.()"

_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: the widest set a dial string may ever use, whatever the patterns allow
DIAL_CHARS = _DIGITS | _LETTERS | frozenset("+*#")
EXTERNAL_ID_CHARS = _DIGITS | _LETTERS | frozenset("._:@/+=-")
EXTERNAL_ID_MAX = 128


def _digits(value: str, low: int, high: int) -> bool:
    return low <= len(value) <= high and _DIGITS.issuperset(value)


def _default_from(value: str) -> bool:
    return _digits(value, 2, 8)


def _default_to(value: str) -> bool:
    return _digits(value[1:] if value[:1] == "+" else value, 3, 15)


_BUILTIN = {DEFAULT_FROM_PATTERN: _default_from, DEFAULT_TO_PATTERN: _default_to}


class Pattern:
    """A full-match rule from a setting such as ``from_pattern``.

    Compiled with ``re.ASCII`` (``\\d`` must not admit Arabic-Indic digits) and
    matched against the whole value.  Raises ``ValueError`` for a bad regex.
    """

    __slots__ = ("source", "_match")

    def __init__(self, source: str) -> None:
        self.source = source
        builtin = _BUILTIN.get(source)
        if builtin is not None:
            self._match: "Callable[[str], bool]" = builtin
        else:
            import re

            try:
                compiled = re.compile(source, re.ASCII)
            except re.error as exc:
                raise ValueError("not a valid regular expression: %s" % exc)
            self._match = lambda value: compiled.fullmatch(value) is not None

    def __call__(self, value: str) -> bool:
        return self._match(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.source == self.source

    def __repr__(self) -> str:
        return "Pattern(%r)" % self.source


DEFAULT_FROM = Pattern(DEFAULT_FROM_PATTERN)
DEFAULT_TO = Pattern(DEFAULT_TO_PATTERN)


def normalise_to(raw: str) -> str:
    """``+7 (999) 888-77.66`` -> ``+79998887766``; nothing else is changed."""
    for char in TO_STRIP:
        raw = raw.replace(char, "")
    return raw


def check_from(value: str, pattern: "Pattern" = DEFAULT_FROM) -> str:
    """The agent's extension, unchanged, or :class:`InvalidFrom`."""
    if value and DIAL_CHARS.issuperset(value) and pattern(value):
        return value
    raise InvalidFrom("from %s does not match %s" % (shown(value), pattern.source))


def check_to(value: str, pattern: "Pattern" = DEFAULT_TO) -> str:
    """The normalised destination, or :class:`InvalidTo`."""
    number = normalise_to(value)
    if number and DIAL_CHARS.issuperset(number) and pattern(number):
        return number
    raise InvalidTo("to %s does not match %s" % (shown(value), pattern.source))


def check_external_id(value: "Optional[str]") -> "Optional[str]":
    """The CRM id, ``None`` when absent or empty, or :class:`InvalidExternalId`."""
    if not value:
        return None
    if len(value) <= EXTERNAL_ID_MAX and EXTERNAL_ID_CHARS.issuperset(value):
        return value
    raise InvalidExternalId("external_id %s is not 1-128 of [A-Za-z0-9._:@/+=-]" % shown(value))
