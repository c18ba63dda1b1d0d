"""Calls on a real Asterisk (pbxsim) through pbxcall's real entry points, for the
Asterisk tests: a client per scenario, unique numbers, and what Asterisk left behind
(archive, CDR rows, log lines)."""

import calendar
import io
import itertools
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from pbxcall.app import make_app
from pbxcall.settings import Settings

from conftest import SEED_KEY
from helpers import SYSTEM_PYTHON, cgi_environ, keep, run_cgi

#: what each behaviour must give: (agent, customer, dial_status, talk_seconds > 0)
EXPECTED = {
    "customer_answers": ("answered", "answered", "ANSWER", True),
    "customer_busy": ("answered", "busy", "BUSY", False),
    "customer_never_answers": ("answered", "no_answer", "NOANSWER", False),
    "customer_congested": ("answered", "congestion", "CONGESTION", False),
    "customer_answers_and_waits": ("answered", "answered", "ANSWER", True),
    "no_route_for_the_number": ("answered", "not_dialed", None, False),
    "agent_never_answers": ("no_answer", "not_dialed", None, False),
    "agent_busy": ("busy", "not_dialed", None, False),
}
#: behaviour -> (agent extension, the customer's number)
CALLS = {
    "customer_answers": (121, lambda: number(0)), "customer_busy": (122, lambda: number(5)),
    "customer_never_answers": (123, lambda: number(6)), "customer_congested": (124, lambda: number(7)),
    "customer_answers_and_waits": (125, lambda: number(8)), "no_route_for_the_number": (126, lambda: "4000"),
    "agent_never_answers": (221, lambda: number(0)), "agent_busy": (321, lambda: number(0)),
}
TIMEOUT = 60  # seconds any one scenario may wait for Asterisk
FINISHED = ("completed", "expired", "failed", "cancelled")
_serial = itertools.count(1)
_serial_lock = threading.Lock()


def number(last_digit, plus=False):
    """A number no other call of the run dials; its last digit picks pbxsim's customer."""
    with _serial_lock:
        serial = next(_serial)
    return "%s8997%06d%d" % ("+" if plus else "", serial, last_digit)


def wait_for(what, probe, timeout=TIMEOUT, step=0.15):
    """Poll ``probe`` until it returns something true; that value."""
    deadline = time.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(step)


class Client:
    """pbxcall for one scenario: its own settings file on the shared spool, reached
    through the CGI script (``via="cgi"``) or the WSGI app (``via="wsgi"``)."""

    def __init__(self, pbx, via, **settings):
        self.pbx = pbx
        self.via = via
        data = {"api_key": SEED_KEY, "outgoing_path": pbx.outgoing, "outgoing_temp_path": pbx.staging,
                "file_owner": pbx.file_owner,
                "rate_limit": None, "dedupe_seconds": 0}
        data.update(settings)
        self.config = os.path.join(os.path.dirname(pbx.dir), "settings-%s.json" % os.urandom(4).hex())
        with open(self.config, "w") as stream:
            json.dump(data, stream)
        self.settings = Settings.from_file(self.config)
        self.log = io.StringIO()

    def request(self, endpoint, query, method="GET"):
        """-> (status, JSON answer)"""
        if self.via == "cgi":
            env = cgi_environ(query, method, config=self.config, SCRIPT_NAME="/api/" + endpoint)
            status, _, body, _ = run_cgi(SYSTEM_PYTHON, env)
            return status, json.loads(body.decode())
        from webtest import TestApp

        app = TestApp(make_app(self.settings, self.log), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        response = app.request("/api/%s?%s" % (endpoint, query), method=method, expect_errors=True,
                               headers={"Authorization": "Bearer " + SEED_KEY})
        keep("wsgi-responses", response.body)
        return response.status_int, response.json

    def call(self, query):
        status, answer = self.request("make_call.php", query)
        assert status == 200, answer
        return answer

    def status(self, filename):
        return self.request("call_status.php", "filename=" + filename)

    def cancel(self, filename):
        return self.request("cancel_call.php", "filename=" + filename, method="POST")

    def follow(self, filename, until=FINISHED):
        """Poll call_status.php until the state is one of ``until`` -> (states seen in
        order, without repeats; the last answer)."""
        seen = []
        last = {}

        def probe():
            status, answer = self.status(filename)
            assert status == 200, answer
            last.update(answer)
            if not seen or seen[-1] != answer["state"]:
                seen.append(answer["state"])
            return answer["state"] in until
        wait_for("%s to reach %s" % (filename, "/".join(until)), probe)
        return seen, last


def archived(pbx, filename):
    with open(os.path.join(pbx.done, filename)) as stream:
        return stream.read()


def call_rows(pbx, agent, to):
    """The call's CDR rows, once the ``;1`` row of the agent's Local channel is written:
    {"agent_leg": the ;1 row that dialled the customer (else the ;1 row of the
    unanswered originate, whose dst is the agent), "rows": every row with its linkedid}.
    Each scenario rings agents of its own, so the channel names the scenario."""
    def probe():
        rows = pbx.cdr()
        first = [row for row in rows if row["channel"].startswith("Local/%s@" % agent)
                 and row["channel"].endswith(";1") and row["dst"] in (to, str(agent))]
        if not first:
            return None
        leg = ([row for row in first if row["dstchannel"]] or first)[0]
        return {"agent_leg": leg, "rows": [row for row in rows if row["linkedid"] == leg["linkedid"]]}
    return wait_for("the CDR rows of the call from %s to %s" % (agent, to), probe)


def attempts_in_log(pbx, agent, to):
    """Epoch times of Asterisk's 'Attempting call on Local/<agent>@... for <to>@...' lines."""
    return [stamp for stamp, _ in pbx.log_lines("Attempting call on Local/%s@" % agent, " for %s@" % to)]




def iso_epoch(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def run_scenarios(scenarios, pbx):
    """Every scenario (name -> function of pbx) at once -> {name: finished Future}.

    Calls take seconds of real time; run together, the lot takes as long as the longest.
    """
    started = time.time()
    with ThreadPoolExecutor(len(scenarios)) as pool:
        futures = {name: pool.submit(func, pbx) for name, func in scenarios.items()}
    print("asterisk scenarios: %d in %.1f s" % (len(futures), time.time() - started))
    return futures
