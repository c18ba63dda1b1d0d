"""The WSGI application: HTTP in, :mod:`pbxcall` functions, JSON out.

Endpoints (any path whose last segment is the name, so they can be mounted anywhere;
a path with anything after an endpoint's name is a 404)::

    GET|POST /api/make_call.php    from, to[, external_id][, at | delay][, callback_url]
    GET|POST /api/call_status.php  filename | external_id
    POST     /api/cancel_call.php  filename | external_id
    all with  Authorization: Bearer KEY

Fields come from the query string and, for POST, a form or JSON body.
Order of checks: path (404), method (405), settings (500), allowed_ips (403),
key (401), fields (400), rules (403), duplicate (200 again), rate limit (429);
an unauthenticated caller learns nothing about validation.

make_call 200 ``{"status": "OK", "from", "to", "external_id", "filename", "file"}``
(+ ``scheduled_at`` when scheduled, + ``"duplicate": true`` for a repeat) — ``to``
normalised, ``external_id`` null when absent, ``filename`` and ``file`` both the
call file's basename (``file`` is what the old PHP returned).
call_status / cancel_call 200 ``{"status": "OK", "filename", "from", "to",
"external_id", "state", "attempts", "scheduled_at", "updated_at", "outcome"}``;
``outcome`` is ``{"agent", "customer", "dial_status", "agent_answered_at",
"customer_answered_at", "ended_at", "talk_seconds", "hangup_cause", "linkedid"}``.

Errors ``{"status": "ERROR", "error": text, "code": code}``:
400 invalid_from / invalid_to / invalid_external_id / invalid_schedule /
invalid_callback_url / bad_request,
401 unauthorized (+ WWW-Authenticate), 403 forbidden, 404 not_found / unknown_call,
405 method_not_allowed (+ Allow), 409 already_started / already_finished,
429 rate_limited (+ Retry-After), 500 config_error / spool_error / internal_error.

Every response is JSON with ``Cache-Control: no-store``; a traceback goes to the
log, never to the client.  Every side effect (the rename, the log line) happens
before the response starts: Apache's CGI modules SIGTERM the script as soon as
its output ends.
"""

import posix
import sys
import time

from . import auth, numbers, request
from .errors import (
    AlreadyFinished,
    AlreadyStarted,
    BadRequest,
    Forbidden,
    InvalidCallbackUrl,
    MethodNotAllowed,
    NotFound,
    PbxcallError,
    SpoolError,
    UnknownCall,
    shown,
)
from .jsonwire import dumps
from .log import Log
from .settings import ApiKey, Settings, fallback_staging, find_path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Callable, Dict, Iterable, Optional, TextIO, Tuple

    from . import callfile, callstate
    from .errors import Headers

    StartResponse = Callable[..., Any]
    Reply = Tuple[int, Dict[str, Any], Headers]
    Found = Tuple[str, str, callstate.CallFacts, posix.stat_result]

