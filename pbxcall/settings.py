"""Load and validate the settings file (SPEC §6).

The file mirrors the old ``.api.env.php``: a JSON object, or — when the path
ends in ``.php`` — the old PHP file itself, read by :mod:`pbxcall.phpenv`.
Found by ``PBXCALL_CONFIG`` (Apache: ``SetEnv``), else
``/etc/pbxcall/api.env.json``, else ``.api.env.json`` beside the package.

Settings are a value: :meth:`Settings.from_file` / :meth:`Settings.from_mapping`
build one, the app receives it.  A missing or unusable file raises
:class:`~pbxcall.errors.ConfigError` with a detail for the log; pbxcall then
refuses to serve rather than guess.
"""

from .errors import ConfigError, ConfigNotFound
from .fileio import abspath, dirname, exists, getenv, join, read_file, same_place
from .numbers import DEFAULT_FROM_PATTERN, DEFAULT_TO_PATTERN, Pattern

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

    from .policy import AddressList, Policy
    from .ratelimit import Rate
    from .webhook import Target

SYSTEM_PATH = "/etc/pbxcall/api.env.json"
#: bytes a settings file may have: it is read by every CGI request (a FIFO or /dev/zero
#: named as the settings is refused at once, never waited on)
MAX_FILE = 1024 * 1024
#: settings that name files or directories: absolute, or Apache's working directory decides
PATH_FIELDS = ("outgoing_path", "outgoing_temp_path", "state_path", "audit_log", "log_file", "webhook_ca_file")
PACKAGE_PATH = join(dirname(dirname(abspath(__file__))), ".api.env.json")

#: documented example keys (the contract's, the old PHP project's, this README's);
#: a server still using one is refused, not served.  Compared lower-cased.
PLACEHOLDER_KEYS = frozenset([
    "change-me", "changeme", "change_me", "your-secret-key", "your_secret_key", "secret", "api-key", "api_key",
    "apikey", "key", "my-secret-key-123", "your_api_key", "your-api-key", "yourapikey", "secret-key", "...",
])
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_CONTEXT_CHARS = _NAME_CHARS
_PATH_CHARS = _NAME_CHARS | {"/"}


class ApiKey:
    """One accepted Bearer token, the name it is logged under, and its own limits."""

    __slots__ = ("name", "secret", "policy", "webhooks")

    def __init__(self, name: str, secret: bytes, policy: "Optional[Policy]" = None,
                 webhooks: "Sequence[Target]" = ()) -> None:
        self.name = name
        self.secret = secret
        #: the key's own rules; None when it has none
        self.policy = policy
        #: webhook targets for the calls placed with this key
        self.webhooks = tuple(webhooks)

    def __repr__(self) -> str:  # never the secret
        return "ApiKey(%r)" % self.name


class _Field:
    """One optional setting: its JSON type, default and range."""

    __slots__ = ("kind", "default", "low", "high", "nullable")

    def __init__(self, kind: "type", default: "Any", low: int = 0, high: int = 0,
                 nullable: bool = False) -> None:
        self.kind = kind
        self.default = default
        self.low = low
        self.high = high
        #: null is a value of its own (``file_owner: null``: never chown)
        self.nullable = nullable or default is None


