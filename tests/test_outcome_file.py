"""pbxcall.outcome: the outcome file's lines, read as the status answer reports them (pure)."""

import pytest

from pbxcall.callfile import Call, render
from pbxcall.errors import ConfigError
from pbxcall.outcome import empty, finished, parse
from pbxcall.settings import Settings

from helpers import spool_lines

ANSWERED = "answered 1796052094 1796052094.139336\n"


def ended(status="ANSWER", answered="3", cause="16", disposition="ANSWERED", end="1796052097"):
    return ("ended dialstatus=%s answeredtime=%s cause=%s disposition=%s linkedid=1796052093.52 end=%s\n"
            % (status, answered, cause, disposition, end))


@pytest.mark.parametrize("text, agent, customer, talk", [
    ("queued 1\n" + ANSWERED + ended(), "answered", "answered", 3),
    ("queued 1\n" + ANSWERED + ended("BUSY", ""), "answered", "busy", 0),
    ("queued 1\n" + ANSWERED + ended("NOANSWER", ""), "answered", "no_answer", 0),
    ("queued 1\n" + ANSWERED + ended("CANCEL", ""), "answered", "no_answer", 0),  # the agent hung up first
    ("queued 1\n" + ANSWERED + ended("CONGESTION", ""), "answered", "congestion", 0),
    ("queued 1\n" + ANSWERED + ended("CHANUNAVAIL", ""), "answered", "failed", 0),
    ("queued 1\n" + ANSWERED + ended("", ""), "answered", "not_dialed", 0),
    ("queued 1\n" + ended("", "", "19", "NOANSWER"), "no_answer", "not_dialed", 0),
    ("queued 1\n" + ended("", "", "0", "BUSY"), "busy", "not_dialed", 0),
    ("queued 1\n" + ended("", "", "17", "FAILED"), "busy", "not_dialed", 0),
    ("queued 1\n" + ended("", "", "34", "FAILED"), "failed", "not_dialed", 0),
])
def test_each_ending(text, agent, customer, talk):
    got = parse(text)
    assert (got["agent"], got["customer"], got["talk_seconds"]) == (agent, customer, talk)
    assert finished(got) and got["ended_at"] == 1796052097.0 and got["linkedid"] == "1796052093.52"
    if customer == "answered":
        assert got["customer_answered_at"] == 1796052094.0 and got["agent_answered_at"] == 1796052094.139336
    else:
        assert got["customer_answered_at"] is None


def test_before_during_and_across_attempts():
    assert parse("queued 1\n") is None and not finished(None)
    live = parse("queued 1\n" + ANSWERED)
    assert (live["agent"], live["customer"], live["ended_at"]) == ("answered", None, None) and not finished(live)
    retried = parse("queued 1\n" + ended("", "", "19", "NOANSWER", "100") + ANSWERED + ended())
    assert retried["agent"] == "answered" and retried["ended_at"] == 1796052097.0
    torn = parse("queued 1\n" + ANSWERED + "ended dialstatus=ANSWER answ")
    assert not finished(torn) and torn["agent"] == "answered"
    assert parse("garbage\n\nended\n") is None


def test_empty_is_every_field():
    assert empty("unknown") == {"agent": "unknown", "customer": "unknown", "dial_status": None,
                                "agent_answered_at": None, "customer_answered_at": None, "ended_at": None,
                                "talk_seconds": None, "hangup_cause": None, "linkedid": None}


def test_call_file_with_outcome_goes_through_pbxcalls_context():
    text = render(Call("101", "89998887766", "crm-2345"), context="from-internal", archive=True,
                  outcome_path="/var/spool/asterisk/pbxcall/outcome/call-0123456789abcdef")
    pairs = spool_lines(text)
    assert ("Context", "pbxcall-outcome") in pairs and ("Extension", "89998887766") in pairs
    assert pairs[-4:] == [("Set", "PBXCALL_CONTEXT=from-internal"),
                          ("Set", "PBXCALL_OUTCOME=/var/spool/asterisk/pbxcall/outcome/call-0123456789abcdef"),
                          ("Set", "CHANNEL(hangup_handler_push)=pbxcall-outcome,hangup,1"), ("Archive", "yes")]


def test_outcome_needs_a_plain_state_path():
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({"api_key": "k-0123456789", "outcome": True, "state_path": "/var/spool/a b"})
    assert "state_path must be of" in info.value.detail
    assert Settings.from_mapping({"api_key": "k-0123456789", "outcome": True}).outcome is True