BASE_HEADERS = [
    ("Content-Type", "application/json; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]
INTERNAL_ERROR = {"status": "ERROR", "error": "Internal error", "code": "internal_error"}

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 429: "Too Many Requests",
            500: "Internal Server Error"}
def answer(work: "Callable[[], Reply]", log: "Log", record: "Dict[str, Any]") -> "Reply":
    """Run ``work`` and log its request line: the one place failures become answers.

    An expected failure answers its status and the error JSON; anything else is the
    generic 500, its traceback in the log only — never to "any old user" (wsgiref's
    words).  A log that cannot be written does not cost the answer.
    """
    detail = None
    try:
        status, payload, headers = work()
    except PbxcallError as exc:
        status, headers, detail = exc.status, exc.headers, exc.detail
        payload = {"status": "ERROR", "error": exc.message, "code": exc.code}
    except Exception:
        import traceback

        detail = "internal error:\n" + traceback.format_exc().rstrip()
        status, payload, headers = 500, dict(INTERNAL_ERROR), []
    try:
        log.request(dict(outcome=payload.get("code", "ok"), status=status, **record), detail)
    except Exception:
        pass
    return status, payload, headers


class App:
    """The WSGI callable.  ``settings`` fixed, or ``None``: load the file per request.

    Logs go to ``log_stream``, by default the server's ``wsgi.errors`` (Apache's
    error log under CGI and mod_wsgi), unless the settings name a ``log_file``.
    """

    def __init__(self, settings: "Optional[Settings]" = None, log_stream: "Optional[TextIO]" = None) -> None:
        self.settings = settings
        self.log_stream = log_stream
        self._cache: "Optional[Tuple[Tuple[Any, ...], Settings]]" = None

    def __call__(self, environ: "Dict[str, Any]", start_response: "StartResponse") -> "Iterable[bytes]":
        log = Log(self.log_stream or environ.get("wsgi.errors") or sys.stderr)
        record: "Dict[str, Any]" = {"client": environ.get("REMOTE_ADDR"), "key": None}
        status, payload, headers = answer(lambda: self.handle(environ, log, record), log, record)
        body = dumps(payload).encode("ascii")
        start_response(
            "%d %s" % (status, _REASONS.get(status, "")),
            BASE_HEADERS + headers + [("Content-Length", str(len(body)))],
        )
        return [body]

    def load_settings(self, environ: "Dict[str, Any]", log: "Log") -> "Settings":
        """The fixed settings, or the file's, reloaded when it changes (mod_wsgi)."""
        if self.settings is not None:
            return self.settings
        path = find_path(environ)
        try:
            st = posix.stat(path)
            stamp: "Tuple[Any, ...]" = (path, st.st_ino, st.st_size, st.st_mtime_ns)
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

    def handle(self, environ: "Dict[str, Any]", log: "Log", record: "Dict[str, Any]") -> "Reply":
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        segments = path.split("/")
        endpoint = ENDPOINTS.get(segments[-1])
        # Exactly an endpoint: /api/make_call.php/make_call.php (a path after the
        # script's own name) is none, whatever its last segment says.
        if endpoint is None or any(segment in ENDPOINTS for segment in segments[:-1]):
            raise NotFound(None, "no endpoint at %s" % shown(path))
        handler, methods = endpoint
        if environ.get("REQUEST_METHOD") not in methods:
            raise MethodNotAllowed(methods)
        settings = self.load_settings(environ, log)
        log.path, log.audit_path = settings.log_file, settings.audit_log
        if settings.addresses is not None:
            settings.addresses.check(environ.get("REMOTE_ADDR"))
        header = auth.authorization_header(environ)
        if header is None:
            log.warning(auth.MISSING_HEADER_HINT)
        key = auth.authenticate(settings.keys, header)
        record["key"] = key.name
        fields = request.read_fields(environ)
        record.update((name, fields.get(name)) for name in request.LOGGED)
        return handler(settings, key, fields, log, record)


def check_rules(settings: Settings, key: ApiKey, from_: str, to: str) -> None:
    """Forbidden unless both the global rules and the key's own let ``from_`` call ``to``."""
    for policy, owner in ((settings.policy, "settings"), (key.policy, "key " + key.name)):
        if policy is not None:
            policy.check(from_, to, owner)


def make_call(
    settings: "Settings", key: "ApiKey", fields: "Dict[str, str]", log: "Log", record: "Dict[str, Any]"
) -> "Reply":
    from_ = numbers.check_from(fields.get("from", ""), settings.from_pattern)
    to = numbers.check_to(fields.get("to", ""), settings.to_pattern)
    external_id = numbers.check_external_id(fields.get("external_id"))
    # Imported only now: a refused request (401, 400) never pays for them.
    from . import callfile, callstate, ratelimit, spool, statedir

    call = callfile.Call(from_, to, external_id)
    record["to"] = call.to
    now = time.time()
    scheduled = None
    if "at" in fields or "delay" in fields:
        from .schedule import when

        scheduled = when(fields.get("at"), fields.get("delay"), now, settings.max_schedule_days)
    check_rules(settings, key, call.from_, call.to)
    callback_url = fields.get("callback_url") or None
    if callback_url is not None:
        from .webhook import callback_allowed

        if not callback_allowed(callback_url, settings.callback_url_prefixes or ()):
            raise InvalidCallbackUrl(None, "callback_url %s is not under callback_url_prefixes"
                                     % shown(callback_url))
    hooks = bool(settings.targets or key.webhooks or callback_url)
    places = spool.places(settings.outgoing_path, settings.state_path)
    filename = spool.new_filename()
    text = callfile.render(
        call, context=settings.outgoing_context, channel_context=settings.channel_context,
        caller_id=settings.caller_id, account=settings.account, max_retries=settings.max_retries,
        retry_time=settings.retry_time, wait_time=settings.wait_time, archive=settings.archive,
        outcome_path=statedir.outcome_path(settings.state_path, filename) if settings.outcome else None,
    ).encode("utf-8")
    # Everything that can fail happens before the rename into outgoing/, and nothing
    # after it turns the answer into an error: 200 if and only if Asterisk has the call.
    # A dedupe or index line for a call that never reached the spool is harmless: a
    # recorded call counts as a duplicate only while its file is in outgoing/ or
    # outgoing_done/, and the index leads only to files that exist.
    try:
        with statedir.Dedupe(settings.state_path, key.name, call.from_, settings.dedupe_seconds) as dedupe:
            first = dedupe.find(call.to, call.external_id,
                                lambda name: spool.where(places, name) in (callstate.OUTGOING, callstate.DONE))
            if first is not None:
                record["filename"] = first[0]
                return 200, _made(call, first[0], first[1], duplicate=True), []
            buckets = [(prefix + name, settings.rates[limit]) for limit, prefix, name in
                       (("per_key", "key.", key.name), ("per_from", "from.", call.from_)) if limit in settings.rates]
            ratelimit.hit(settings.state_path, buckets)
            if call.external_id is not None:
                statedir.index_add(settings.state_path, call.external_id, filename)
            if hooks:
                from .webhook import subscription

                statedir.hooks_create(settings.state_path, filename,
                                      dumps(subscription(key.name, callback_url)).encode("ascii"))
            if settings.outcome:
                statedir.outcome_create(settings.state_path, filename, now, spool.owner(settings.file_owner,
                                                                                         log.warning))
            dedupe.record(filename, call.to, call.external_id, scheduled)
            try:
                spool.queue(text, settings.outgoing_path, settings.outgoing_temp_path,
                            fallback_staging(settings.outgoing_path), file_owner=settings.file_owner,
                            mtime=scheduled, fsync=settings.fsync, warn=log.warning, name=filename)
            except SpoolError:
                if hooks or settings.outcome:
                    statedir.forget(settings.state_path, filename)
                raise
            record["filename"] = filename
    except OSError as exc:  # the state directory: fail closed, as for rate limits
        raise SpoolError(None, "state in %s (state_path) must be writable by this user: %s"
                         % (settings.state_path, exc))
    after_call(settings, filename, log, now)
    return 200, _made(call, filename, scheduled), []


def _made(
    call: "callfile.Call", filename: str, scheduled: "Optional[float]", duplicate: bool = False
) -> "Dict[str, Any]":
    payload: "Dict[str, Any]" = {"status": "OK", "from": call.from_, "to": call.to, "external_id": call.external_id,
               "filename": filename, "file": filename}
    if scheduled is not None:
        from .schedule import iso_utc

        payload["scheduled_at"] = iso_utc(scheduled)
    if duplicate:
        payload["duplicate"] = True
    return payload


def after_call(settings: "Settings", filename: str, log: "Log", now: float) -> None:
    """The call is queued; what is left must not cost the answer: retention."""
    from . import statedir

    try:
        lock = statedir.prune_due(settings.state_path, now)
        if lock is not None:
            from .retention import run

            try:
                for problem in run(settings, now)["problems"]:
                    log.warning("retention: %s" % problem)
            finally:
                posix.close(lock)
    except Exception as exc:  # logged; the call is already in the spool
        log.warning("after queueing %s: %s: %s" % (filename, type(exc).__name__, exc))


def find_call(settings: "Settings", key: "ApiKey", fields: "Dict[str, str]", record: "Dict[str, Any]") -> "Found":
    """The call named by ``filename`` (or the newest with ``external_id``) that ``key`` may see."""
    from . import callstate, spool, statedir

    name = fields.get("filename", "")
    if name:
        names = [name] if spool.is_call_name(name) else []
    elif fields.get("external_id"):
        external_id = numbers.check_external_id(fields["external_id"])
        names = statedir.index_find(settings.state_path, external_id or "")
    else:
        raise BadRequest("Give filename or external_id")
    places = spool.places(settings.outgoing_path, settings.state_path)
    for name in names:
        found = spool.locate(places, name)
        if found is None:
            continue
        where, text, st = found
        facts = callstate.read(text)
        try:  # a call this key could not have placed does not exist for it
            check_rules(settings, key, facts.from_ or "", facts.to or "")
        except Forbidden:
            break
        record.update(filename=name, **{"from": facts.from_, "to": facts.to, "external_id": facts.external_id})
        return name, where, facts, st
    raise UnknownCall(None, "no call %s visible to key %s" % (shown(name or fields.get("external_id")), key.name))


def status_answer(settings: "Settings", found: "Found", now: float) -> "Dict[str, Any]":
    from . import callstate, statedir
    from .schedule import iso_utc

    name, where, facts, st = found
    state = callstate.state(where, facts, st.st_mtime, now)
    return {"status": "OK", "filename": name, "from": facts.from_, "to": facts.to,
            "external_id": facts.external_id, "state": state, "attempts": facts.attempts,
            "scheduled_at": iso_utc(st.st_mtime) if where == callstate.OUTGOING else None,
            "updated_at": iso_utc(st.st_ctime),
            "outcome": call_outcome(statedir.outcome_read(settings.state_path, name), state)}


def call_outcome(text: "Optional[str]", state: str) -> "Dict[str, Any]":
    """The status answer's ``outcome`` object: what Asterisk reported (pbxcall.outcome),
    null fields while it is not known yet, and agent and customer ``unknown`` for a
    finished call of which nothing was reported (outcome off, or the dialplan missing)."""
    from . import callstate
    from .outcome import empty, finished, parse
    from .schedule import iso_utc

    result = parse(text) if text is not None else None
    if state in callstate.FINISHED and not finished(result):
        return empty("unknown")
    if result is None or state == "cancelled":
        return empty()
    for name in ("agent_answered_at", "customer_answered_at", "ended_at"):
        if result[name] is not None:
            result[name] = iso_utc(result[name])
    return result


def call_status(
    settings: "Settings", key: "ApiKey", fields: "Dict[str, str]", log: "Log", record: "Dict[str, Any]"
) -> "Reply":
    return 200, status_answer(settings, find_call(settings, key, fields, record), time.time()), []


def cancel_call(
    settings: "Settings", key: "ApiKey", fields: "Dict[str, str]", log: "Log", record: "Dict[str, Any]"
) -> "Reply":
    from . import callstate, spool, statedir

    for _ in range(3):
        found = find_call(settings, key, fields, record)
        now = time.time()
        state = callstate.state(found[1], found[2], found[3].st_mtime, now)
        if state in callstate.FINISHED:
            raise AlreadyFinished()
        if state == "dialing":
            raise AlreadyStarted()
        if state == "cancelled" or spool.move_out(
                settings.outgoing_path, statedir.cancelled_path(settings.state_path), found[0]):
            found = find_call(settings, key, fields, record)
            if found[2].attempts:  # Asterisk started it in the same instant
                raise AlreadyStarted(None, "started while being cancelled")
            return 200, status_answer(settings, found, now), []
        # gone from outgoing/ between the look and the rename: look again
    raise AlreadyStarted(None, "the call kept moving while being cancelled")


#: endpoint name (the URL's last segment) -> (handler, methods)
ENDPOINTS = {
    "make_call.php": (make_call, ("GET", "POST")),
    "call_status.php": (call_status, ("GET", "POST")),
    "cancel_call.php": (cancel_call, ("POST",)),
}


def make_app(settings: "Optional[Settings]" = None, log_stream: "Optional[TextIO]" = None) -> "App":
    """The WSGI application for ``settings``; without, it finds the file per request."""
    return App(settings, log_stream)


#: for CGI (cgi-bin/) and mod_wsgi: settings from PBXCALL_CONFIG or the default places
application = make_app()
