"""Who may call what: extension and destination rules, the IP allow-list.  Pure.

A rule is a string, one of:

- an Asterisk dialplan pattern, as in FreePBX outbound routes: ``_`` then ``X``
  (0-9), ``Z`` (1-9), ``N`` (2-9), ``[1-5]``, ``.`` (one or more of anything),
  ``!`` (zero or more), other characters literal: ``_00.``, ``_8809XXXXXXX``;
- a regular expression when it starts with ``^`` (full match, ASCII);
- otherwise a literal: an exact extension in ``allowed_from``, a prefix in
  ``allowed_to`` and ``denied_to`` (``"00"`` is every international number).

A request passes when ``from`` matches ``allowed_from`` (if given), ``to`` matches
``allowed_to`` (if given) and ``to`` matches nothing in ``denied_to``; the global
policy and the key's own policy must both pass.
"""

from .errors import Forbidden
from .numbers import Pattern

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import List, Optional, Sequence

_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}


def asterisk_to_regex(pattern: str) -> str:
    """``_NXX.`` -> ``^[2-9][0-9][0-9].+$``; ValueError for an unclosed ``[``."""
    out = []
    index = 1
    while index < len(pattern):
        char = pattern[index]
        if char == "[":
            end = pattern.find("]", index)
            if end == -1:
                raise ValueError("unclosed [ in %r" % pattern)
            body = pattern[index + 1 : end]
            if not body or not all(c.isdigit() or c == "-" for c in body):
                raise ValueError("only digits and ranges inside [] in %r" % pattern)
            out.append("[" + body + "]")
            index = end + 1
            continue
        if char.upper() in "XZN":
            out.append(_CLASSES[char.upper()])
        elif char in ".!":
            out.append(_CLASSES[char])
        else:
            out.append(char if char.isalnum() else "\\" + char)
        index += 1
    return "^" + "".join(out) + "$"


class Rule:
    """One rule string, compiled; ``prefix`` decides what a plain literal means."""

    __slots__ = ("source", "_literal", "_pattern", "_prefix")

    def __init__(self, source: str, prefix: bool) -> None:
        if not isinstance(source, str) or not source:
            raise ValueError("a rule is a non-empty string")
        self.source = source
        self._prefix = prefix
        self._literal: "Optional[str]" = None
        self._pattern: "Optional[Pattern]" = None
        if source.startswith("_") and len(source) > 1:
            self._pattern = Pattern(asterisk_to_regex(source))
        elif source.startswith("^"):
            self._pattern = Pattern(source)
        else:
            self._literal = source

    def __call__(self, value: str) -> bool:
        if self._pattern is not None:
            return self._pattern(value)
        literal = self._literal or ""
        return value.startswith(literal) if self._prefix else value == literal


def compile_rules(sources: "Optional[Sequence[str]]", prefix: bool) -> "Optional[List[Rule]]":
    """``None`` (no restriction) stays ``None``; ValueError names a bad rule."""
    if sources is None:
        return None
    if not isinstance(sources, list):
        raise ValueError("must be a list of rules")
    return [Rule(source, prefix) for source in sources]


class Policy:
    """``allowed_from``, ``allowed_to`` and ``denied_to``, compiled."""

    __slots__ = ("allowed_from", "allowed_to", "denied_to")

    def __init__(self, allowed_from: "Optional[Sequence[str]]" = None, allowed_to: "Optional[Sequence[str]]" = None,
                 denied_to: "Optional[Sequence[str]]" = None) -> None:
        self.allowed_from = compile_rules(allowed_from, prefix=False)
        self.allowed_to = compile_rules(allowed_to, prefix=True)
        self.denied_to = compile_rules(denied_to, prefix=True)

    def check(self, from_: str, to: str, owner: str) -> None:
        """Raise :class:`Forbidden` unless this policy lets ``from_`` call ``to``."""
        if self.allowed_from is not None and not any(rule(from_) for rule in self.allowed_from):
            raise Forbidden("Extension not allowed", "%s: from %s is not in allowed_from" % (owner, from_))
        if self.allowed_to is not None and not any(rule(to) for rule in self.allowed_to):
            raise Forbidden("Destination not allowed", "%s: to %s is not in allowed_to" % (owner, to))
        for rule in self.denied_to or ():
            if rule(to):
                raise Forbidden("Destination not allowed", "%s: to %s matches denied_to %r"
                                % (owner, to, rule.source))


class AddressList:
    """``allowed_ips``: networks in CIDR form, IPv4 and IPv6.  Imports ``ipaddress`` only when used."""

    __slots__ = ("networks",)

    def __init__(self, sources: "Sequence[str]") -> None:
        import ipaddress

        if not isinstance(sources, list) or not all(isinstance(source, str) for source in sources):
            raise ValueError("must be a list of networks such as \"192.0.2.0/24\"")
        self.networks = [ipaddress.ip_network(source, strict=False) for source in sources]

    def allows(self, address: "Optional[str]") -> bool:
        import ipaddress

        try:
            ip = ipaddress.ip_address((address or "").split("%")[0])
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped  # ::ffff:192.0.2.1 from a dual-stack socket is 192.0.2.1
        return any(ip.version == net.version and ip in net for net in self.networks)

    def check(self, address: "Optional[str]") -> None:
        if not self.allows(address):
            raise Forbidden("Address not allowed", "client %s is not in allowed_ips" % address)
