"""Read the request fields from a WSGI environ: query string, form or JSON body.

Strict where the old PHP was lax: a value that is not UTF-8, a malformed
percent escape, a control character in a field pbxcall uses, or a field given
twice with different values is a :class:`~pbxcall.errors.BadRequest`, never a
call.  The query string and the body are merged under that same rule, so a CRM
may put the fields in either.  Decoding is done by hand: ``urllib.parse`` is
lenient about exactly these cases (it replaces bad UTF-8) and costs a CGI
process an import of ``re``.
"""

from .errors import BadRequest, shown

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, Iterable, Mapping, Tuple

MAX_BODY = 64 * 1024  # bytes; a click-to-call request is a few hundred
#: the fields whose values pbxcall uses; others are ignored, never logged
FIELDS = ("from", "to", "external_id", "at", "delay", "filename", "callback_url")
#: the fields that go into the request's log line
LOGGED = ("from", "to", "external_id")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_HEX = frozenset(b"0123456789abcdefABCDEF")


def unquote(raw: bytes) -> str:
    """Form decoding of one name or value: ``+`` is a space, ``%XX`` a byte, UTF-8 strict."""
    raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        parts = raw.split(b"%")
        out = bytearray(parts[0])
        for part in parts[1:]:
            if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
                raise BadRequest("Malformed percent-encoding in the request")
            out.append(int(part[:2], 16))
            out += part[2:]
        raw = bytes(out)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Request is not valid UTF-8")


def parse_form(raw: bytes) -> "Iterable[Tuple[str, str]]":
    """``a=1&b=2`` as (name, value) pairs, in order; empty pieces are skipped."""
    for piece in raw.split(b"&"):
        if piece:
            name, _, value = piece.partition(b"=")
            yield unquote(name), unquote(value)


def parse_json(raw: bytes) -> "Iterable[Tuple[str, str]]":
    """A JSON object's fields; numbers become strings (CRMs send ``"from": 101``)."""
    from .jsonwire import DuplicateKey, loads

    try:
        data = loads(raw.decode("utf-8"))
    except DuplicateKey as exc:
        raise BadRequest("Field '%s' is given twice with different values" % shown(exc.key)[:40])
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("Request body is not valid JSON")
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    for name, value in data.items():
        if name not in FIELDS or value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise BadRequest("Field '%s' must be a string" % name)
        yield name, value


def read_body(environ: "Mapping[str, Any]") -> "Iterable[Tuple[str, str]]":
    """The POST body's fields (form or JSON); nothing for an empty body."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Invalid Content-Length")
    if length < 0 or length > MAX_BODY:
        raise BadRequest("Request body too large (at most %d bytes)" % MAX_BODY)
    if length == 0:
        return ()
    raw = environ["wsgi.input"].read(length)
    if len(raw) != length:
        raise BadRequest("Request body shorter than its Content-Length")
    kind = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if kind in (FORM, ""):
        return parse_form(raw)
    if kind == JSON or kind.endswith("+json"):
        return parse_json(raw)
    raise BadRequest("Unsupported Content-Type; send %s or %s" % (FORM, JSON))


def read_fields(environ: "Mapping[str, Any]") -> "Dict[str, str]":
    """The fields pbxcall uses, from the query string and, for POST, the body.

    Other fields are ignored, repeated or not: CRMs send extras.
    """
    try:
        query = environ.get("QUERY_STRING", "").encode("latin-1")
    except UnicodeEncodeError:
        raise BadRequest("Request is not valid UTF-8")
    fields: "Dict[str, str]" = {}
    pairs = list(parse_form(query))
    if environ.get("REQUEST_METHOD") == "POST":
        pairs.extend(read_body(environ))
    for name, value in pairs:
        if name in FIELDS and fields.setdefault(name, value) != value:
            raise BadRequest("Field '%s' is given twice with different values" % name[:40])
    for name in FIELDS:
        value = fields.get(name, "")
        if any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in value):
            raise BadRequest("Control characters in field '%s'" % name)
    return fields
