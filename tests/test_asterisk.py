"""pbxcall against a real Asterisk (pbxsim): every kind of call file, every state.

Each scenario below is one whole test: it places calls through pbxcall's real
entry points (the CGI script as Apache runs it, or the WSGI app), watches the
running Asterisk (its archive, CDR rows, log and channels) and asserts.  Calls
take seconds of real time, so the scenarios run at once, each in its own thread,
against one Asterisk per module; each is reported as its own test.  Every call
dials a number of its own (the last digit picks pbxsim's customer), so log lines
and CDR rows are told apart by number.

Without pbxsim these tests fail under CI=true and are skipped elsewhere.
"""

import os
import time

import pytest

import pbxsim
from calls import Client, archived, attempts_in_log, call_rows, iso_epoch, number, run_scenarios, wait_for

pbxsim.require()
pytestmark = pytest.mark.asterisk

#: seconds an agent talks before hanging up, and a customer may ring (pbxsim: 60 and 30)
GLOBALS = {"AGENT_TALK": 4, "DIAL_TIMEOUT": 4}
SCENARIOS = {}


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


# -- the scenarios -----------------------------------------------------------------

@scenario
def seed_request_completes_with_the_crm_id_in_the_cdr(pbx):
    client = Client(pbx, "cgi")  # the defaults: MaxRetries 2, RetryTime 60, WaitTime 30
    made = client.call("from=101&to=89998887766&external_id=crm-2345")
    states, final = client.follow(made["filename"])
    assert final["state"] == "completed" and final["attempts"] == 1, final
    text = archived(pbx, made["filename"])
    assert text.rstrip("\n").endswith("Status: Completed"), text
    assert text.count("StartRetry:") == 1, text
    rows = call_rows(pbx, 101, "89998887766")
    leg = rows["agent_leg"]
    assert (leg["userfield"], leg["accountcode"], leg["dst"], leg["src"]) == ("crm-2345", "101", "89998887766", "101")
    assert leg["channel"].startswith("Local/101@from-internal-") and leg["dstchannel"].startswith(
        "Local/89998887766@pstn-sim-"), leg
    assert leg["disposition"] == "NO ANSWER", leg  # pbxsim's rule 6: the customer never answers
    # updated_at is when Asterisk archived the file: the end of the call
    end = pbxsim.local_epoch(leg["end"])
    assert abs(iso_epoch(final["updated_at"]) - end) <= 2, (final, leg)
    assert final["scheduled_at"] is None


@scenario
def no_external_id_no_set_lines_and_an_empty_userfield(pbx):
    client = Client(pbx, "wsgi")
    to = number(0)
    made = client.call("from=102&to=" + to)
    assert made["external_id"] is None
    _, final = client.follow(made["filename"])
    assert final["state"] == "completed" and final["external_id"] is None, final
    text = archived(pbx, made["filename"])
    assert "Set:" not in text, text
    rows = call_rows(pbx, 102, to)
    assert rows["agent_leg"]["userfield"] == "" and rows["agent_leg"]["disposition"] == "ANSWERED", rows
    assert not any(row["userfield"] for row in rows["rows"]), rows


@scenario
def plus_number_is_dialled_with_its_plus(pbx):
    client = Client(pbx, "wsgi")
    to = number(1, plus=True)
    made = client.call("from=103&to=%%2B%s&external_id=plus-1" % to[1:])
    assert made["to"] == to
    _, final = client.follow(made["filename"])
    assert final["state"] == "completed", final
    rows = call_rows(pbx, 103, to)
    assert rows["agent_leg"]["dst"] == to and rows["agent_leg"]["userfield"] == "plus-1", rows
    customer = [row for row in rows["rows"] if row["dcontext"] == "pstn-sim"]
    assert [row["dst"] for row in customer] == [to[1:]] and customer[0]["disposition"] == "ANSWERED", rows


@scenario
def originate_skipvm_channel_context(pbx):
    client = Client(pbx, "wsgi", channel_context="originate-skipvm")
    to = number(2)
    made = client.call("from=104&to=%s&external_id=skipvm-1" % to)
    _, final = client.follow(made["filename"])
    assert final["state"] == "completed", final
    assert "Channel: Local/104@originate-skipvm\n" in archived(pbx, made["filename"])
    leg = call_rows(pbx, 104, to)["agent_leg"]
    assert leg["channel"].startswith("Local/104@originate-skipvm-"), leg
    assert (leg["dcontext"], leg["userfield"], leg["disposition"]) == ("from-internal", "skipvm-1", "ANSWERED")