#: every setting besides the keys; ``None`` defaults are derived in ``__init__``
FIELDS: "Dict[str, _Field]" = {
    "outgoing_path": _Field(str, "/var/spool/asterisk/outgoing"),
    "outgoing_temp_path": _Field(str, None),  # default: <spool>/tmp beside outgoing
    "outgoing_context": _Field(str, "from-internal"),
    "channel_context": _Field(str, None),  # default: outgoing_context
    "caller_id": _Field(str, '"{to}" <{from}>'),
    "account": _Field(str, "{from}"),
    "max_retries": _Field(int, 2, 0, 1000),
    "retry_time": _Field(int, 60, 1, 86400),
    "wait_time": _Field(int, 30, 1, 3600),
    "archive": _Field(bool, True),  # call_status needs Asterisk's archive
    "from_pattern": _Field(str, DEFAULT_FROM_PATTERN),
    "to_pattern": _Field(str, DEFAULT_TO_PATTERN),
    "file_owner": _Field(str, "asterisk", nullable=True),  # null: never chown
    "log_file": _Field(str, None),
    "fsync": _Field(bool, True),
    "allowed_ips": _Field(list, None),  # CIDR networks; null: any address
    "allowed_from": _Field(list, None),  # rules for every key; null: no restriction
    "allowed_to": _Field(list, None),
    "denied_to": _Field(list, None),
    "rate_limit": _Field(dict, {"per_key": "60/minute", "per_from": "10/minute"}, nullable=True),
    "state_path": _Field(str, None),  # default: <spool>/pbxcall beside outgoing
    "audit_log": _Field(str, None),
    "retention_days": _Field(int, 30, 1, 3650),
    "dedupe_seconds": _Field(int, 10, 0, 3600),
    "max_schedule_days": _Field(int, 7, 1, 365),
    "outcome": _Field(bool, False),  # the admin loaded pbxcall's dialplan (pbxcall dialplan)
    "webhooks": _Field(list, None),  # [{"url", "secret", "events"}] for every call
    "callback_url_prefixes": _Field(list, None),  # where a request's callback_url may point
    "callback_secret": _Field(str, None),  # signs the events sent to a callback_url
    "webhook_ca_file": _Field(str, None),  # CA bundle for HTTPS targets (default: the system's)
}
RATE_FIELDS = ("per_key", "per_from")
KEY_FIELDS = ("api_key", "api_keys")
#: rule lists, global and in each api_keys entry (pbxcall.policy)
POLICY_FIELDS = ("allowed_from", "allowed_to", "denied_to")


