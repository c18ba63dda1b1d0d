"""Read the old ``.api.env.php`` without running PHP.

The legacy endpoint kept its settings in a PHP file that returns an array::

    <?php
    // API settings
    return [
        'api_key' => 'my-secret-key-123',
        "outgoing_path" => "/var/spool/asterisk/outgoing",   # spool
        'archive' => false,
    ];

This module understands exactly that much PHP: one ``return`` of an ``array(...)``
or ``[...]`` literal whose keys and values are strings (both quote styles, with
PHP's escapes), integers, floats, ``true``/``false``/``null`` or nested arrays;
comments of all three kinds; trailing commas.  Anything else (a variable, a
constant, a function call such as ``getenv()``) is a :class:`PhpSyntaxError`:
pbxcall never executes the file.  Pure: :func:`loads` takes text.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, List, Union
    PhpValue = Union[None, bool, int, float, str, Dict[Any, Any], List[Any]]


_SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "v": "\v", "e": "\x1b", "f": "\f",
    "\\": "\\", "$": "$", '"': '"',
}
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")
_DECIMAL = frozenset("0123456789")


#: PHP's integers are 64-bit: a literal beyond that becomes a float there; refused here.
#: A minus sign is not part of the literal, so -9223372036854775808 is a float in PHP too.
MAX_INT = 2 ** 63 - 1
#: how deep arrays may nest (a settings file is 3 deep)
MAX_DEPTH = 32


def _is_decimal_key(text: str) -> bool:
    """Whether PHP casts the string array key ``text`` to an integer."""
    digits = text[1:] if text.startswith("-") else text
    return (bool(digits) and all("0" <= char <= "9" for char in digits) and (digits == "0" or digits[0] != "0")
            and text != "-0" and int(text) <= MAX_INT)


class PhpSyntaxError(ValueError):
    """The file is not the plain ``return [...]`` this reader accepts."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__("line %d: %s" % (line, message))
        self.line = line


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- low level ---------------------------------------------------------
    def error(self, message: str) -> "PhpSyntaxError":
        return PhpSyntaxError(message, self.text.count("\n", 0, self.pos) + 1)

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos : self.pos + count]

    def skip_space(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r\n":
                self.pos += 1
            elif char == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                closing = text.find("?>", self.pos)
                if closing != -1 and (end == -1 or closing < end):
                    end = closing  # PHP ends a one-line comment at ?>
                self.pos = len(text) if end == -1 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end == -1:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def expect(self, token: str) -> None:
        self.skip_space()
        if not self.text.startswith(token, self.pos):
            raise self.error("expected %r" % token)
        self.pos += len(token)

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WORD_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    # -- grammar -----------------------------------------------------------
    def document(self) -> "PhpValue":
        self.skip_bom_and_open_tag()
        self.skip_space()
        if self.word().lower() != "return":
            raise self.error("expected 'return [...]' (only a returned array literal is read)")
        value = self.value()
        self.expect(";")
        self.skip_space()
        if self.text.startswith("?>", self.pos):
            self.pos += 2
            self.skip_space()
        if self.pos != len(self.text):
            raise self.error("unexpected text after 'return ...;'")
        return value

    def skip_bom_and_open_tag(self) -> None:
        if self.text.startswith("\ufeff"):
            self.pos = 1
        self.skip_whitespace_only()
        if not self.text.startswith("<?php", self.pos):
            raise self.error("a PHP settings file starts with '<?php'")
        self.pos += len("<?php")

    def skip_whitespace_only(self) -> None:
        while self.peek() in (" ", "\t", "\r", "\n"):
            self.pos += 1

    def value(self) -> "PhpValue":
        self.skip_space()
        char = self.peek()
        if char == "[":
            self.pos += 1
            return self.array("]")
        if char in ("'", '"'):
            return self.quoted()
        if char == "-" or char == "+" or char.isdigit() or char == ".":
            return self.number()
        start = self.pos
        name = self.word()
        lowered = name.lower()
        if lowered == "array":
            self.expect("(")
            return self.array(")")
        if lowered in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[lowered]
        self.pos = start
        raise self.error("only literal values are read, not %r" % (name or char))

    def array(self, closing: str) -> "PhpValue":
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("arrays nested more than %d deep" % MAX_DEPTH)
        value = self.array_items(closing)
        self.depth -= 1
        return value

    def array_items(self, closing: str) -> "PhpValue":
        items: "Dict[Any, PhpValue]" = {}  # a key given again keeps its place, as in PHP
        next_index = 0
        while True:
            self.skip_space()
            if self.peek() == closing:
                self.pos += 1
                break
            first = self.value()
            self.skip_space()
            if self.text.startswith("=>", self.pos):
                self.pos += 2
                key = self.array_key(first)
                item = self.value()
            else:
                key, item = next_index, first
            if isinstance(key, int) and key >= next_index:
                next_index = key + 1
            items[key] = item
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != closing:
                raise self.error("expected ',' or %r in array" % closing)
        if all(key == index for index, key in enumerate(items)):
            return list(items.values())
        return items

    def array_key(self, key: "PhpValue") -> "Union[int, str]":
        """The key PHP would use: a string of a canonical decimal integer ("10", "-3",
        not "010" or "+1") is that integer, as PHP casts it; true/false are 1/0, null
        is "".  Floats and negative integers are refused (PHP truncates the one and
        numbers after the other differently across versions)."""
        if isinstance(key, bool) or key is None:
            return int(bool(key)) if key is not None else ""
        if isinstance(key, str) and _is_decimal_key(key):
            key = int(key)
        if isinstance(key, int):
            if key < 0:
                raise self.error("negative array keys are not read")
            return key
        if isinstance(key, str):
            return key
        raise self.error("array keys must be strings or integers")

    def quoted(self) -> str:
        """A '...' or "..." string; variables inside "..." are refused, not expanded."""
        quote = self.text[self.pos]
        self.pos += 1
        out: "List[str]" = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated string")
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\":
                out.append(self.escape() if quote == '"' else self.single_escape())
                continue
            if quote == '"' and (char == "$" and text[self.pos + 1 : self.pos + 2] in _WORD_CHARS | {"{"}
                                 or char == "{" and text[self.pos + 1 : self.pos + 2] == "$"):
                raise self.error("variables inside strings are not read; use single quotes")
            out.append(char)
            self.pos += 1

    def single_escape(self) -> str:
        """In single quotes only \\\\ and \\' are escapes; any other backslash stays."""
        nxt = self.text[self.pos + 1 : self.pos + 2]
        if nxt in ("\\", "'"):
            self.pos += 2
            return nxt
        self.pos += 1
        return "\\"

    def escape(self) -> str:
        text = self.text
        nxt = text[self.pos + 1 : self.pos + 2]
        if nxt in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[nxt]
        if nxt in _OCTAL:
            end = self.pos + 2
            while end < self.pos + 4 and text[end : end + 1] in _OCTAL:
                end += 1
            code = int(text[self.pos + 1 : end], 8) & 0xFF
            self.pos = end
            return chr(code)
        if nxt == "x" and text[self.pos + 2 : self.pos + 3] in _HEX:
            end = self.pos + 3
            if text[end : end + 1] in _HEX:
                end += 1
            code = int(text[self.pos + 2 : end], 16)
            self.pos = end
            return chr(code)
        if nxt == "u" and text[self.pos + 2 : self.pos + 3] == "{":
            end = text.find("}", self.pos + 3)
            digits = text[self.pos + 3 : end] if end != -1 else ""
            if not digits or not _HEX.issuperset(digits):
                raise self.error("bad \\u{...} escape")
            self.pos = end + 1
            return chr(int(digits, 16))
        self.pos += 1  # PHP keeps an unknown escape as written
        return "\\"

    def number(self) -> "Union[int, float]":
        start = self.pos
        if self.peek() in "+-":
            self.pos += 1
        self.skip_space()
        body_start = self.pos
        while self.peek() and (self.peek() in _WORD_CHARS or self.peek() == "."
                               or self.peek() in "+-" and self.text[self.pos - 1] in "eE"
                               and self.text[body_start:body_start + 2].lower() not in ("0x", "0b")):
            self.pos += 1  # an exponent's sign belongs to the number: 1E-2
        sign = -1 if self.text[start] == "-" else 1
        raw = self.text[body_start : self.pos].lower()
        body = raw.replace("_", "")
        try:
            _underscores(raw)
            if body.startswith("0x"):
                return _integer(sign * int(body[2:], 16))
            if body.startswith("0b"):
                return _integer(sign * int(body[2:], 2))
            if body.startswith("0o"):
                return _integer(sign * int(body[2:], 8))
            if len(body) > 1 and body.startswith("0") and body.isdigit():
                return _integer(sign * int(body, 8))
            if body.isdigit():
                return _integer(sign * int(body))
            _float_literal(body)
            return sign * float(body)
        except ValueError as exc:
            literal, self.pos = self.text[start : self.pos], start
            raise self.error("bad number %r%s" % (literal, " (%s)" % exc if "64-bit" in str(exc) else ""))


def _underscores(raw: str) -> None:
    """PHP 7.4's digit separator: one ``_`` between two digits of the literal's base
    (``1_000``, ``0x7F_FF``), never after a prefix, before a point or doubled."""
    digits = _HEX if raw.startswith("0x") else _DECIMAL
    for index, char in enumerate(raw):
        if char == "_" and not (raw[index - 1 : index] in digits and raw[index + 1 : index + 2] in digits):
            raise ValueError(raw)


def _float_literal(body: str) -> None:
    """PHP's DNUM and EXPONENT_DNUM (``1.5``, ``.5``, ``5.``, ``2e3``, ``1E-2``) have
    decimal digits before the exponent; what Python's float() takes beyond them
    (``inf``, ``nan``) is no PHP number.  float() itself refuses a bad exponent."""
    whole, _, fraction = body.partition("e")[0].partition(".")
    if not (whole or fraction) or not _DECIMAL.issuperset(whole + fraction):
        raise ValueError(body)


def _integer(value: int) -> int:
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError("beyond PHP's 64-bit integers")
    return value


def loads(text: str) -> "PhpValue":
    """The value returned by a ``<?php return [...];`` settings file."""
    return _Reader(text).document()
