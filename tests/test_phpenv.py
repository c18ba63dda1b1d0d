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
    # edges
    (r'''"\xXA\q1\q{41}\X\8"''', "\\xXA\\q1\\q{41}\\X\\8"),  # near-escapes stay as written, as in PHP
    (r'''"\1011\1X\400"''', "A1\x01X\x00"),  # at most 3 octal digits, modulo 256
    (r'''"a$ b{ $"''', "a$ b{ $"),
    ("'0'", "0"),
    ("[" * 32 + "]" * 32, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
    ("[" + ", ".join(["[]"] * 40) + "]", [[]] * 40),
    ("[-9223372036854775807, 9223372036854775807, 0x7F_FF, 0_17, 1_000.5]",
     [-9223372036854775807, 9223372036854775807, 32767, 15, 1000.5]),
    ("['9223372036854775807' => 'a', '9223372036854775808' => 'b']", {9223372036854775807: "a",
                                                                      "9223372036854775808": "b"}),
    ("['a' => 1, 'b' => 2, 'a' => 3]", {"a": 3, "b": 2}),  # a key given again keeps its place
    ("[1, 0 => 2]", [2]),
    ("[1 /*/ 2 */]", [1]),  # /*/ opens a comment, it does not close one
])
def test_literals(source, value):
    assert loads("<?php return %s;" % source) == value


def test_bom_and_whitespace_before_the_open_tag():
    assert loads("\ufeff<?php return [1];") == [1]
    assert loads(" \t\r\n<?php return [1];") == [1]


def test_bom_leading_whitespace_and_all_comment_kinds():
    text = "\ufeff\n<?php\n# one\n// two\n/* three\n */ return /* in */ ['k' => 'v' /* x */, ] ; // end\n"
    assert loads(text) == {"k": "v"}


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
    "['9' => 'a', 'b']", "['1A' => 'a', 'b']", "['0' => 'a', 'b']", "['-0' => 'a', 'b']",
    "[1, 0 => 2, 'x' => 3, 1 => 4]",
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

#: integers PHP refuses to parse, and ones it reads as floats (refused by pbxcall: never guessed)
BAD_NUMBERS = ["08", "0x", "1e", "1e+", "1__0", "1_", "0x_1F", "0b_1", "1_.5", "1._5", "017_", "1.2.3", "-inf", "+nan"]
FLOATS_IN_PHP = ["-9223372036854775808", "9223372036854775808", "0x8000000000000000"]


def _php_value(rng, notes, depth=0):
    """A PHP literal (source text) from the grammar pbxcall reads.  ``notes`` gets
    "variable", "negative key" or "float in php" when the literal has what pbxcall
    refuses by design although PHP reads it."""
    kind = rng.choice(["int", "int", "float", "string", "string", "string", "const", "array"] if depth < 3 else
                      ["int", "string", "const"])
    if kind == "int":
        if rng.random() < 0.03:
            return rng.choice(BAD_NUMBERS)
        if rng.random() < 0.03:
            notes.add("float in php")
            return rng.choice(FLOATS_IN_PHP)
        number = rng.randint(0, 10 ** rng.randint(1, 12))
        form = rng.choice(["%d", "0x%x", "0X%X", "0%o", "0b{:b}", "0o%o", "{:_}", "0x{:_x}", "9223372036854775807"])
        text = form % number if "%" in form else form.format(number)
        return rng.choice(["", "-", "+"]) + text if number else text
    if kind == "float":
        return rng.choice(["1.5", "-0.25", "2e3", "1E-2", ".5", "3.", "1_000.5", "3.e2", "-.5e-3", "1E+2"])
    if kind == "const":
        return rng.choice(["true", "FALSE", "null", "True", "NULL"])
    if kind == "string":
        return _php_string(rng, notes)
    items = []
    for _ in range(rng.randint(0, 4)):
        value = _php_value(rng, notes, depth + 1)
        if rng.random() < 0.5:
            key = rng.choice([_php_string(rng, notes), str(rng.randint(0, 20)), "'%d'" % rng.randint(0, 20), "'07'",
                              "true", "null", "'-3'", "'-0'", "'0'", "'9'", "'1A'", "'9223372036854775807'"])
            if key == "'-3'":
                notes.add("negative key")
            items.append("%s%s=>%s%s" % (key, _php_gap(rng), _php_gap(rng), value))
        else:
            items.append(value)
    body = ("," + _php_gap(rng)).join(items) + rng.choice(["", ","] if items else [""])
    return rng.choice(["[%s]", "array(%s)", "ARRAY (%s)"]) % body


