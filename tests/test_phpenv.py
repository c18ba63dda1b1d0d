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


# -- the reader against real PHP over generated files (issue 13 item 20) -----------------

def _php_value(rng, depth=0):
    """A PHP literal (source text) from the grammar pbxcall reads."""
    kind = rng.choice(["int", "int", "float", "string", "string", "string", "const", "array"] if depth < 3 else
                      ["int", "string", "const"])
    if kind == "int":
        number = rng.randint(0, 10 ** rng.randint(1, 12))
        form = rng.choice(["%d", "0x%x", "0X%X", "0%o", "0b{:b}"])
        text = "0b" + format(number, "b") if form == "0b{:b}" else form % number
        if text.startswith("0") and text not in ("0",) and form == "0%o" and number == 0:
            text = "0"
        return rng.choice(["", "-", "+"]) + text if number else text
    if kind == "float":
        return rng.choice(["1.5", "-0.25", "2e3", "1E-2", ".5", "3.", "1_000.5"])
    if kind == "const":
        return rng.choice(["true", "FALSE", "null", "True", "NULL"])
    if kind == "string":
        return _php_string(rng)
    items = []
    for _ in range(rng.randint(0, 4)):
        value = _php_value(rng, depth + 1)
        if rng.random() < 0.5:
            key = rng.choice([_php_string(rng), str(rng.randint(0, 20)), "'%d'" % rng.randint(0, 20), "'07'", "true",
                              "null", "'-3'"])
            items.append("%s%s=>%s%s" % (key, _php_gap(rng), _php_gap(rng), value))
        else:
            items.append(value)
    body = ("," + _php_gap(rng)).join(items) + rng.choice(["", ","] if items else [""])
    return rng.choice(["[%s]", "array(%s)", "ARRAY (%s)"]) % body


def _php_string(rng):
    pieces = []
    double = rng.random() < 0.5
    for _ in range(rng.randint(0, 6)):
        if double:
            pieces.append(rng.choice(["a", "Z", " ", "\\n", "\\t", "\\r", "\\v", "\\e", "\\f", "\\\\", "\\$", '\\"',
                                      "\\x41", "\\x7", "\\101", "\\7", "\\u{1F600}", "\\u{e9}", "\\q", "'", "$ x",
                                      "{ x", "\\0"]))
        else:
            pieces.append(rng.choice(["a", " ", "\\'", "\\\\", "\\n", '"', "$x", "\\q", "\\"]) if pieces[-1:] != ["\\"]
                          else "b")
    text = "".join(pieces)
    if not double and text.endswith("\\") and not text.endswith("\\\\"):
        text += "\\"
    return ('"%s"' if double else "'%s'") % text


def _php_gap(rng):
    return rng.choice(["", " ", "\n", "\t", " /* c */ ", " // line\n", " # hash\n"])


def test_item20_the_reader_agrees_with_php_on_generated_files(tmp_path):
    """300 generated files (numbers in every base, both quote styles with every escape,
    nested arrays with string, numeric-string and constant keys, all comment kinds,
    trailing commas), read by pbxcall and by real PHP (one php process for all)."""
    import random

    if not os.path.exists(PHP):
        if os.environ.get("CI") == "true":
            pytest.fail("php-cli is not installed: tests/run installs it (as root)")
        pytest.skip("php-cli is not installed")
    rng = random.Random(20261130)
    sources = []
    for index in range(300):
        source = "<?php%sreturn%s%s%s;%s" % (_php_gap(rng) or " ", " " if rng.random() < 0.5 else _php_gap(rng) or " ",
                                           _php_value(rng), _php_gap(rng), rng.choice(["", "\n", "\n?>\n"]))
        path = tmp_path / ("case%d.php" % index)
        path.write_text(source)
        sources.append((str(path), source))
    runner = tmp_path / "run.php"
    runner.write_text("<?php foreach (array_slice($argv, 1) as $f) { try { echo json_encode(include $f), \"\\n\"; }"
                      " catch (Throwable $e) { echo \"PARSE-ERROR\\n\"; } }\n")
    out = subprocess.run([PHP, "-d", "error_reporting=0", str(runner)] + [path for path, _ in sources],
                         stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout.splitlines()
    assert len(out) == len(sources)
    compared = 0
    for (path, source), expected in zip(sources, out):
        try:
            ours = json.loads(json.dumps(loads(source)))
        except PhpSyntaxError as exc:
            # refused, never guessed: what PHP itself cannot read, or reads otherwise than the grammar
            assert expected == "PARSE-ERROR" or any(word in str(exc) for word in (
                "64-bit", "negative array keys", "variables inside")), (source, str(exc), expected)
            continue
        assert expected != "PARSE-ERROR", (source, "pbxcall read what PHP cannot")
        assert ours == json.loads(expected), (source, expected)
        compared += 1
    assert compared > 250, compared


@pytest.mark.parametrize("text, value", [
    ("<?php return [1]; // the end ?>\n", [1]),  # a one-line comment ends at ?>
    ("<?php return [1]; # last line, no newline", [1]),
    ("<?php return [1, // one ?>\n];", None),  # ?> in a comment ends PHP: the array is never closed
    ("<?php return [1, /* a ?> b */ 2];", [1, 2]),  # ... but not in a block comment
    ("<?php return [1 /**/, 2];", [1, 2]),
    ("<?php\nreturn [\n1,\n$x];", None),
])
def test_comments_at_their_edges(text, value):
    if value is None:
        with pytest.raises(PhpSyntaxError):
            loads(text)
    else:
        assert loads(text) == value


@pytest.mark.parametrize("text, message", [
    ("<?php\nreturn [\n1,\n$x];", "line 4: only literal values are read, not '$'"),
    ("<?php\n\nreturn [1 /* open", "line 3: unterminated /* comment"),
    ("<?php\nreturn [1]", "line 2: expected ';'"),
    ("<?php\nx [1];", "line 2: expected 'return [...]' (only a returned array literal is read)"),
    ("<?php return [1]; 2", "line 1: unexpected text after 'return ...;'"),
])
def test_errors_name_the_line_and_the_problem(text, message):
    with pytest.raises(PhpSyntaxError) as info:
        loads(text)
    assert str(info.value) == message
