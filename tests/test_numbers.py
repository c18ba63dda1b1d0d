"""pbxcall.numbers: the field rules, exhaustively at the edges, and against the regexes."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcall.errors import InvalidExternalId, InvalidFrom, InvalidTo
from pbxcall.numbers import (
    DEFAULT_FROM,
    DEFAULT_FROM_PATTERN,
    DEFAULT_TO,
    DEFAULT_TO_PATTERN,
    Pattern,
    check_external_id,
    check_from,
    check_to,
    normalise_to,
)


@pytest.mark.parametrize("value", ["10", "101", "30", "12345", "99999999", "00"])
def test_from_accepts_extensions(value):
    assert check_from(value) == value


@pytest.mark.parametrize("value", ["", "1", "123456789", "10a", " 101", "101 ", "+101", "1.0",
                                   "\u0661\u0662\u0663", "101\n", "*101", "10#", "ext101"])
def test_from_refuses(value):
    with pytest.raises(InvalidFrom):
        check_from(value)


def test_everything_old_php_accepted_still_passes():
    # The old PHP checked from against \d{2,5} and to against \d{3,15}.
    for length in range(2, 6):
        assert check_from("7" * length) == "7" * length
    for length in range(3, 16):
        assert check_to("8" * length) == "8" * length


@pytest.mark.parametrize("raw, number", [
    ("89998887766", "89998887766"),
    ("+7 (999) 888-77-66", "+79998887766"),
    ("8.999.888.77.66", "89998887766"),
    ("+123", "+123"),
    ("123456789012345", "123456789012345"),
])
def test_to_normalised(raw, number):
    assert normalise_to(raw) == number
    assert check_to(raw) == number


@pytest.mark.parametrize("raw", ["", "12", "+12", "1234567890123456", "++123", "12+3", "*97", "#123",
                                 "123#", "1234*", "12\t34", "123;", "123\n", "abc", "8999888776\u0666",
                                 "+ 7", "7_999"])
def test_to_refuses(raw):
    with pytest.raises(InvalidTo):
        check_to(raw)


@pytest.mark.parametrize("value", ["crm-2345", "a", "x" * 128, "deal:42/contact@crm.example", "A.b_c+d=e"])
def test_external_id_accepts(value):
    assert check_external_id(value) == value


@pytest.mark.parametrize("value", [None, ""])
def test_external_id_absent(value):
    assert check_external_id(value) is None


@pytest.mark.parametrize("value", ["x" * 129, "a b", "a;b", "a#b", "a\nb", "a,b", "ид", "a\"b", "a\\b",
                                   "${SHELL}", "a'b"])
def test_external_id_refuses(value):
    with pytest.raises(InvalidExternalId):
        check_external_id(value)


@settings(max_examples=3000)
@given(st.text(alphabet=st.characters(max_codepoint=0x700), max_size=20))
def test_builtin_checks_equal_the_documented_regexes(value):
    """The string-operation fast paths decide exactly like the documented patterns."""
    assert DEFAULT_FROM(value) == bool(re.fullmatch(DEFAULT_FROM_PATTERN, value, re.ASCII))
    assert DEFAULT_TO(value) == bool(re.fullmatch(DEFAULT_TO_PATTERN, value, re.ASCII))


@given(st.from_regex(r"\A\+?[0-9]{3,15}\Z"))
def test_every_documented_to_passes(value):
    assert check_to(value) == value


def test_custom_pattern_is_ascii_and_full_match():
    pattern = Pattern(r"\d{3}")
    assert pattern("123")
    assert not pattern("\u0661\u0662\u0663")  # Arabic-Indic digits are \d without re.ASCII
    assert not pattern("1234")
    assert not pattern("123\n")


def test_custom_pattern_cannot_widen_the_dial_charset():
    # Even a pattern that admits anything cannot put ';', spaces or '@' into the file.
    anything = Pattern(".*")
    for value in ["12;3", "1@x", "1/2", "1\n2", "1,2", "1\x002"]:
        with pytest.raises(InvalidTo):
            check_to(value, anything)
        with pytest.raises(InvalidFrom):
            check_from(value, anything)
    with pytest.raises(InvalidFrom):
        check_from("12 3", anything)  # spaces are stripped from "to" only
    assert check_to("*97#", anything) == "*97#"  # what an admin may allow on purpose


def test_bad_pattern_is_a_value_error():
    with pytest.raises(ValueError):
        Pattern("([0-9]")


# -- what mutation testing found untested (issue 13 item 20) ---------------------------

@pytest.mark.parametrize("value", ["1X1", "X01", "10X"])
def test_letters_are_not_digits_in_from(value):
    with pytest.raises(InvalidFrom) as info:
        check_from(value)
    assert info.value.detail == "from %s does not match ^[0-9]{2,8}$" % value


@pytest.mark.parametrize("value", ["8999X887766", "X8999887766", "8999 888 X7766"])
def test_letters_are_not_stripped_from_to(value):
    with pytest.raises(InvalidTo) as info:
        check_to(value)
    assert info.value.detail.startswith("to ") and info.value.detail.endswith(" does not match ^\\+?[0-9]{3,15}$")


def test_external_id_detail_names_the_rule():
    with pytest.raises(InvalidExternalId) as info:
        check_external_id("a b")
    assert info.value.detail == "external_id a\\x20b is not 1-128 of [A-Za-z0-9._:@/+=-]"


def test_pattern_equality_repr_and_errors():
    assert Pattern("^1$") == Pattern("^1$") and Pattern("^1$") != Pattern("^2$") and Pattern("^1$") != "^1$"
    assert repr(Pattern("^1$")) == "Pattern('^1$')" and Pattern("^1$").source == "^1$"
    with pytest.raises(ValueError, match="^not a valid regular expression: "):
        Pattern("([")
