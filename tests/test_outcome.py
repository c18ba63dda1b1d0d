"""The call's outcome, from a real Asterisk (pbxsim) running pbxcall's own dialplan.

Every agent behaviour (answers, never answers, busy) and every customer behaviour
(answers, busy, never answers, congestion, a number with no route) through pbxcall's
entry points; the outcome file Asterisk wrote, as call_status.php reports it.  As in
tests/test_asterisk.py the scenarios run at once, each reported as its own test.
Without pbxsim these tests fail under CI=true and are skipped elsewhere.
"""

import os

import pytest

from pbxcall import outcome
from pbxcall.check import outcome_finding

import pbxsim
from calls import CALLS, EXPECTED, Client, archived, call_rows, number, run_scenarios, wait_for

pbxsim.require()
pytestmark = pytest.mark.asterisk

#: the agent talks 8 s, the outbound route lets the customer ring 3 s: a customer who
#: never answers ends as NOANSWER, long before the agent would hang up (CANCEL)
GLOBALS = {"AGENT_TALK": 8, "DIAL_TIMEOUT": 3}
TABLE = []  # (behaviour, outcome) rows, printed at the end: the closing note's table


def behaviour(name):
    def scenario(pbx):
        agent, to = CALLS[name][0], CALLS[name][1]()
        client = Client(pbx, "wsgi" if agent % 2 else "cgi", outcome=True, max_retries=0, wait_time=3)
        made = client.call("from=%d&to=%s&external_id=oc-%s" % (agent, to, agent))
        _, final = client.follow(made["filename"])
        got = final["outcome"]
        TABLE.append((name, got))
        want_agent, want_customer, want_status, talked = EXPECTED[name]
        assert (got["agent"], got["customer"], got["dial_status"]) == (want_agent, want_customer, want_status), got
        assert (got["talk_seconds"] > 0) == talked and got["ended_at"] and got["linkedid"], got
        assert got["hangup_cause"] is not None, got
        rows = call_rows(pbx, agent, to)
        assert got["linkedid"] == rows["agent_leg"]["linkedid"], (got, rows)
        leg = rows["agent_leg"]
        # the detour through pbxcall-outcome leaves the CDR as it was
        assert (leg["dcontext"], leg["userfield"], leg["accountcode"]) == ("from-internal", "oc-%s" % agent,
                                                                            str(agent)), leg
        if want_agent == "answered":
            assert leg["dst"] == to and got["agent_answered_at"], (leg, got)
            assert final["state"] == "completed"
        else:
            assert got["agent_answered_at"] is None and final["state"] == "expired", final
        if talked:
            customer = [row for row in rows["rows"] if row["dcontext"] == "pstn-sim"][0]
            assert abs(got["talk_seconds"] - customer["billsec"]) <= 1, (got, customer)
            assert got["customer_answered_at"] <= got["ended_at"]
    return scenario


SCENARIOS = {name: behaviour(name) for name in EXPECTED}


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


@scenario
def live_while_the_call_is_on(pbx):
    """Before the end: the agent answered (with the time), the customer not yet known."""
    client = Client(pbx, "wsgi", outcome=True)
    made = client.call("from=131&to=%s" % number(9))
    _, during = client.follow(made["filename"], until=("dialing",))
    live = wait_for("the agent to answer", lambda: client.status(made["filename"])[1]["outcome"]["agent"])
    assert live == "answered"
    answer = client.status(made["filename"])[1]["outcome"]
    assert answer["agent_answered_at"] and answer["customer"] is None and answer["ended_at"] is None, answer
    _, final = client.follow(made["filename"])
    assert final["outcome"]["customer"] == "answered"


@scenario
def retried_agent_reports_the_last_attempt(pbx):
    client = Client(pbx, "wsgi", outcome=True, max_retries=1, retry_time=3, wait_time=2)
    made = client.call("from=231&to=%s" % number(0))
    _, final = client.follow(made["filename"])
    assert final["attempts"] == 2 and final["outcome"]["agent"] == "no_answer", final
    text = open(os.path.join(pbx.state, "outcome", made["filename"])).read()
    assert text.count("\nended ") == 2, text


@scenario
def without_outcome_the_call_is_as_before_and_the_outcome_unknown(pbx):
    client = Client(pbx, "cgi")
    made = client.call("from=132&to=%s" % number(1))
    assert "Context: from-internal\n" in archived_when_done(client, pbx, made["filename"])
    final = client.status(made["filename"])[1]
    assert final["state"] == "completed"
    assert final["outcome"] == dict(outcome.empty("unknown")), final


def archived_when_done(client, pbx, name):
    client.follow(name)
    return archived(pbx, name)


@pytest.fixture(scope="module")
def pbx():
    with pbxsim.running("pbxcall-outcome-", GLOBALS, custom_dialplan=outcome.DIALPLAN) as instance:
        yield instance


@pytest.fixture(scope="module")
def results(pbx):
    found = run_scenarios(SCENARIOS, pbx)
    for name, got in sorted(TABLE, key=lambda row: row[0]):
        print("%-28s agent=%-9s customer=%-10s dial_status=%-10s talk=%-3s cause=%s" % (
            name, got["agent"], got["customer"], got["dial_status"], got["talk_seconds"], got["hangup_cause"]))
    return found


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_outcome_on_asterisk(results, name):
    results[name].result()


def test_asterisk_logged_no_warning_or_error(results, pbx):
    assert [line for line in pbx.log().splitlines() if "WARNING[" in line or "ERROR[" in line] == []


def test_check_sees_the_dialplan_loaded(pbx, results):
    assert outcome_finding(pbxsim.LAUNCHER + ["cli", pbx.dir]) == []


def test_check_says_what_is_missing_without_the_dialplan(tmp_path):
    bare = pbxsim.Pbx(os.path.join(str(tmp_path), "bare"))
    try:
        [(kind, text)] = outcome_finding(pbxsim.LAUNCHER + ["cli", bare.dir])
    finally:
        bare.stop()
    assert kind == "problem" and "has not loaded the context [pbxcall-outcome]" in text
    assert "pbxcall dialplan >> /etc/asterisk/extensions_custom.conf" in text
