"""One log line per request, and warnings, to Apache's error log or ``log_file``.

Lines are ``pbxcall: time=... outcome=... status=... client=... key=...`` and the
request's values, each through :func:`pbxcall.errors.shown` (visible ASCII, no space
and no ``=``), then `` - `` and the detail, pbxcall's own words in which client
values are shown the same way.  A traceback's further lines start with
``pbxcall: | ``.  So a client can neither start a line nor make a ``key=value`` of
its own, and fail2ban's filter, anchored at the start of the line, matches only the
real ``outcome=unauthorized ... client=<address>``.  The API key is never a value
here: requests are logged under the key's *name*.
"""

import time

from .errors import MAX_SHOWN, shown
from .fileio import append
from .jsonwire import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, Mapping, Optional, TextIO

PREFIX = "pbxcall:"
#: an audit record's keys after "time", always all of them (null when unknown), then "reason"
AUDIT_FIELDS = ("outcome", "status", "client", "key", "from", "to", "external_id", "filename")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _visible(line: str) -> str:
    """A line of pbxcall's own text (a detail, a traceback line) as visible ASCII and spaces."""
    return "".join(char if " " <= char <= "~" else char.encode("unicode_escape").decode("ascii") for char in line)


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
            record[name] = value if value is None or isinstance(value, int) else str(value)[:MAX_SHOWN]
        record["reason"] = detail.splitlines()[0][:300] if detail else None
        try:
            append(self.audit_path or "", (dumps(record) + "\n").encode("ascii"))
        except OSError as exc:
            self.warning("audit_log %s: %s" % (self.audit_path, exc.strerror))

    def line(self, fields: "Mapping[str, Any]", detail: "Optional[str]" = None) -> None:
        """``pbxcall: time=... a=1 b=2 - detail``, fields in the order given.

        ``detail`` is pbxcall's own text (client values in it already went through
        ``shown``); a traceback's further lines follow, each starting ``pbxcall: | ``.
        """
        parts = [PREFIX, "time=" + _now()]
        parts.extend("%s=%s" % (name, shown(value)) for name, value in fields.items())
        lines = detail.splitlines() if detail else []
        if lines:
            parts.extend(("-", _visible(lines[0])))
        self.write("\n".join([" ".join(parts)] + ["%s | %s" % (PREFIX, _visible(line)) for line in lines[1:]]))

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
