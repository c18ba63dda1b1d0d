"""JSON in and out without importing ``json``, which costs a CGI process ``re``.

:func:`dumps` gives byte for byte what ``json.dumps`` gives (ASCII, ``", "`` and
``": "``) for the flat objects pbxcall answers and audits with: str, int, bool and
None values.  :func:`loads` is ``json.loads`` itself: it drives the C scanner of
``_json`` that ``json.loads`` uses, without the module around it (which is only
imported to raise the error for malformed input).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def dumps(obj: "Dict[str, Any]") -> str:
    """``json.dumps(obj)`` for a flat object of str/int/bool/None values."""
    return "{" + ", ".join(_value(key) + ": " + _value(value) for key, value in obj.items()) + "}"


def _value(value: "Any") -> str:
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


_WHITESPACE = " \t\n\r"


def _no_constant(name: str) -> "Any":
    raise ValueError("%s is not valid JSON" % name)


class _Context:
    """What ``_json.make_scanner`` reads off a JSONDecoder: strict, standard JSON."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)  # NaN and Infinity are not JSON
    memo = None


def loads(text: str) -> "Any":
    """``json.loads(text)``; ValueError for anything that is not one JSON value."""
    try:
        from _json import make_scanner
    except ImportError:  # pragma: no cover - an interpreter without the C accelerator
        from json import loads as json_loads

        return json_loads(text)
    body = text.strip(_WHITESPACE)
    try:
        value, end = make_scanner(_Context())(body, 0)  # type: ignore[arg-type]
    except StopIteration as exc:
        raise ValueError("Expecting value (char %s)" % exc.value)
    except ValueError:
        raise
    except Exception:
        # Malformed input: the scanner raises json.decoder.JSONDecodeError, but only if
        # json.decoder is loaded (else a SystemError, depending on the version).  This
        # is the error path: let json say exactly what is wrong.
        from json import loads as json_loads

        return json_loads(text, parse_constant=_no_constant)
    if end != len(body):
        raise ValueError("Extra data: char %d" % end)
    return value