class Settings:
    """Validated settings.  Attribute names are the setting names."""

    __slots__ = tuple(FIELDS) + ("keys", "source", "warnings", "policy", "addresses", "rates", "targets")
    keys: "Tuple[ApiKey, ...]"
    outgoing_path: str
    outgoing_temp_path: str
    outgoing_context: str
    channel_context: str
    caller_id: str
    account: str
    max_retries: int
    retry_time: int
    wait_time: int
    archive: bool
    from_pattern: "Pattern"
    to_pattern: "Pattern"
    file_owner: "Optional[str]"
    log_file: "Optional[str]"
    fsync: bool
    allowed_ips: "Optional[List[str]]"
    allowed_from: "Optional[List[str]]"
    allowed_to: "Optional[List[str]]"
    denied_to: "Optional[List[str]]"
    rate_limit: "Optional[Dict[str, str]]"
    state_path: str
    audit_log: "Optional[str]"
    retention_days: int
    dedupe_seconds: int
    max_schedule_days: int
    outcome: bool
    webhooks: "Any"
    callback_url_prefixes: "Optional[List[str]]"
    callback_secret: "Optional[str]"
    webhook_ca_file: "Optional[str]"
    targets: "Tuple[Target, ...]"
    policy: "Optional[Policy]"
    addresses: "Optional[AddressList]"
    rates: "Dict[str, Rate]"

    def __init__(self, keys: "Sequence[ApiKey]", source: str = "<settings>", **values: "Any") -> None:
        self.keys = tuple(keys)
        self.source = source
        #: problems worth a log line that do not stop pbxcall (unknown keys)
        self.warnings: "List[str]" = []
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError("unknown settings: %s" % ", ".join(sorted(unknown)))
        for name, field in FIELDS.items():
            setattr(self, name, values.get(name, field.default))
        self.outgoing_path = abspath(self.outgoing_path)
        self.outgoing_temp_path = values.get("outgoing_temp_path") or fallback_staging(self.outgoing_path)
        self.channel_context = values.get("channel_context") or self.outgoing_context
        self.state_path = values.get("state_path") or join(dirname(self.outgoing_path), "pbxcall")
        # Compiled once, here; a bad value is a ConfigError that names the setting.
        self.from_pattern = _pattern(source, "from_pattern", values.get("from_pattern", DEFAULT_FROM_PATTERN))
        self.to_pattern = _pattern(source, "to_pattern", values.get("to_pattern", DEFAULT_TO_PATTERN))
        self.policy = _policy(source, "", values)
        self.addresses = _addresses(source, self.allowed_ips)
        self.rates = _rates(source, self.rate_limit)
        self.targets = _targets(source, "webhooks", self.webhooks)
        if self.callback_url_prefixes is not None:
            _callback_prefixes(source, self.callback_url_prefixes, self.callback_secret)

    @classmethod
    def from_mapping(cls, data: "Any", source: str = "<settings>") -> "Settings":
        """Validate a parsed settings object; :class:`ConfigError` says what is wrong."""
        if not isinstance(data, dict):
            raise _invalid(source, "the top level must be an object of settings")
        values: "Dict[str, Any]" = {}
        warnings = []
        for name, value in data.items():
            if name in KEY_FIELDS:
                continue
            field = FIELDS.get(name)
            if field is None:
                warnings.append("%s: unknown setting %r ignored" % (source, name))
            elif value is not None or not field.nullable:
                values[name] = _check_field(source, name, field, value)
            else:
                values[name] = None
        settings = cls(_read_keys(source, data, warnings), source, **_check_values(source, values))
        settings.warnings = warnings
        return settings

    @classmethod
    def from_file(cls, path: str) -> "Settings":
        """Read ``path`` (JSON, or the legacy PHP array when it ends in ``.php``)."""
        try:
            raw = read_file(path, MAX_FILE)
        except FileNotFoundError:
            raise ConfigNotFound(None, "settings file %s does not exist" % path)
        except OSError as exc:
            raise ConfigError(None, "settings file %s cannot be read: %s" % (path, exc.strerror or exc))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(path, "not UTF-8 text")
        return cls.from_mapping(parse_text(text, path), path)


def parse_text(text: str, path: str) -> "Any":
    """The settings object in ``text``: JSON, or PHP when ``path`` ends in ``.php``."""
    if path.endswith(".php"):
        from .phpenv import PhpSyntaxError, loads

        try:
            return loads(text)
        except PhpSyntaxError as exc:
            raise _invalid(path, "not a plain PHP array file (%s)" % exc)
    from .jsonwire import loads

    try:
        return loads(text)
    except ValueError as exc:
        raise _invalid(path, "not valid JSON (%s)" % exc)


UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(text: str) -> "Rate":
    """``"30/minute"`` -> (30, 60); ValueError for anything else."""
    count, _, unit = str(text).partition("/")
    unit = unit.strip().lower()
    seconds = UNITS.get(unit[:-1] if unit.endswith("s") else unit)  # "minutes" too
    if not count.strip().isdigit() or seconds is None or int(count) < 1:
        raise ValueError("a rate is N/second, N/minute, N/hour or N/day with N >= 1, got %r" % (text,))
    return int(count), seconds


def find_path(environ: "Optional[Mapping[str, str]]" = None) -> str:
    """Where the settings are: ``PBXCALL_CONFIG`` from ``environ`` or the process,
    else the first of ``/etc/pbxcall/api.env.json`` and ``.api.env.json`` beside the
    package that exists; ConfigNotFound when none does."""
    path = (environ or {}).get("PBXCALL_CONFIG") or getenv("PBXCALL_CONFIG")
    if path:
        return path
    for path in (SYSTEM_PATH, PACKAGE_PATH):
        if exists(path):
            return path
    raise ConfigNotFound(
        None, "no settings file: set PBXCALL_CONFIG or create %s or %s" % (SYSTEM_PATH, PACKAGE_PATH)
    )


