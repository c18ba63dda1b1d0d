"""Bearer-token check against every configured key (SPEC §2).

Every key is compared, whatever matched before, with the constant-time primitive
behind ``hmac.compare_digest``: neither which key matched nor how much of a key
matched shows in the time.  ``_operator._compare_digest`` is that primitive
without the ``hashlib`` import ``hmac`` brings (a CGI process pays for every
import); ``hmac.compare_digest`` is the fallback on interpreters without it.
"""

from .errors import Unauthorized
from .settings import ApiKey

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Mapping, Optional, Sequence

try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover - other interpreters
    from hmac import compare_digest  # type: ignore

AUTH_VARIABLES = ("HTTP_AUTHORIZATION", "REDIRECT_HTTP_AUTHORIZATION")

#: logged when no Authorization header reached the script at all
MISSING_HEADER_HINT = (
    "no Authorization header reached pbxcall: Apache must pass it to CGI scripts "
    "(CGIPassAuth On, or on Apache < 2.4.13: "
    'SetEnvIf Authorization "(.+)" HTTP_AUTHORIZATION=$1)'
)


def authorization_header(environ: "Mapping[str, str]") -> "Optional[str]":
    """The Authorization header as Apache passed it; ``None`` when absent.

    After an internal redirect Apache renames variables with a ``REDIRECT_`` prefix.
    """
    for name in AUTH_VARIABLES:
        value = environ.get(name)
        if value:
            return value
    return None


def bearer_token(header: str) -> "Optional[bytes]":
    """The token of ``Bearer <token>`` (scheme case-insensitive), else ``None``."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(char.isspace() for char in token):
        return None
    try:
        return token.encode("latin-1")  # WSGI strings carry the raw header bytes
    except UnicodeEncodeError:
        return None


def authenticate(keys: "Sequence[ApiKey]", header: "Optional[str]") -> "ApiKey":
    """The key that ``header`` carries, or :class:`Unauthorized`."""
    token = bearer_token(header) if header else None
    if token is None:
        raise Unauthorized(None, "no Bearer token" if header is None else "malformed Authorization header")
    found = None
    for key in keys:
        if compare_digest(token, key.secret) and found is None:
            found = key
    if found is None:
        raise Unauthorized(None, "wrong key")
    return found
