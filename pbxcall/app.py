"""The WSGI application: HTTP in, :mod:`pbxcall` functions, JSON out.

Endpoint (any path whose last segment is the name, so it can be mounted anywhere)::

    GET|POST /api/make_call.php   from, to, external_id   Authorization: Bearer KEY

Fields come from the query string and, for POST, a form or JSON body.
Order of checks: path (404), method (405), settings (500), key (401), fields
(400); an unauthenticated caller learns nothing about validation.

200 ``{"status": "OK", "from", "to", "external_id", "filename", "file"}`` — ``to``
normalised, ``external_id`` null when absent, ``filename`` and ``file`` both the
call file's basename (``file`` is what the old PHP returned).

Errors ``{"status": "ERROR", "error": text, "code": code}``:
400 invalid_from / invalid_to / invalid_external_id / bad_request,
401 unauthorized (+ WWW-Authenticate), 404 not_found, 405 method_not_allowed
(+ Allow), 500 config_error / spool_error / internal_error.

Every response is JSON with ``Cache-Control: no-store``; a traceback goes to the
log, never to the client.  Every side effect (the rename, the log line) happens
before the response starts: Apache's CGI modules SIGTERM the script as soon as
its output ends.
"""

import os
import sys
from typing import Any, Callable, Dict, Iterable, Optional, TextIO, Tuple

from . import auth, callfile, numbers, ratelimit, request, spool
from .errors import Headers, MethodNotAllowed, NotFound, PbxcallError
from .jsonwire import dumps
from .log import Log
from .settings import ApiKey, Settings, fallback_staging, find_path

ENDPOINT = "make_call.php"
METHODS = ("GET", "POST")
BASE_HEADERS = [
    ("Content-Type", "application/json; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]
INTERNAL_ERROR = {"status": "ERROR", "error": "Internal error", "code": "internal_error"}

StartResponse = Callable[..., Any]
Reply = Tuple[int, Dict[str, Any], Headers]
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
            500: "Internal Server Error"}
class App:
    """The WSGI callable.  ``settings`` fixed, or ``None``: load the file per request.

    Logs go to ``log_stream``, by default the server's ``wsgi.errors`` (Apache's
    error log under CGI and mod_wsgi), unless the settings name a ``log_file``.
    """

    def __init__(self, settings: Optional[Settings] = None, log_stream: Optional[TextIO] = None) -> None:
        self.settings = settings
        self.log_stream = log_stream
        self._cache = None  # type: Optional[Tuple[Tuple[Any, ...], Settings]]

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        log = Log(self.log_stream or environ.get("wsgi.errors") or sys.stderr)
        record = {"client": environ.get("REMOTE_ADDR"), "key": None}  # type: Dict[str, Any]
        detail = None
        try:
            status, payload, headers = self.handle(environ, log, record)
        except PbxcallError as exc:
            status, headers = exc.status, exc.headers
            payload = {"status": "ERROR", "error": exc.message, "code": exc.code}
            detail = exc.detail
        except Exception:
            import traceback

            # Diagnostics go to the log, never to "any old user" (wsgiref's words).
            detail = "internal error:\n" + traceback.format_exc().rstrip()
            status, payload, headers = 500, dict(INTERNAL_ERROR), []
        try:
            log.request(dict(outcome=payload.get("code", "ok"), status=status, **record), detail)
        except Exception:  # a log that cannot be written must not cost the answer
            pass
        body = dumps(payload).encode("ascii")
        start_response(
            "%d %s" % (status, _REASONS.get(status, "")),
            BASE_HEADERS + headers + [("Content-Length", str(len(body)))],
        )
        return [body]

    def load_settings(self, environ: Dict[str, Any], log: Log) -> Settings:
        """The fixed settings, or the file's, reloaded when it changes (mod_wsgi)."""
        if self.settings is not None:
            return self.settings
        path = find_path(environ)
        try:
            st = os.stat(path)
            stamp = (path, st.st_ino, st.st_size, st.st_mtime_ns)  # type: Tuple[Any, ...]
        except OSError:
            stamp = ()
        if self._cache is not None and stamp and self._cache[0] == stamp:
            return self._cache[1]
        settings = Settings.from_file(path)
        for warning in settings.warnings:
            log.warning(warning)
        if stamp:
            self._cache = (stamp, settings)
        return settings

    def handle(self, environ: Dict[str, Any], log: Log, record: Dict[str, Any]) -> Reply:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if path.rpartition("/")[2] != ENDPOINT:
            raise NotFound(None, "no endpoint at %r" % path[:80])
        if environ.get("REQUEST_METHOD") not in METHODS:
            raise MethodNotAllowed()
        settings = self.load_settings(environ, log)
        log.path, log.audit_path = settings.log_file, settings.audit_log
        if settings.addresses is not None:
            settings.addresses.check(environ.get("REMOTE_ADDR"))
        header = auth.authorization_header(environ)
        if header is None:
            log.warning(auth.MISSING_HEADER_HINT)
        key = auth.authenticate(settings.keys, header)
        record["key"] = key.name
        return self.make_call(settings, key, request.read_fields(environ), log, record)

    def make_call(self, settings: Settings, key: ApiKey, fields: Dict[str, str], log: Log,
                  record: Dict[str, Any]) -> Reply:
        record.update((name, fields.get(name)) for name in request.FIELDS)
        call = callfile.Call(
            numbers.check_from(fields.get("from", ""), settings.from_pattern),
            numbers.check_to(fields.get("to", ""), settings.to_pattern),
            numbers.check_external_id(fields.get("external_id")),
        )
        record["to"] = call.to
        settings.policy.check(call.from_, call.to, "settings")
        key.policy.check(call.from_, call.to, "key " + key.name)
        buckets = []
        if "per_key" in settings.rates:
            buckets.append(("key." + key.name, settings.rates["per_key"]))
        if "per_from" in settings.rates:
            buckets.append(("from." + call.from_, settings.rates["per_from"]))
        ratelimit.hit(settings.state_path, buckets)
        text = callfile.render(
            call,
            context=settings.outgoing_context,
            channel_context=settings.channel_context,
            caller_id=settings.caller_id,
            account=settings.account,
            max_retries=settings.max_retries,
            retry_time=settings.retry_time,
            wait_time=settings.wait_time,
            archive=settings.archive,
        )
        filename = spool.queue(
            text.encode("utf-8"),
            settings.outgoing_path,
            settings.outgoing_temp_path,
            fallback_staging(settings.outgoing_path),
            file_owner=settings.file_owner,
            fsync=settings.fsync,
            warn=log.warning,
        )
        record["filename"] = filename
        payload = {"status": "OK", "from": call.from_, "to": call.to,
                   "external_id": call.external_id, "filename": filename, "file": filename}
        return 200, payload, []


def make_app(settings: Optional[Settings] = None, log_stream: Optional[TextIO] = None) -> App:
    """The WSGI application for ``settings``; without, it finds the file per request."""
    return App(settings, log_stream)


#: for CGI (cgi-bin/) and mod_wsgi: settings from PBXCALL_CONFIG or the default places
application = make_app()
