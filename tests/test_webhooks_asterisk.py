"""Webhooks from a real Asterisk (pbxsim) through the real sender process
(`python3 -m pbxcall notify`) to a real HTTP receiver on loopback: every agent and
customer behaviour gives the right events and outcome, and a sender SIGKILLed at
random moments during 100 calls loses nothing.  Without pbxsim these tests fail
under CI=true and are skipped elsewhere."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from pbxcall import outcome, webhook

import pbxsim
from calls import CALLS, EXPECTED, Client, number, wait_for
from helpers import ROOT
from receiver import Receiver

pbxsim.require()
pytestmark = pytest.mark.asterisk

SECRET = "whsec-asterisk-0123456789"
GLOBALS = {"AGENT_TALK": 8, "DIAL_TIMEOUT": 3}


@pytest.fixture(scope="module")
def pbx():
    with pbxsim.running("pbxcall-webhooks-", GLOBALS, custom_dialplan=outcome.DIALPLAN) as instance:
        yield instance


@pytest.fixture(scope="module")
def receiver():
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def client(pbx, receiver):
    return Client(pbx, "wsgi", outcome=True, max_retries=0, wait_time=3,
                  webhooks=[{"url": receiver.url, "secret": SECRET}])


class Notify:
    """The sender as a real process, started and SIGKILLed at will."""

    def __init__(self, config):
        self.config = config
        self.proc = None
        self.kills = 0
        self.stderr = config + ".notify.log"  # every run's warnings, for a failure's message

    def start(self):
        with open(self.stderr, "ab") as stream:
            self.proc = subprocess.Popen([sys.executable, "-m", "pbxcall", "notify", "--config", self.config],
                                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stream)

    def log(self):
        with open(self.stderr, errors="replace") as stream:
            return stream.read()[-3000:]

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def notify(client):
    sender = Notify(client.config)
    sender.start()
    yield sender
    sender.stop()


def received(receiver, filename):
    return [(item, json.loads(item["body"])) for item in list(receiver.received)
            if json.loads(item["body"])["call"]["filename"] == filename]


def test_every_behaviour_gives_its_events_and_outcome(client, receiver, notify):
    made = {}
    threads = []

    def place(name):
        agent, to = CALLS[name][0] + 10, CALLS[name][1]()
        made[name] = client.call("from=%d&to=%s&external_id=wh-%s" % (agent, to, agent))["filename"]
    for name in EXPECTED:
        threads.append(threading.Thread(target=place, args=(name,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    for name, filename in made.items():
        wait_for("call.finished of %s" % name, lambda: any(payload["event"] == "call.finished"
                                                           for _, payload in received(receiver, filename)))
    table = []
    for name, filename in sorted(made.items()):
        got = received(receiver, filename)
        events = [payload["event"] for _, payload in got]
        agent, customer, status, _ = EXPECTED[name]
        assert events == (["call.answered", "call.finished"] if agent == "answered" else ["call.finished"]), events
        final = got[-1][1]
        assert final["event_id"] == filename + ":call.finished"
        assert (final["call"]["outcome"]["agent"], final["call"]["outcome"]["customer"],
                final["call"]["outcome"]["dial_status"]) == (agent, customer, status), final
        for item, _ in got:
            assert webhook.verify(SECRET.encode(), item["headers"]["X-Pbxcall-Signature"], item["body"], time.time())
        table.append("%-28s %-38s %s/%s" % (name, " + ".join(events), agent, customer))
    print("\n".join(table))


def test_a_sender_killed_at_random_loses_nothing(pbx, client, receiver, notify):
    """100 calls to busy agents (each over at once) while the sender is SIGKILLed at
    random moments and started again: every call.finished arrives, duplicates only
    with the same event_id."""
    rng = random.Random(20261130)
    stop = []

    def killer():
        while not stop:
            time.sleep(rng.uniform(0.02, 0.3))
            if notify.proc.poll() is None:
                notify.kill()
                notify.start()
    thread = threading.Thread(target=killer)
    thread.start()
    try:
        names = []
        for index in range(100):
            names.append(client.call("from=%d&to=%s" % (330 + index % 60, number(0)))["filename"])
            time.sleep(rng.uniform(0, 0.05))
        time.sleep(2)  # the kills go on a little after the last call...
        stop.append(True)  # ...then the sender runs undisturbed: a restart must catch up on everything
        thread.join()
        wanted = {name + ":call.finished" for name in names}

        def arrived():
            return {json.loads(item["body"])["event_id"] for item in list(receiver.received)}
        try:
            wait_for("every event", lambda: wanted <= arrived(), timeout=120)
        except AssertionError:
            missing = sorted(wanted - arrived())
            state = os.path.join(os.path.dirname(pbx.outgoing), "pbxcall")
            raise AssertionError("%d events missing (%s); hooks/: %s; outbox/: %s; sender log:\n%s" % (
                len(missing), missing[:3], sorted(os.listdir(os.path.join(state, "hooks")))[:5],
                sorted(os.listdir(os.path.join(state, "outbox")))[:5], notify.log()))
    finally:
        stop.append(True)
        thread.join()
    ids = [json.loads(item["body"])["event_id"] for item in list(receiver.received)
           if json.loads(item["body"])["call"]["filename"] in names]
    assert set(ids) == wanted
    print("sender SIGKILLed %d times during 100 calls; %d deliveries, %d duplicates (same event_id)"
          % (notify.kills, len(ids), len(ids) - len(set(ids))))
    assert notify.kills >= 5


def test_asterisk_logged_no_warning_or_error(pbx, client, receiver):
    """Last in this module: after every call above."""
    assert [line for line in pbx.log().splitlines() if "WARNING[" in line or "ERROR[" in line] == []
