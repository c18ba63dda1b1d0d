"""What a call file says about its call.  Pure: text and file times in, state out.

Asterisk's ``pbx_spool.c`` records a call's life in the file itself:

- ``StartRetry: <pid> <n> (<time>)`` appended (after a blank line) each time it
  starts an attempt, with the mtime moved to the next retry; ``EndRetry``,
  ``AbortRetry`` and ``DelayedRetry`` lines likewise;
- when the call is over, with ``Archive: yes``, the file is renamed to
  ``outgoing_done/<same name>`` and ``Status: Completed`` (the agent answered),
  ``Status: Expired`` (no answer within the retries) or ``Status: Failed`` (the
  file could not be read or parsed) appended.

pbxcall adds one place of its own: ``<state_path>/cancelled/`` for cancelled calls.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CGI process ~1.5 ms; annotations are strings
    from typing import Optional

OUTGOING, DONE, CANCELLED = "outgoing", "outgoing_done", "cancelled"
STATUS_STATES = {"Completed": "completed", "Expired": "expired", "Failed": "failed"}
FINISHED = ("completed", "expired", "failed")
NOT_STARTED = ("scheduled", "queued")

class CallFacts:
    """The call's fields as written by pbxcall, and what Asterisk appended."""

    __slots__ = ("from_", "to", "external_id", "attempts", "status")

    def __init__(self, from_: "Optional[str]", to: "Optional[str]", external_id: "Optional[str]", attempts: int,
                 status: "Optional[str]") -> None:
        self.from_ = from_
        self.to = to
        self.external_id = external_id
        self.attempts = attempts
        self.status = status


def read(text: str) -> "CallFacts":
    """The facts in a call file (the keywords pbxcall writes and Asterisk appends)."""
    from_ = to = external_id = status = None
    attempts = 0
    for line in text.splitlines():
        keyword, _, value = line.partition(":")
        keyword, value = keyword.strip(), value.strip()
        if keyword == "Channel" and value.startswith("Local/") and "@" in value:
            from_ = value[len("Local/"):].partition("@")[0]
        elif keyword == "Extension":
            to = value
        elif keyword == "Set" and value.startswith("__PBXCALL_EXTERNAL_ID="):
            external_id = value.partition("=")[2]
        elif keyword == "StartRetry":
            attempts += 1
        elif keyword == "Status":
            status = value
    return CallFacts(from_, to, external_id, attempts, status)


def state(where: str, facts: "CallFacts", mtime: float, now: float) -> str:
    """One of scheduled, queued, dialing, completed, expired, failed, cancelled."""
    if where == CANCELLED:
        return "cancelled"
    if where == DONE:
        return STATUS_STATES.get(facts.status or "", "failed")
    if facts.attempts:
        return "dialing"
    return "scheduled" if mtime > now else "queued"