@scenario
def caller_id_template_reaches_the_channel(pbx):
    client = Client(pbx, "wsgi", caller_id='"CRM {external_id} {to}" <{from}>')
    to = number(3)
    made = client.call("from=105&to=%s&external_id=cid-7" % to)
    client.follow(made["filename"])
    expected = '"CRM cid-7 %s" <105>' % to
    assert call_rows(pbx, 105, to)["agent_leg"]["clid"] == expected
    outbound = pbx.log_lines("OUTBOUND chan=Local/105@", "exten=%s " % to)
    assert len(outbound) == 1 and "cid=%s " % expected in outbound[0][1], outbound


@scenario
def archive_off_leaves_no_file_and_status_is_404(pbx):
    client = Client(pbx, "cgi", archive=False)
    to = number(4)
    made = client.call("from=106&to=%s&external_id=noarchive-1" % to)
    rows = call_rows(pbx, 106, to)  # the call really happened
    assert rows["agent_leg"]["userfield"] == "noarchive-1"
    name = made["filename"]
    wait_for("Asterisk to delete the call file", lambda: not os.path.exists(os.path.join(pbx.outgoing, name)))
    assert not os.path.exists(os.path.join(pbx.done, name))
    status, answer = client.status(name)
    assert (status, answer["code"]) == (404, "unknown_call"), answer


@scenario
def retries_honoured_for_an_agent_who_never_answers(pbx):
    # WaitTime 2 and RetryTime 5: with Asterisk's defaults (45 and 300) or the old PHP's
    # (30 and 60) the first attempt alone would outlast the scenario's timeout.
    client = Client(pbx, "wsgi", max_retries=1, retry_time=5, wait_time=2)
    to = number(0)
    made = client.call("from=201&to=%s&external_id=retry-1" % to)
    states, final = client.follow(made["filename"])
    assert final["state"] == "expired" and final["attempts"] == 2, final
    assert states[-2:] == ["dialing", "expired"], states
    tried = attempts_in_log(pbx, 201, to)
    assert len(tried) == 2, tried
    assert 4 <= tried[1] - tried[0] <= 8, tried  # RetryTime 5 from the attempt's start, whole seconds
    failed = [stamp for stamp, line in pbx.log_lines("Remote end Ringing") if tried[0] < stamp < tried[1]]
    assert failed and 1.5 <= failed[0] - tried[0] <= 4, (tried, failed)  # WaitTime 2
    text = archived(pbx, made["filename"])
    assert text.count("StartRetry:") == 2 and text.rstrip("\n").endswith("Status: Expired"), text
    leg = call_rows(pbx, 201, to)["agent_leg"]
    assert leg["userfield"] == "retry-1" and leg["disposition"] in ("NO ANSWER", "FAILED"), leg


@scenario
def busy_agent_expires_after_one_attempt(pbx):
    client = Client(pbx, "wsgi", max_retries=0)
    to = number(0)
    made = client.call("from=301&to=%s&external_id=busy-1" % to)
    _, final = client.follow(made["filename"])
    assert (final["state"], final["attempts"]) == ("expired", 1), final
    assert len(attempts_in_log(pbx, 301, to)) == 1
    rows = call_rows(pbx, 301, to)
    assert rows["agent_leg"]["disposition"] == "BUSY" and not [
        row for row in rows["rows"] if row["dcontext"] == "pstn-sim"], rows  # the customer was never dialled