#: pieces of a "..." string: every escape, near-escapes PHP keeps as written, and
#: characters that extend or end an escape (octal runs, hex digits, braces)
DOUBLE_PIECES = ["a", "Z", "X", "1", "7", " ", "\\n", "\\t", "\\r", "\\v", "\\e", "\\f", "\\\\", "\\$", '\\"',
                 "\\x41", "\\x7", "\\xX", "\\101", "\\7", "\\400", "\\u{1F600}", "\\u{e9}", "\\q", "\\q1",
                 "\\q{41}", "\\X", "'", "$ x", "{ x", "{", "}", "\\0"]
VARIABLES = ["$x", "{$x}", "${x}", "$_", "{$ x}"]


def _php_string(rng, notes):
    pieces = []
    double = rng.random() < 0.5
    for _ in range(rng.randint(0, 6)):
        if double:
            if rng.random() < 0.02:
                notes.add("variable")
                pieces.append(rng.choice(VARIABLES))
            else:
                pieces.append(rng.choice(DOUBLE_PIECES))
        else:
            pieces.append(rng.choice(["a", " ", "\\'", "\\\\", "\\n", '"', "$x", "\\q", "\\"]) if pieces[-1:] != ["\\"]
                          else "b")
    text = "".join(pieces)
    if not double and text.endswith("\\") and not text.endswith("\\\\"):
        text += "\\"
    return ('"%s"' if double else "'%s'") % text


def _php_gap(rng):
    return rng.choice(["", " ", "\n", "\t", " /* c */ ", " // line\n", " # hash\n", " /*/ c */ ", " /**/"])


#: what pbxcall refuses by design although PHP reads the file: the note that excuses it
EXCUSED = {"negative array keys are not read": "negative key",
           "variables inside strings are not read; use single quotes": "variable",
           "(beyond PHP's 64-bit integers)": "float in php"}


