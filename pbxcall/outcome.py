"""What became of a call, as Asterisk itself reports it.  Pure: text in, facts out.

With ``outcome`` on, each call file sends the answered agent through the small
dialplan context below (``python3 -m pbxcall dialplan`` prints it; the admin adds it
to ``extensions_custom.conf``) and pushes a hangup handler onto the agent's Local
channel.  Asterisk appends one line to ``<state_path>/outcome/<filename>`` (made by
pbxcall, ``queued <epoch>``, before the call file reaches the spool) at each step:

    answered <epoch> <agent answer time>           the agent picked up: Dial follows
    ended dialstatus=ANSWER answeredtime=3 cause=16 disposition=ANSWERED
          linkedid=1796052065.26 end=1796052069     the attempt is over (one line)

Why this way, measured on a real Asterisk (pbxsim, tests/test_outcome.py): the
``Goto`` keeps every CDR row as it was (``dcontext`` and ``dst`` are the outbound
route's), the hangup handler runs also when the agent never answers (``DIALSTATUS``
empty, ``HANGUPCAUSE`` 19, disposition ``NO ANSWER`` or ``BUSY``), and ``DIALSTATUS``
is Dial's own result.  ``CDR(answer)`` read in the hangup handler is not the agent's
answer once Dial returned to the dialplan (busy, no answer, congestion start a second
CDR row), hence the ``answered`` line written at that very moment.  Only values
Asterisk produces reach the file; the path is pbxcall's own (``state_path`` must be
plain characters, :func:`pbxcall.settings`).
"""

from .callfile import OUTCOME_CONTEXT as CONTEXT
from .callfile import OUTCOME_HANDLER as HANDLER

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Any, Dict, Optional
DIALPLAN = """\
; pbxcall: the outcome of each call pbxcall places (setting "outcome": true).
; Append to /etc/asterisk/extensions_custom.conf, then: asterisk -rx "dialplan reload"
[%(context)s]
; The agent answered: note the moment, then dial the customer in the call's own
; context (PBXCALL_CONTEXT, the outgoing_context setting), as without pbxcall-outcome.
exten => _[0-9+*#].,1,Set(FILE(${PBXCALL_OUTCOME},,,al)=answered ${EPOCH} ${CDR(answer,u)})
 same => n,Goto(${PBXCALL_CONTEXT},${EXTEN},1)
; The agent's Local channel hangs up: Dial's own result, once per attempt.
exten => %(handler)s,1,Set(FILE(${PBXCALL_OUTCOME},,,al)=%(ended)s)
 same => n,Return()
""" % {"context": CONTEXT, "handler": HANDLER,
       "ended": "ended dialstatus=${DIALSTATUS} answeredtime=${ANSWEREDTIME} cause=${HANGUPCAUSE} "
                "disposition=${FILTER(A-Z,${CDR(disposition)})} linkedid=${CHANNEL(linkedid)} end=${EPOCH}"}

CUSTOMER = {"ANSWER": "answered", "BUSY": "busy", "NOANSWER": "no_answer", "CANCEL": "no_answer",
            "CONGESTION": "congestion", "CHANUNAVAIL": "failed"}
FIELDS = ("agent", "customer", "dial_status", "agent_answered_at", "customer_answered_at", "ended_at",
          "talk_seconds", "hangup_cause", "linkedid")


def empty(value: "Optional[str]" = None) -> "Dict[str, Any]":
    """The outcome object with every field null; ``value`` for agent and customer."""
    result: "Dict[str, Any]" = dict.fromkeys(FIELDS)
    result["agent"] = result["customer"] = value
    return result


def _number(text: str) -> "Optional[float]":
    try:
        return float(text)
    except ValueError:
        return None


def parse(text: str) -> "Optional[Dict[str, Any]]":
    """The last attempt's outcome from an outcome file, or None before any attempt.

    While the attempt is on, the agent is ``answered`` (with the time) or null and the
    customer null; once it ended, every field that Asterisk reported.  Times are epoch
    seconds (the caller formats them); a line torn by a crash, or anything but the two
    shapes above, is skipped.
    """
    answered: "Optional[float]" = None
    result: "Optional[Dict[str, Any]]" = None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "answered" and len(words) >= 2:
            answered = _number(words[-1]) or _number(words[1])
            result = empty()
            result.update(agent="answered", agent_answered_at=answered)
        elif words[0] == "ended":
            facts = dict(word.partition("=")[::2] for word in words[1:] if "=" in word)
            if "end" not in facts:
                continue  # torn
            result = _attempt(facts, answered)
            answered = None
    return result


def finished(result: "Optional[Dict[str, Any]]") -> bool:
    """Whether ``result`` (from :func:`parse`) is an attempt that ended."""
    return result is not None and result["ended_at"] is not None


def _attempt(facts: "Dict[str, str]", answered: "Optional[float]") -> "Dict[str, Any]":
    status = facts.get("dialstatus", "")
    ended = _number(facts.get("end", ""))
    cause = facts.get("cause", "")
    result = empty()
    result.update(dial_status=status or None, ended_at=ended, linkedid=facts.get("linkedid") or None,
                  hangup_cause=int(cause) if cause.isdigit() else None)
    if answered is None:  # the originate failed: the agent never answered
        disposition = facts.get("disposition", "")
        result["agent"] = ("busy" if disposition == "BUSY" or cause == "17" else
                           "no_answer" if disposition == "NOANSWER" or cause == "19" else "failed")
        result["customer"] = "not_dialed"
        result["talk_seconds"] = 0
        return result
    result.update(agent="answered", agent_answered_at=answered, customer=CUSTOMER.get(status, "not_dialed"))
    talk = facts.get("answeredtime", "")
    result["talk_seconds"] = int(talk) if status == "ANSWER" and talk.isdigit() else 0
    if status == "ANSWER" and ended is not None:
        result["customer_answered_at"] = ended - result["talk_seconds"]
    return result
