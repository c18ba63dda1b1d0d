"""The exception tree: every refusal pbxcall can give, with its HTTP status and code.

``app`` catches :class:`PbxcallError` in exactly one place and renders
``{"status": "ERROR", "error": message, "code": code}``.  Context travels as
attributes (``detail``, ``headers``), never packed into the client-facing text:
``detail`` goes to the log only.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import List, Optional, Tuple
    Headers = List[Tuple[str, str]]


MAX_SHOWN = 80  # characters kept of a client-supplied value in a log line or detail


def shown(value: "object") -> str:
    """A client-supplied value as it may appear in a log line or an error's detail:
    visible ASCII without space, ``=`` or backslash (those are ``\\x..`` escapes), cut
    at MAX_SHOWN.  Nothing a client sends can then look like another ``key=value`` of
    pbxcall's line (which fail2ban reads), or start a line of its own."""
    if value is None:
        return "-"
    text = str(value)
    cut = len(text) > MAX_SHOWN
    text = "".join(char if "!" <= char <= "~" and char not in "\\=" else
                   "\\x%02x" % ord(char) if ord(char) < 0x100 else char.encode("unicode_escape").decode("ascii")
                   for char in text[:MAX_SHOWN])
    return text + "..." if cut else text


class PbxcallError(Exception):
    """Root of every expected failure; anything else is a bug and a generic 500."""

    status = 500  # HTTP status code
    code = "internal_error"  # machine-readable code in the JSON body
    message = "Internal error"  # text for the client; never contains details

    def __init__(self, message: "Optional[str]" = None, detail: "Optional[str]" = None) -> None:
        if message is not None:
            self.message = message
        #: what went wrong, for the log only (paths, errno, the offending setting)
        self.detail = detail
        super().__init__(detail or self.message)

    @property
    def headers(self) -> "Headers":
        """Extra response headers this error needs (``Allow``, ``Retry-After``...)."""
        return []


class BadRequest(PbxcallError):
    status = 400
    code = "bad_request"
    message = "Bad request"


class InvalidField(BadRequest):
    """A field failed its pattern; ``field`` names it."""

    field = ""

    def __init__(self, detail: "Optional[str]" = None) -> None:
        super().__init__(None, detail)


class InvalidFrom(InvalidField):
    code = "invalid_from"
    message = "Invalid from number"
    field = "from"


class InvalidTo(InvalidField):
    code = "invalid_to"
    message = "Invalid to number"
    field = "to"


class InvalidExternalId(InvalidField):
    code = "invalid_external_id"
    message = "Invalid external_id"
    field = "external_id"


class Unauthorized(PbxcallError):
    status = 401
    code = "unauthorized"
    message = "Unauthorized"

    @property
    def headers(self) -> "Headers":
        return [("WWW-Authenticate", 'Bearer realm="pbxcall"')]


class Forbidden(PbxcallError):
    status = 403
    code = "forbidden"
    message = "Forbidden"


class NotFound(PbxcallError):
    status = 404
    code = "not_found"
    message = "Not found"


class MethodNotAllowed(PbxcallError):
    status = 405
    code = "method_not_allowed"
    message = "Method not allowed"

    def __init__(self, allowed: "Tuple[str, ...]" = ("GET", "POST")) -> None:
        super().__init__()
        self.allowed = allowed

    @property
    def headers(self) -> "Headers":
        return [("Allow", ", ".join(self.allowed))]


class ConfigError(PbxcallError):
    """The settings are missing or unusable: pbxcall refuses to serve."""

    status = 500
    code = "config_error"
    message = "Invalid configuration"


class ConfigNotFound(ConfigError):
    message = "Configuration file not found"


class SpoolError(PbxcallError):
    """The call file could not be queued; nothing was left in ``outgoing/``."""

    status = 500
    code = "spool_error"
    message = "Could not queue the call"


class RateLimited(PbxcallError):
    """Too many calls for a key or an extension; ``retry_after`` seconds until a slot frees."""

    status = 429
    code = "rate_limited"
    message = "Too many requests"

    def __init__(self, retry_after: int, detail: "Optional[str]" = None) -> None:
        super().__init__(None, detail)
        self.retry_after = max(1, int(retry_after))

    @property
    def headers(self) -> "Headers":
        return [("Retry-After", str(self.retry_after))]


class InvalidSchedule(BadRequest):
    code = "invalid_schedule"
    message = "Invalid schedule"


class InvalidCallbackUrl(BadRequest):
    """A callback_url outside the settings' callback_url_prefixes (never contacted)."""

    code = "invalid_callback_url"
    message = "Invalid callback_url"


class UnknownCall(PbxcallError):
    """No call by that filename (or external_id) that this key may see."""

    status = 404
    code = "unknown_call"
    message = "Unknown call"


class AlreadyStarted(PbxcallError):
    status = 409
    code = "already_started"
    message = "The call has already started"


class AlreadyFinished(PbxcallError):
    status = 409
    code = "already_finished"
    message = "The call has already finished"