def fallback_staging(outgoing_path: str) -> str:
    """``<spool>/tmp`` beside ``outgoing/``: on the same mount, FreePBX has it."""
    return join(dirname(abspath(outgoing_path)), "tmp")


def _invalid(source: str, problem: str) -> "ConfigError":
    return ConfigError(None, "settings %s: %s" % (source, problem))


def _check_field(source: str, name: str, field: "_Field", value: "Any") -> "Any":
    if field.kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or not field.low <= value <= field.high:
            raise _invalid(source, "%s must be a whole number from %d to %d, got %r"
                           % (name, field.low, field.high, value))
    elif not isinstance(value, field.kind):
        raise _invalid(source, "%s must be %s, got %r"
                       % (name, "true or false" if field.kind is bool else "a string", value))
    return value


def _check_values(source: str, values: "Dict[str, Any]") -> "Dict[str, Any]":
    """Checks that look inside string settings."""
    for name in ("outgoing_context", "channel_context"):
        context = values.get(name)
        if context is not None and (not context or not _CONTEXT_CHARS.issuperset(context)):
            raise _invalid(source, "%s must be a dialplan context name of [A-Za-z0-9._-], got %r"
                           % (name, context))
    for name in ("caller_id", "account"):
        if name in values:
            from .callfile import template_problem

            problem = template_problem(values[name])
            if problem:
                raise _invalid(source, "%s template: %s" % (name, problem))
    for name in PATH_FIELDS:
        if name in values and values[name] is not None and not values[name].startswith("/"):
            raise _invalid(source, "%s must be an absolute path (starting with /), got %r: a relative one "
                                   "would be resolved against the web server's working directory"
                           % (name, values[name]))
    if values.get("outcome") and values.get("state_path") is not None and not _PATH_CHARS.issuperset(
            values["state_path"]):
        # The outcome file's path travels in the call file and through the dialplan.
        raise _invalid(source, "with outcome on, state_path must be of [A-Za-z0-9/._-], got %r" % values["state_path"])
    outgoing = values.get("outgoing_path", FIELDS["outgoing_path"].default)
    staging = values.get("outgoing_temp_path")
    if staging is not None and same_place(staging, outgoing):
        # Asterisk takes any file closed inside outgoing/ as a call, whole or not.
        raise _invalid(source, "outgoing_temp_path must not be outgoing_path itself")
    return values


def _pattern(source: str, name: str, text: str) -> "Pattern":
    try:
        return Pattern(text)
    except ValueError as exc:
        raise _invalid(source, "%s: %s" % (name, exc))


def _addresses(source: str, networks: "Optional[List[str]]") -> "Optional[AddressList]":
    if networks is None:
        return None
    from .policy import AddressList  # only when configured: it imports ipaddress

    try:
        return AddressList(networks)
    except ValueError as exc:
        raise _invalid(source, "allowed_ips: %s" % exc)


def _rates(source: str, limits: "Optional[Dict[str, str]]") -> "Dict[str, Rate]":
    rates: "Dict[str, Rate]" = {}
    for name, text in (limits or {}).items():
        if name not in RATE_FIELDS:
            raise _invalid(source, "rate_limit: unknown limit %r (known: %s)" % (name, ", ".join(RATE_FIELDS)))
        try:
            rates[name] = parse_rate(text)
        except ValueError as exc:
            raise _invalid(source, "rate_limit.%s: %s" % (name, exc))
    return rates


def _policy(source: str, prefix: str, data: "Mapping[str, Any]") -> "Optional[Policy]":
    """The Policy of ``allowed_from``/``allowed_to``/``denied_to`` in ``data``, None
    without rules (and then :mod:`pbxcall.policy` is not even imported); errors name
    the rule list."""
    rules = {name: data[name] for name in POLICY_FIELDS if data.get(name) is not None}
    if not rules:
        return None
    from .policy import Policy

    try:
        return Policy(**rules)
    except ValueError:
        for name, value in rules.items():  # which list holds the bad rule
            try:
                Policy(**{name: value})
            except ValueError as exc:
                raise _invalid(source, "%s%s: %s" % (prefix, name, exc))
        raise