@scenario
def queued_while_asterisk_is_down_then_dialing_then_completed(pbx):
    # A second Asterisk, stopped while the call is placed: a due call that no Asterisk
    # has taken yet is 'queued'.  Started again, Asterisk finds it in the spool.
    other = pbxsim.Pbx(os.path.join(os.path.dirname(pbx.dir), "restarted"), GLOBALS)
    other.file_owner = pbx.file_owner
    try:
        other.stop()
        client = Client(other, "wsgi")
        made = client.call("from=107&to=%s&external_id=queued-1" % number(9))
        status, answer = client.status(made["filename"])
        assert (status, answer["state"], answer["attempts"]) == (200, "queued", 0), answer
        # due since it was written (mtime); changed last when renamed into outgoing/ (ctime)
        assert 0 <= iso_epoch(answer["updated_at"]) - iso_epoch(answer["scheduled_at"]) <= 1, answer
        other.start(keep=True)
        # 'queued' was seen above; Asterisk may take the file before the first poll
        states, final = client.follow(made["filename"])
        assert states in (["queued", "dialing", "completed"], ["dialing", "completed"]), states
        assert final["attempts"] == 1, final
    finally:
        other.stop()


@scenario
def delay_is_not_placed_before_its_time(pbx):
    client = Client(pbx, "cgi")
    to = number(0)
    made = client.call("from=108&to=%s&external_id=delay-3&delay=3" % to)
    due = iso_epoch(made["scheduled_at"])
    status, answer = client.status(made["filename"])
    assert (answer["state"], answer["scheduled_at"]) == ("scheduled", made["scheduled_at"]), answer
    states, final = client.follow(made["filename"])
    assert states[0] == "scheduled" and final["state"] == "completed", states
    tried = attempts_in_log(pbx, 108, to)
    assert len(tried) == 1 and due <= tried[0] < due + 3, (made, tried)
    start = pbxsim.local_epoch(call_rows(pbx, 108, to)["agent_leg"]["start"])
    assert due <= start < due + 3, (made, start)


@scenario
def cancelled_before_its_time_is_never_placed(pbx):
    client = Client(pbx, "cgi")
    to = number(0)
    made = client.call("from=109&to=%s&external_id=cancel-1&delay=3" % to)
    status, answer = client.cancel(made["filename"])
    assert (status, answer["state"]) == (200, "cancelled"), answer
    time.sleep(iso_epoch(made["scheduled_at"]) + 3 - time.time())  # well past its time
    assert attempts_in_log(pbx, 109, to) == []
    assert not [row for row in pbx.cdr() if row["dst"] == to]
    assert client.status(made["filename"])[1]["state"] == "cancelled"


@scenario
def cancel_while_dialing_is_409_already_started(pbx):
    client = Client(pbx, "wsgi")
    to = number(9)
    made = client.call("from=110&to=%s&external_id=cancel-2" % to)
    client.follow(made["filename"], until=("dialing",))
    status, answer = client.cancel(made["filename"])
    assert (status, answer["code"]) == (409, "already_started"), answer
    _, final = client.follow(made["filename"])
    assert final["state"] == "completed", final
    assert call_rows(pbx, 110, to)["agent_leg"]["disposition"] == "ANSWERED"


@scenario
def external_id_variable_is_inherited_by_the_customer_leg(pbx):
    client = Client(pbx, "wsgi")
    to = number(9)
    made = client.call("from=111&to=%s&external_id=inherit-1" % to)
    prefix = "Local/%s@pstn-sim-" % to
    channel = wait_for("the customer's channel", lambda: next(
        (name for name in pbx.channels() if name.startswith(prefix) and name.endswith(";2")), None), step=0.1)
    shown = pbx.cli("core show channel " + channel)
    assert "PBXCALL_EXTERNAL_ID=inherit-1" in shown.split(), shown
    client.follow(made["filename"])
    customer = [row for row in call_rows(pbx, 111, to)["rows"] if row["channel"] == channel]
    assert customer and customer[0]["userfield"] == "", customer  # CDR(userfield) stays on ;1


# -- running them ----------------------------------------------------------------

@pytest.fixture(scope="module")
def pbx():
    with pbxsim.running("pbxcall-asterisk-", GLOBALS) as instance:
        yield instance


@pytest.fixture(scope="module")
def outcomes(pbx):
    return run_scenarios(SCENARIOS, pbx)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_on_asterisk(outcomes, name):
    outcomes[name].result()  # the scenario's own assertion, with its traceback


def test_asterisk_logged_no_warning_or_error_for_any_call_file(outcomes, pbx):
    problems = [line for line in pbx.log().splitlines() if "WARNING[" in line or "ERROR[" in line]
    assert problems == []
    assert pbx.log_lines("pbx_spool.c: Attempting call on")  # the log is the one Asterisk wrote
