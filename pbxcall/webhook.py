"""Webhooks: who is told what, in which words, signed how, retried when.  Pure.

Events (``event`` in the body, ``X-Pbxcall-Event`` header):

- ``call.answered`` — the agent picked up (needs ``outcome``: Asterisk says when);
- ``call.finished`` — the call is over: ``completed``, ``expired``, ``failed`` or
  ``cancelled``, with the outcome.

Body: ``{"event_id", "event", "created_at", "call": <the call_status.php answer>}``.
``event_id`` is ``<filename>:<event>``: the same for every retry and every copy, so a
CRM drops duplicates by it (delivery is at least once).

Signature: ``X-Pbxcall-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` of
``<unix time>.<body>`` with the target's secret, made at each sending: a CRM checks
the HMAC over the exact body and refuses a ``t`` too far from its clock (replays).

Retries: a timeout, a connection error, 408, 429 and 5xx are retried with exponential
backoff (10 s, 20 s, 40 s, ... at most an hour apart) until 24 h after the event; any
other answer but 2xx (a redirect is not followed) makes the event a dead letter at once.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

EVENTS = ("call.answered", "call.finished")
SIGNATURE_HEADER = "X-Pbxcall-Signature"
FIRST_RETRY = 10.0  # seconds
MAX_RETRY_GAP = 3600.0
GIVE_UP_AFTER = 24 * 3600.0
TIMEOUT = 5.0  # seconds to connect, and to wait for each answer


class Target:
    """One webhook receiver: ``url``, the ``secret`` that signs, the ``events`` it wants."""

    __slots__ = ("url", "secret", "events", "name")

    def __init__(self, url: str, secret: bytes, events: "Sequence[str]", name: str) -> None:
        self.url = url
        self.secret = secret
        self.events = tuple(events)
        #: how the outbox refers to it (the secret is looked up at sending, never stored there)
        self.name = name

    @classmethod
    def from_mapping(cls, entry: "Any", name: str) -> "Target":
        if not isinstance(entry, dict):
            raise ValueError("%s must be an object with url, secret and events" % name)
        url, secret, events = entry.get("url"), entry.get("secret"), entry.get("events", list(EVENTS))
        parse_url(url)
        if not isinstance(secret, str) or len(secret) < 16 or not all("!" <= char <= "~" for char in secret):
            raise ValueError("%s: secret must be 16 or more printable characters without spaces" % name)
        if not isinstance(events, list) or not events or any(event not in EVENTS for event in events):
            raise ValueError("%s: events must be a list of %s" % (name, ", ".join(EVENTS)))
        unknown = sorted(set(entry) - {"url", "secret", "events"})
        if unknown:
            raise ValueError("%s: unknown field %s" % (name, ", ".join(unknown)))
        return cls(str(url), secret.encode("ascii"), events, name)

    def __repr__(self) -> str:  # never the secret
        return "Target(%r, %r)" % (self.name, self.url)


def parse_url(url: "Any") -> "Tuple[str, str, int, str]":
    """(scheme, host, port, path) of an http(s) URL without user info, query or fragment;
    ValueError for anything else."""
    if not isinstance(url, str) or not all("!" <= char <= "~" for char in url):
        raise ValueError("a URL is printable ASCII without spaces, got %r" % (url,))
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError("only http:// and https:// URLs, got %r" % url)
    authority, slash, path = rest.partition("/")
    if "@" in authority or "?" in rest or "#" in rest or "\\" in rest:
        raise ValueError("no user info, query or fragment in a webhook URL: %r" % url)
    host, port = authority, ""
    if authority.startswith("["):
        host, _, port = authority[1:].partition("]")
        port = port[1:] if port.startswith(":") else port
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    if not host or (port and not port.isdigit()) or not 0 < int(port or 1) < 65536:
        raise ValueError("a URL needs a host and a valid port: %r" % url)
    default = 443 if scheme == "https" else 80
    return scheme, host.lower(), int(port) if port else default, "/" + path if slash else "/"


def callback_allowed(url: str, prefixes: "Sequence[str]") -> bool:
    """Whether ``url`` lies under one of ``prefixes``: same scheme, host and port, and
    its path starts with the prefix's path at a ``/`` boundary (``/crm`` does not admit
    ``/crm-evil``).  Compared parsed, never as text: no other host is ever contacted."""
    try:
        scheme, host, port, path = parse_url(url)
    except ValueError:
        return False
    if "/../" in path + "/" or "/./" in path + "/" or "%" in path:
        return False
    for prefix in prefixes:
        allowed = parse_url(prefix)
        base = allowed[3] if allowed[3].endswith("/") else allowed[3] + "/"
        if (scheme, host, port) == allowed[:3] and (path == allowed[3] or path.startswith(base)):
            return True
    return False


def event_id(filename: str, event: str) -> str:
    return "%s:%s" % (filename, event)


def body(filename: str, event: str, created_at: str, call: "Mapping[str, Any]") -> bytes:
    """The exact bytes sent (and signed)."""
    from .jsonwire import dumps

    return dumps({"event_id": event_id(filename, event), "event": event, "created_at": created_at,
                  "call": dict(call)}).encode("ascii")


def sign(secret: bytes, timestamp: int, data: bytes) -> str:
    """The signature header's value for ``data`` sent at ``timestamp``."""
    import hashlib
    import hmac

    digest = hmac.new(secret, str(timestamp).encode("ascii") + b"." + data, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (timestamp, digest)


def verify(secret: bytes, header: str, data: bytes, now: float, tolerance: int = 300) -> bool:
    """What a receiver does (and the README shows): the HMAC matches, the time is recent."""
    import hmac

    fields = dict(part.partition("=")[::2] for part in header.split(","))
    stamp = fields.get("t", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(stamp), data), "t=%s,v1=%s" % (stamp, fields.get("v1", "")))


def retryable(status: "Optional[int]") -> bool:
    """Whether an answer (None: no answer at all) is worth another try."""
    return status is None or status in (408, 429) or 500 <= status <= 599


def next_attempt(created: float, attempts: int, now: float) -> "Optional[float]":
    """When to try again after ``attempts`` failed tries, or None: give up (dead letter)."""
    gap = min(FIRST_RETRY * 2 ** max(0, attempts - 1), MAX_RETRY_GAP)
    when = now + gap
    return when if when <= created + GIVE_UP_AFTER else None


def targets_for(event: str, settings_targets: "Sequence[Target]", key_targets: "Sequence[Target]",
                callback: "Optional[Target]") -> "List[Target]":
    """Every target that wants ``event`` for a call: global, the key's, its callback_url."""
    found = [target for target in list(settings_targets) + list(key_targets) if event in target.events]
    if callback is not None:
        found.append(callback)
    return found


def callback_target(url: str, secret: str) -> "Target":
    return Target(url, secret.encode("ascii"), EVENTS, "callback")


def subscription(key_name: str, callback_url: "Optional[str]") -> "Dict[str, Any]":
    """What make_call records for the sender: whose call, and where else to tell."""
    return {"key": key_name, "callback_url": callback_url}