def _targets(source: str, where: str, entries: "Any", label: str = "webhooks") -> "Tuple[Target, ...]":
    """Webhook targets, checked (pbxcall.webhook is imported only when some are set),
    named ``<label>[<index>]`` in the outbox."""
    if entries is None:
        return ()
    from .webhook import Target

    if not isinstance(entries, list):
        raise _invalid(source, "%s must be a list of {\"url\": ..., \"secret\": ..., \"events\": [...]}" % where)
    try:
        return tuple(Target.from_mapping(entry, "%s[%d]" % (label, index)) for index, entry in enumerate(entries))
    except ValueError as exc:
        raise _invalid(source, "%s: %s" % (where, exc))


def _callback_prefixes(source: str, prefixes: "List[str]", secret: "Optional[str]") -> None:
    from .webhook import parse_url

    for prefix in prefixes:
        try:
            parse_url(prefix)
        except (TypeError, ValueError) as exc:
            raise _invalid(source, "callback_url_prefixes: %s" % exc)
    if not secret or key_problem(secret):
        raise _invalid(source, "callback_url_prefixes needs callback_secret: the key that signs what is sent there")


def _read_keys(source: str, data: "Mapping[str, Any]", warnings: "List[str]") -> "List[ApiKey]":
    entries: "List[Any]" = []
    if data.get("api_key") is not None:
        entries.append(("api_key", {"name": "default", "key": data["api_key"]}))
    api_keys = data.get("api_keys")
    if api_keys is not None:
        if not isinstance(api_keys, list):
            raise _invalid(source, "api_keys must be a list of {\"name\": ..., \"key\": ...}")
        entries.extend(("api_keys[%d]" % index, entry) for index, entry in enumerate(api_keys))
    if not entries:
        raise _invalid(source, "no api_key: set api_key or api_keys")
    keys: "List[ApiKey]" = []
    for where, entry in entries:
        if not isinstance(entry, dict):
            raise _invalid(source, "%s must be an object with name and key" % where)
        name, secret = entry.get("name"), entry.get("key")
        if not isinstance(name, str) or not 0 < len(name) <= 64 or not _NAME_CHARS.issuperset(name):
            raise _invalid(source, "%s: name must be 1-64 of [A-Za-z0-9._-]" % where)
        problem = key_problem(secret)
        if problem:
            raise _invalid(source, "%s (%s): %s" % (where, name, problem))
        if any(key.name == name for key in keys):
            raise _invalid(source, "%s: the name %r is used twice" % (where, name))
        if any(key.secret == str(secret).encode("ascii") for key in keys):
            raise _invalid(source, "%s (%s): the same key is configured twice" % (where, name))
        for field in sorted(set(entry) - {"name", "key", "webhooks"} - set(POLICY_FIELDS)):
            warnings.append("%s: unknown setting %r in %s ignored" % (source, field, where))
        keys.append(ApiKey(name, str(secret).encode("ascii"), _policy(source, where + ".", entry),
                           _targets(source, where + ".webhooks", entry.get("webhooks"), "key " + name)))
    return keys


def key_problem(secret: "Any") -> "Optional[str]":
    """Why ``secret`` cannot be an API key, or ``None``.  Never quotes the key."""
    if not isinstance(secret, str) or not secret:
        return "the key must be a non-empty string"
    if secret.lower() in PLACEHOLDER_KEYS:
        return "the key is still the documented placeholder; set a random key"
    if not all("!" <= char <= "~" for char in secret):
        return "the key must be printable ASCII without spaces (it travels in a Bearer header)"
    return None
