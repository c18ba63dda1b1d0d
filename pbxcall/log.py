"""One log line per request, and warnings, to Apache's error log or ``log_file``.

Lines are ``pbxcall: key=value ...`` with values escaped to visible ASCII, so a
client cannot forge a line (CR, LF) and fail2ban can match ``outcome=unauthorized``
with the client address.  The API key is never a value here: requests are logged
under the key's *name*.
"""

import time

from .fileio import append
from .jsonwire import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, Mapping, Optional, TextIO

PREFIX = "pbxcall:"
MAX_VALUE = 80  # characters kept of a client-supplied value
#: an audit record's keys after "time", always all of them (null when unknown), then "reason"
AUDIT_FIELDS = ("outcome", "status", "client", "key", "from", "to", "external_id", "filename")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def clean(value: "Any") -> str:
    """``value`` as visible ASCII: other characters escaped, long values cut."""
    if value is None:
        return "-"
    text = str(value)
    cut = len(text) > MAX_VALUE
    text = "".join(
        char if "!" <= char <= "~" and char != "\\" else char.encode("unicode_escape").decode("ascii")
        if char != " " else "\\x20"
        for char in text[:MAX_VALUE]
    )
    return text + "..." if cut else text


class Log:
    """Writes whole lines to ``stream`` (Apache's error log) or appends to ``path``;
    with ``audit_path``, also one JSON object a request there."""

    def __init__(self, stream: "TextIO", path: "Optional[str]" = None, audit_path: "Optional[str]" = None) -> None:
        self.stream = stream
        self.path = path
        self.audit_path = audit_path

    def request(self, fields: "Mapping[str, Any]", detail: "Optional[str]" = None) -> None:
        """The request's log line, and its audit record when ``audit_path`` is set."""
        self.line(fields, detail)
        if self.audit_path:
            self.audit(fields, detail)

    def audit(self, fields: "Mapping[str, Any]", detail: "Optional[str]") -> None:
        record: "Dict[str, Any]" = {"time": _now()}
        for name in AUDIT_FIELDS:
            value = fields.get(name)
            record[name] = value if value is None or isinstance(value, int) else str(value)[:MAX_VALUE]
        record["reason"] = detail.splitlines()[0][:300] if detail else None
        try:
            append(self.audit_path or "", (dumps(record) + "\n").encode("ascii"))
        except OSError as exc:
            self.warning("audit_log %s: %s" % (self.audit_path, exc.strerror))

    def line(self, fields: "Mapping[str, Any]", detail: "Optional[str]" = None) -> None:
        """``pbxcall: time=... a=1 b=2 - detail``, fields in the order given.

        ``detail`` is pbxcall's own text (client values in it are already cut);
        a traceback keeps its lines.
        """
        parts = [PREFIX, "time=" + _now()]
        parts.extend("%s=%s" % (name, clean(value)) for name, value in fields.items())
        if detail:
            parts.extend(("-", detail))
        self.write(" ".join(parts))

    def warning(self, message: str) -> None:
        self.write("%s warning: %s" % (PREFIX, message))

    def write(self, text: str) -> None:
        if self.path:
            try:
                append(self.path, (text + "\n").encode("utf-8", "backslashreplace"))
                return
            except OSError as exc:
                text = "%s (log_file %s: %s)" % (text, self.path, exc.strerror)
        self.stream.write(text + "\n")
        self.stream.flush()