def test_item20_the_reader_agrees_with_php_on_generated_files(tmp_path):
    """600 generated files (numbers in every base, with separators, bad ones among them;
    both quote styles with every escape and the near-escapes PHP keeps; nested arrays
    with string, numeric-string and constant keys; all comment kinds; trailing commas),
    read by pbxcall and by real PHP (one php process for all).  pbxcall gives what PHP
    gives, or refuses a file PHP cannot read, or refuses for one of the reasons it
    documents, only when the file has that feature."""
    import random

    if not os.path.exists(PHP):
        if os.environ.get("CI") == "true":
            pytest.fail("php-cli is not installed: tests/run installs it (as root)")
        pytest.skip("php-cli is not installed")
    rng = random.Random(20261130)
    sources = []
    for index in range(600):
        notes = set()
        source = "<?php%sreturn%s%s%s;%s" % (_php_gap(rng) or " ", " " if rng.random() < 0.5 else _php_gap(rng) or " ",
                                           _php_value(rng, notes), _php_gap(rng), rng.choice(["", "\n", "\n?>\n"]))
        path = tmp_path / ("case%d.php" % index)
        path.write_text(source)
        sources.append((str(path), source, notes))
    runner = tmp_path / "run.php"
    runner.write_text("<?php foreach (array_slice($argv, 1) as $f) { try { echo json_encode(include $f), \"\\n\"; }"
                      " catch (Throwable $e) { echo \"PARSE-ERROR\\n\"; } }\n")
    out = subprocess.run([PHP, "-d", "error_reporting=0", str(runner)] + [path for path, _, _ in sources],
                         stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout.splitlines()
    assert len(out) == len(sources)
    compared = refused = 0
    for (path, source, notes), expected in zip(sources, out):
        try:
            ours = json.loads(json.dumps(loads(source)))
        except PhpSyntaxError as exc:
            excuse = next((note for ending, note in EXCUSED.items() if str(exc).endswith(ending)), None)
            assert expected == "PARSE-ERROR" or excuse in notes, (source, str(exc), expected)
            refused += 1
            continue
        assert expected != "PARSE-ERROR", (source, "pbxcall read what PHP cannot")
        assert ours == json.loads(expected), (source, expected)
        compared += 1
    assert compared > 400 and refused > 30, (compared, refused)


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
    # anything but a returned literal array
    ("return [];", "line 1: a PHP settings file starts with '<?php'"),
    ("<?php $cfg = ['a' => 1]; return $cfg;",
     "line 1: expected 'return [...]' (only a returned array literal is read)"),
    ("<?php return ['key' => getenv('KEY')];", "line 1: only literal values are read, not 'getenv'"),
    ("<?php return ['key' => API_KEY];", "line 1: only literal values are read, not 'API_KEY'"),
    ("<?php return ['key' => \"x$y\"];", "line 1: variables inside strings are not read; use single quotes"),
    ("<?php return ['key' => \"x{$y}\"];", "line 1: variables inside strings are not read; use single quotes"),
    ("<?php return ['a' => 1] ; system('id');", "line 1: unexpected text after 'return ...;'"),
    ("<?php return ['a' => 1 'b' => 2];", "line 1: expected ',' or ']' in array"),
    ("<?php /* never closed", "line 1: unterminated /* comment"),
    ("<?php return ['a' => 1]", "line 1: expected ';'"),
    ("<?php\nreturn [\n  'a' => 1,\n  'b' => foo(),\n];", "line 4: only literal values are read, not 'foo'"),
    # and the line of the problem, at the edges of each rule
    ("<?php\nreturn [\n1,\n$x];", "line 4: only literal values are read, not '$'"),
    ("<?php\n\nreturn [1 /* open", "line 3: unterminated /* comment"),
    ("<?php\nreturn [1]", "line 2: expected ';'"),
    ("<?php\nx [1];", "line 2: expected 'return [...]' (only a returned array literal is read)"),
    ("<?php return [1]; 2", "line 1: unexpected text after 'return ...;'"),
    ("\n<?php\nx", "line 3: expected 'return [...]' (only a returned array literal is read)"),
    (" x <?php return [1];", "line 1: a PHP settings file starts with '<?php'"),
    ("<?php return", "line 1: only literal values are read, not ''"),
    ("<?php return [X1];", "line 1: only literal values are read, not 'X1'"),
    ("<?php return [1]; // the end ?>trailing", "line 1: unexpected text after 'return ...;'"),
    ("<?php return [1]; ?>x", "line 1: unexpected text after 'return ...;'"),
    ("<?php return [1e5e5, 1e+];", "line 1: bad number '1e5e5'"),
    ("<?php return [1e+];", "line 1: bad number '1e+'"),
    ("<?php return [.e5];", "line 1: bad number '.e5'"),
    ("<?php return [1 2];", "line 1: expected ',' or ']' in array"),
    ("<?php return array(1 2);", "line 1: expected ',' or ')' in array"),
    ("<?php return ['-3' => 1];", "line 1: negative array keys are not read"),
    ("<?php return [1.5 => 1];", "line 1: array keys must be strings or integers"),
    ("<?php return [[] => 1];", "line 1: array keys must be strings or integers"),
    ("<?php return ['a];", "line 1: unterminated string"),
    ('<?php return ["a${b}"];', "line 1: variables inside strings are not read; use single quotes"),
    ('<?php return ["a{$ b}"];', "line 1: variables inside strings are not read; use single quotes"),
    ('<?php return ["\\u{zz}"];', "line 1: bad \\u{...} escape"),
    ('<?php return ["\\u{}"];', "line 1: bad \\u{...} escape"),
    ('<?php return ["\\u{41', "line 1: bad \\u{...} escape"),
    ("<?php return [\n0x];\n\n", "line 2: bad number '0x'"),
    ("<?php return [08];", "line 1: bad number '08'"),
    ("<?php return [1e];", "line 1: bad number '1e'"),
    ("<?php return [1X+2];", "line 1: bad number '1X'"),
    ("<?php return [0b1E+1];", "line 1: bad number '0b1E'"),
    ("<?php return [0x1E+2];", "line 1: expected ',' or ']' in array"),  # an expression: 0x1E + 2
    ("<?php return [-inf];", "line 1: bad number '-inf'"),
    ("<?php return [1__0];", "line 1: bad number '1__0'"),
    ("<?php return [9223372036854775808];",
     "line 1: bad number '9223372036854775808' (beyond PHP's 64-bit integers)"),
    ("<?php return [-9223372036854775808];",  # the minus is an operator: PHP reads a float
     "line 1: bad number '-9223372036854775808' (beyond PHP's 64-bit integers)"),
    ("<?php return " + "[" * 33 + "]" * 33 + ";", "line 1: arrays nested more than 32 deep"),
    ("<?php return [[], " + "[" * 32 + "]" * 32 + "];", "line 1: arrays nested more than 32 deep"),
    ("<?php return [[[], " + "[" * 31 + "]" * 31 + "]];", "line 1: arrays nested more than 32 deep"),
])
def test_anything_but_a_literal_array_is_refused_naming_the_line_and_the_problem(text, message):
    with pytest.raises(PhpSyntaxError) as info:
        loads(text)
    assert str(info.value) == message
    assert info.value.line == int(message.split(":")[0][5:])
