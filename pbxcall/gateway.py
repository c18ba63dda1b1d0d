"""One CGI request served by a WSGI application: the CGI side of PEP 3333.

What ``wsgiref.handlers.CGIHandler().run(app)`` does for pbxcall, in the few lines
pbxcall needs, because a CGI process pays for every import: ``wsgiref.handlers``
brings ``wsgiref.headers`` and with it ``re``, ``enum`` and ``functools`` — several
milliseconds on a request that is otherwise close to the interpreter's start-up
time.  The output is byte for byte CGIHandler's (tests/test_gateway.py runs both):
``Status:``, the headers, a blank line, the body; no ``Date`` or ``Server`` (the web
server adds those).
"""

import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Callable, Dict, List, Optional, Tuple

    WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Any]

FAILURE = (b"Status: 500 Internal Server Error\r\nContent-Type: application/json; charset=utf-8\r\n"
           b"Cache-Control: no-store\r\n\r\n"
           b'{"status": "ERROR", "error": "Internal error", "code": "internal_error"}')


def cgi_environ() -> "Dict[str, Any]":
    """The WSGI environ of this CGI request: the process environment as "bytes as
    latin-1" strings (PEP 3333), stdin as the body, stderr as the error stream."""
    environ: "Dict[str, Any]" = {key.decode("latin-1"): value.decode("latin-1")
               for key, value in posix.environ.items()}
    environ.update({
        "wsgi.input": sys.stdin.buffer,
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": True,
        "wsgi.url_scheme": "https" if environ.get("HTTPS", "off").lower() in ("on", "1", "yes") else "http",
    })
    return environ


def run(app: "WSGIApp", environ: "Optional[Dict[str, Any]]" = None, out_fd: int = 1) -> None:
    """Serve the request with ``app`` and write the CGI response to ``out_fd``."""
    started: "List[Tuple[str, List[Tuple[str, str]]]]" = []

    def start_response(status: str, headers: "List[Tuple[str, str]]", exc_info: "Any" = None) -> "Any":
        started.append((status, headers))
        return lambda data: None  # pbxcall never uses the write() callable

    try:
        body = b"".join(app(cgi_environ() if environ is None else environ, start_response))
        status, headers = started[-1]
        head = "Status: %s\r\n%s\r\n" % (status, "".join("%s: %s\r\n" % pair for pair in headers))
        response = head.encode("latin-1") + body
    except Exception:  # pragma: no cover - the app answers every failure itself
        import traceback

        traceback.print_exc()
        response = FAILURE
    sys.stderr.flush()  # every log line is out before the response ends
    view = memoryview(response)
    while view:
        view = view[posix.write(out_fd, view):]
