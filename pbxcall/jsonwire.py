"""JSON out, for the flat objects pbxcall answers and audits with.

Byte for byte what ``json.dumps`` gives (ASCII, ``", "`` and ``": "``), for objects of
str, int, bool and None values.  The ``json`` module costs a CGI process an import
of ``re``; this is all a response needs.
"""

from typing import Any, Dict

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def dumps(obj: Dict[str, Any]) -> str:
    """``json.dumps(obj)`` for a flat object of str/int/bool/None values."""
    return "{" + ", ".join(_value(key) + ": " + _value(value) for key, value in obj.items()) + "}"


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
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
