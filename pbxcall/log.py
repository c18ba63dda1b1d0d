"""One log line per request, and warnings, to Apache's error log or ``log_file``.

Lines are ``pbxcall: key=value ...`` with values escaped to visible ASCII, so a
client cannot forge a line (CR, LF) and fail2ban can match ``outcome=unauthorized``
with the client address.  The API key is never a value here: requests are logged
under the key's *name*.
"""

import os
import time
from typing import Any, Mapping, Optional, TextIO

PREFIX = "pbxcall:"
MAX_VALUE = 80  # characters kept of a client-supplied value


def clean(value: Any) -> str:
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
    """Writes whole lines to ``stream`` (Apache's error log) or appends to ``path``."""

    def __init__(self, stream: TextIO, path: Optional[str] = None) -> None:
        self.stream = stream
        self.path = path

    def line(self, fields: Mapping[str, Any], detail: Optional[str] = None) -> None:
        """``pbxcall: time=... a=1 b=2 - detail``, fields in the order given.

        ``detail`` is pbxcall's own text (client values in it are already cut);
        a traceback keeps its lines.
        """
        parts = [PREFIX, "time=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())]
        parts.extend("%s=%s" % (name, clean(value)) for name, value in fields.items())
        if detail:
            parts.extend(("-", detail))
        self.write(" ".join(parts))

    def warning(self, message: str) -> None:
        self.write("%s warning: %s" % (PREFIX, message))

    def write(self, text: str) -> None:
        if self.path:
            data = (text + "\n").encode("utf-8", "backslashreplace")
            try:
                # O_APPEND and one write: lines from concurrent CGI processes never interleave
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
                return
            except OSError as exc:
                text = "%s (log_file %s: %s)" % (text, self.path, exc.strerror)
        self.stream.write(text + "\n")
        self.stream.flush()
