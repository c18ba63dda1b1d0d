"""pbxcall.phpenv: the old .api.env.php read as data, never executed."""

import json
import os
import subprocess

import pytest

from pbxcall.phpenv import PhpSyntaxError, loads

from helpers import fixture


def test_real_looking_file_with_comments():
    assert loads(fixture("legacy.api.env.php")) == {
        "api_key": "my-secret-key-123",
        "outgoing_path": "/var/spool/asterisk/outgoing",
        "outgoing_temp_path": "/tmp",
        "outgoing_context": "from-internal",
    }


def test_array_syntax_escapes_literals_and_closing_tag():
    assert loads(fixture("legacy-array.api.env.php")) == {
        "api_key": "s3cret-$key-9",
        "outgoing_path": "/var/spool/asterisk/outgoing",
        "outgoing_context": "originate-skipvm",
        "max_retries": 0,
        "retry_time": 60,
        "archive": True,
        "log_file": None,
        "caller_id": "It's {to} <{from}>",
    }


@pytest.mark.parametrize("source, value", [
    (r"""'a\nb'""", "a\\nb"),  # single quotes: only \\ and \' are escapes
    (r"""'a\\b\'c'""", "a\\b'c"),
    (r'''"a\nb\tc\\d\"e\$f"''', 'a\nb\tc\\d"e$f'),
    (r'''"\101\x41\u{41}\q"''', "AAA\\q"),
    ("'multi\nline'", "multi\nline"),
    ("42", 42), ("-7", -7), ("0x1F", 31), ("0b101", 5), ("017", 15), ("0o17", 15), ("1_000", 1000),
    ("1.5", 1.5), ("true", True), ("FALSE", False), ("Null", None),
    ("[]", []), ("[1, 2, 3,]", [1, 2, 3]), ("array('a', 'b')", ["a", "b"]),
    ("['x' => ['y' => 1]]", {"x": {"y": 1}}),
    ("[5 => 'a', 'b']", {5: "a", 6: "b"}),
])
def test_literals(source, value):
    assert loads("<?php return %s;" % source) == value


def test_bom_leading_whitespace_and_all_comment_kinds():
    text = "\ufeff\n<?php\n# one\n// two\n/* three\n */ return /* in */ ['k' => 'v' /* x */, ] ; // end\n"
    assert loads(text) == {"k": "v"}


@pytest.mark.parametrize("text, message", [
    ("return [];", "<?php"),
    ("<?php $cfg = ['a' => 1]; return $cfg;", "return"),
    ("<?php return ['key' => getenv('KEY')];", "literal"),
    ("<?php return ['key' => API_KEY];", "literal"),
    ("<?php return ['key' => \"x$y\"];", "variables"),
    ("<?php return ['key' => \"x{$y}\"];", "variables"),
    ("<?php return ['key' => 'unterminated];", "unterminated"),
    ("<?php return ['a' => 1] ; system('id');", "after"),
    ("<?php return ['a' => 1 'b' => 2];", "','"),
    ("<?php /* never closed", "unterminated"),
    ("<?php return ['a' => 1]", "';'"),
])
def test_anything_but_a_literal_array_is_refused(text, message):
    with pytest.raises(PhpSyntaxError) as info:
        loads(text)
    assert message in str(info.value)


def test_error_names_the_line():
    with pytest.raises(PhpSyntaxError) as info:
        loads("<?php\nreturn [\n  'a' => 1,\n  'b' => foo(),\n];")
    assert info.value.line == 4


PHP = "/usr/bin/php"
#: arrays whose keys PHP numbers in its own way: the reader must give what PHP gives
AGREE_WITH_PHP = [
    "['10' => 'a', 'x']",  # "10" is the integer key 10: 'x' is key 11
    "[0 => '00', '1' => '810', '+']",  # a list: keys 0, 1, 2
    "['a' => 1, 5 => 'b', 'c', '07' => 'd', 'e']",  # "07" stays a string key
    "[true => 'a', 'b', null => 'c']",
    "[3 => 'x', 1 => 'y', 'z']",  # not in order: an object
    "['api_key' => 'k', 'allowed_to' => ['8', '9'], 'max_retries' => 0x2, 'wait_time' => 017]",
    "[9223372036854775807]",
]
#: what PHP reads differently (a float for an overflowing integer) or across versions
#: (numbering after a negative key): refused, never guessed
REFUSED = ["[9223372036854775808]", "[-1 => 'a', 'b']", "[1.5 => 'a']", "[" * 40 + "]" * 40]


def php_json(expression, tmp_path):
    path = tmp_path / "settings.php"
    path.write_text("<?php return %s;" % expression)
    code = "echo json_encode(include '%s');" % path
    return json.loads(subprocess.run([PHP, "-r", code], stdout=subprocess.PIPE, check=True).stdout)


@pytest.mark.parametrize("expression", AGREE_WITH_PHP)
def test_item17_keys_as_php_numbers_them(expression, tmp_path):
    if not os.path.exists(PHP):
        if os.environ.get("CI") == "true":
            pytest.fail("php-cli is not installed: tests/run installs it (as root)")
        pytest.skip("php-cli is not installed")
    ours = json.loads(json.dumps(loads("<?php return %s;" % expression)))  # int keys become strings, as in PHP
    assert ours == php_json(expression, tmp_path)


@pytest.mark.parametrize("expression", REFUSED)
def test_item17_what_php_reads_otherwise_is_refused(expression):
    with pytest.raises(PhpSyntaxError):
        loads("<?php return %s;" % expression)
