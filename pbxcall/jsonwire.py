"""JSON in and out without importing ``json``, which costs a CGI process ``re``.

:func:`dumps` gives byte for byte what ``json.dumps`` gives (ASCII, ``", "`` and
``": "``) for the objects pbxcall answers and audits with: str, int, bool and None
values, and objects of them (the status answer's ``outcome``).  :func:`loads` reads
what ``json.loads`` reads, strictly (no NaN or Infinity), into the same values.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, List

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def dumps(obj: "Dict[str, Any]") -> str:
    """``json.dumps(obj)`` for an object of str/int/bool/None values and such objects."""
    return "{" + ", ".join(_value(key) + ": " + _value(value) for key, value in obj.items()) + "}"


def _value(value: "Any") -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return dumps(value)
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        elif ord(char) < 0x10000:
            out.append("\\u%04x" % ord(char))
        else:
            high, low = divmod(ord(char) - 0x10000, 0x400)
            out.append("\\u%04x\\u%04x" % (0xD800 + high, 0xDC00 + low))
    return '"' + "".join(out) + '"'


_WHITESPACE = " \t\n\r"
_UNESCAPE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_DIGITS = frozenset("0123456789")  # frozensets: "" (past the end) is in none of them
_HEX = frozenset("0123456789abcdefABCDEF")


class DuplicateKey(ValueError):
    """An object gives one name twice with different values; ``key`` is the name."""

    def __init__(self, key: str, pos: int) -> None:
        super().__init__("name %r given twice with different values (char %d)" % (key[:40], pos))
        self.key = key


#: how deep arrays and objects may nest: pbxcall's bodies are flat, its settings 4 deep
MAX_DEPTH = 32


class _Reader:
    """Strict JSON (RFC 8259) by recursive descent; errors are ValueError with the offset.

    Nesting is bounded (MAX_DEPTH, a ValueError past it, never a RecursionError), and a
    name given twice in one object must carry the same value (json would keep the last,
    so ``{"to": "1", "to": "2"}`` would dial what a reader of the first did not expect).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, what: str) -> ValueError:
        return ValueError("%s (char %d)" % (what, self.pos))

    def space(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos

    def value(self) -> "Any":
        self.space()
        char = self.text[self.pos:self.pos + 1]
        if char == '"':
            return self.string()
        if char == "{":
            return self.object()
        if char == "[":
            return self.array()
        if char == "-" or char in _DIGITS:
            return self.number()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return value
        raise self.fail("Expecting value")

    def closes(self, closing: str) -> bool:
        """Past ``closing`` (True) or past the ',' before another item (False)."""
        self.space()
        char = self.text[self.pos:self.pos + 1]
        if char == closing or char == ",":
            self.pos += 1
            return char == closing
        raise self.fail("Expecting ',' delimiter")

    def opens_empty(self, closing: str) -> bool:
        """Step over the opening bracket; True (and past ``closing``) for an empty one."""
        if self.depth >= MAX_DEPTH:
            raise self.fail("Nested more than %d deep" % MAX_DEPTH)
        self.pos += 1
        self.space()
        if self.text[self.pos:self.pos + 1] == closing:
            self.pos += 1
            return True
        return False

    def object(self) -> "Dict[str, Any]":
        result: "Dict[str, Any]" = {}
        if self.opens_empty("}"):
            return result
        while True:
            self.space()
            if self.text[self.pos:self.pos + 1] != '"':
                raise self.fail("Expecting property name enclosed in double quotes")
            name = self.string()
            self.space()
            if self.text[self.pos:self.pos + 1] != ":":
                raise self.fail("Expecting ':' delimiter")
            self.pos += 1
            self.depth += 1
            value = self.value()
            self.depth -= 1
            if name in result and result[name] != value:
                raise DuplicateKey(name, self.pos)
            result[name] = value
            if self.closes("}"):
                return result

    def array(self) -> "List[Any]":
        result: "List[Any]" = []
        if self.opens_empty("]"):
            return result
        while True:
            self.depth += 1
            result.append(self.value())
            self.depth -= 1
            if self.closes("]"):
                return result

    def string(self) -> str:
        text = self.text
        pos = self.pos + 1
        chunks: "List[str]" = []
        while True:
            end = pos
            while end < len(text) and text[end] not in '"\\' and text[end] >= " ":
                end += 1
            chunks.append(text[pos:end])
            if end >= len(text):
                raise self.fail("Unterminated string")
            char = text[end]
            if char == '"':
                self.pos = end + 1
                return "".join(chunks)
            if char != "\\":
                self.pos = end
                raise self.fail("Invalid control character")
            escape = text[end + 1:end + 2]
            if escape in _UNESCAPE:
                chunks.append(_UNESCAPE[escape])
                pos = end + 2
                continue
            if escape != "u":
                self.pos = end
                raise self.fail("Invalid \\escape")
            code, pos = self.hex4(end + 2), end + 6
            if 0xD800 <= code <= 0xDBFF and text[pos:pos + 2] == "\\u":
                low = self.hex4(pos + 2)
                if 0xDC00 <= low <= 0xDFFF:  # a surrogate pair is one character, as json makes it
                    code, pos = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), pos + 6
            chunks.append(chr(code))

    def hex4(self, start: int) -> int:
        digits = self.text[start:start + 4]
        if len(digits) != 4 or not _HEX.issuperset(digits):
            self.pos = start
            raise self.fail("Invalid \\uXXXX escape")
        return int(digits, 16)

    def number(self) -> "Any":
        text, start = self.text, self.pos
        pos = start + (text[start] == "-")
        if text[pos:pos + 1] == "0":
            pos += 1
        elif text[pos:pos + 1] in _DIGITS:  # 1-9: no leading zero
            pos = self.digits(pos)
        else:
            raise self.fail("Expecting value")
        integer = True
        if text[pos:pos + 1] == "." and text[pos + 1:pos + 2] in _DIGITS:
            integer, pos = False, self.digits(pos + 1)
        if text[pos:pos + 1] in ("e", "E"):
            after = pos + 1 + (text[pos + 1:pos + 2] in ("+", "-"))
            if text[after:after + 1] in _DIGITS:
                integer, pos = False, self.digits(after)
        self.pos = pos
        return int(text[start:pos]) if integer else float(text[start:pos])

    def digits(self, pos: int) -> int:
        """Where the run of digits from ``pos`` ends."""
        text = self.text
        while pos < len(text) and text[pos] in _DIGITS:
            pos += 1
        return pos


def loads(text: str) -> "Any":
    """``json.loads(text)`` for strict JSON (no NaN or Infinity); ValueError otherwise.

    A small reader rather than ``json`` (which imports ``re``) or the ``_json``
    accelerator (a shared library to map): the settings file is read by every CGI
    request.  tests/test_app.py holds it to ``json.loads`` on generated input.
    """
    reader = _Reader(text)
    value = reader.value()
    reader.space()
    if reader.pos != len(text):
        raise reader.fail("Extra data")
    return value
