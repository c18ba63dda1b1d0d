"""Render an Asterisk call file.  Pure: values in, text out.

The lines and why each is there (SPEC §4, checked against ``pbx/pbx_spool.c``)::

    Channel: Local/101@from-internal      ring the agent first
    CallerID: "89998887766" <101>         number MUST be the extension (AMPUSER)
    Account: 101                          accountcode: the CRM reads the initiator
    Context: from-internal                where the answered agent is sent ...
    Extension: 89998887766                ... to dial the customer
    Priority: 1
    MaxRetries: 2                         0 means one attempt
    RetryTime: 60
    WaitTime: 30
    Set: CDR(userfield)=crm-2345          only with external_id ("UserField:" does nothing)
    Set: __PBXCALL_EXTERNAL_ID=crm-2345   inherited by every leg, for dialplan and AGI
    Archive: yes                          only when ``archive`` is on

With ``outcome`` on, ``Context: pbxcall-outcome`` and three more ``Set:`` lines
(``PBXCALL_CONTEXT``, ``PBXCALL_OUTCOME``, the hangup handler): see pbxcall.outcome.

``pbx_spool.c`` reads the file line by line: ``;`` ends a line anywhere, ``#``
after white space starts a comment, a line of 1024 bytes or more is dropped, and
there is no escaping.  ``Set:`` values are not trimmed, so no spaces around ``=``.
:func:`render` refuses any text that would trip one of these, whatever the
settings and patterns let through.
"""

from .errors import BadRequest

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Optional

PLACEHOLDERS = ("{from}", "{to}", "{external_id}")
#: pbxcall.outcome's dialplan context and hangup handler (kept here: a CGI request
#: renders a call file without importing pbxcall.outcome)
OUTCOME_CONTEXT = "pbxcall-outcome"
OUTCOME_HANDLER = "hangup"
MAX_LINE = 1023  # bytes before the newline; pbx_spool.c drops longer lines

class Call:
    """One validated request: the agent's extension, the number, the CRM id."""

    __slots__ = ("from_", "to", "external_id")

    def __init__(self, from_: str, to: str, external_id: "Optional[str]") -> None:
        self.from_ = from_
        self.to = to
        self.external_id = external_id

    def __repr__(self) -> str:
        return "Call(%r, %r, %r)" % (self.from_, self.to, self.external_id)


def template_problem(template: str) -> "Optional[str]":
    """Why ``template`` cannot be used for a call-file value, or ``None``."""
    rest = template
    for name in PLACEHOLDERS:
        rest = rest.replace(name, "")
    if "{" in rest or "}" in rest:
        return "only the placeholders %s are allowed" % ", ".join(PLACEHOLDERS)
    return line_problem(template)


def line_problem(text: str) -> "Optional[str]":
    """Why ``text`` would not survive as (part of) one call-file line, or ``None``."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return "control characters end or corrupt the line"
    if ";" in text:
        return "';' starts a comment in a call file"
    if " #" in text or text.startswith("#"):
        return "'#' after white space starts a comment in a call file"
    if len(text.encode("utf-8")) > MAX_LINE:
        return "Asterisk drops call-file lines of 1024 bytes or more"
    return None


def expand(template: str, call: "Call") -> str:
    """Fill ``{from}``, ``{to}`` and ``{external_id}`` (empty when absent)."""
    return (
        template.replace("{from}", call.from_)
        .replace("{to}", call.to)
        .replace("{external_id}", call.external_id or "")
    )


def render(
    call: "Call",
    context: str = "from-internal",
    channel_context: "Optional[str]" = None,
    caller_id: str = '"{to}" <{from}>',
    account: str = "{from}",
    max_retries: int = 2,
    retry_time: int = 60,
    wait_time: int = 30,
    archive: bool = False,
    outcome_path: "Optional[str]" = None,
) -> str:
    """The call file's text, or :class:`BadRequest` if a value would break a line.

    An empty ``caller_id`` or ``account`` template leaves its line out.  With
    ``outcome_path`` the answered agent goes through pbxcall's dialplan context
    (:mod:`pbxcall.outcome`), which notes the answer there and then dials in
    ``context``; a hangup handler notes how the attempt ended.
    """
    fields = [
        ("Channel", "Local/%s@%s" % (call.from_, channel_context or context)),
        ("CallerID", expand(caller_id, call)),
        ("Account", expand(account, call)),
        ("Context", OUTCOME_CONTEXT if outcome_path else context),
        ("Extension", call.to),
        ("Priority", "1"),
        ("MaxRetries", str(max_retries)),
        ("RetryTime", str(retry_time)),
        ("WaitTime", str(wait_time)),
    ]
    if call.external_id is not None:
        fields.append(("Set", "CDR(userfield)=" + call.external_id))
        fields.append(("Set", "__PBXCALL_EXTERNAL_ID=" + call.external_id))
    if outcome_path:
        fields.append(("Set", "PBXCALL_CONTEXT=" + context))
        fields.append(("Set", "PBXCALL_OUTCOME=" + outcome_path))
        fields.append(("Set", "CHANNEL(hangup_handler_push)=%s,%s,1" % (OUTCOME_CONTEXT, OUTCOME_HANDLER)))
    if archive:
        fields.append(("Archive", "yes"))
    lines = []
    for keyword, value in fields:
        if not value and keyword in ("CallerID", "Account"):
            continue
        line = "%s: %s" % (keyword, value)
        problem = line_problem(line)
        if problem is not None:
            raise BadRequest("Value not allowed in a call file", "%s: %s" % (keyword, problem))
        lines.append(line + "\n")
    return "".join(lines)

