"""Webhook figures: /usr/bin/python3 bench/webhooks.py [--calls 50] [--idle 60] [--events 2000].

1. Hangup -> webhook received: on a real Asterisk (pbxsim) with pbxcall's outcome
   dialplan, the real sender process (python3 -m pbxcall notify) and a local HTTP
   receiver; from the moment the agent's channel hung up (the mtime, in ns, of the
   outcome file's last line: Asterisk's hangup handler writes it) to the moment the
   receiver has the call.finished request.  Calls: agent answers, customer congested.
2. The sender's CPU time (user + system, /proc) while idle for --idle seconds.
3. Outbox throughput: --events entries delivered to the local receiver by one sender
   round (one connection a request, as in production).
Prints numbers; asserts nothing.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from pbxcall import outcome  # noqa: E402
from pbxcall.log import Log  # noqa: E402
from pbxcall.notify import Sender  # noqa: E402
from pbxcall.settings import Settings  # noqa: E402

from pbxsim import Pbx  # noqa: E402
from receiver import Receiver  # noqa: E402

SECRET = "bench-secret-0123456789"
KEY = "bench-key-0123456789"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stream:
        fields = stream.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args(argv)
    base = tempfile.mkdtemp(prefix="pbxcall-bench-hooks-", dir="/var/spool")
    receiver = Receiver()
    pbx = Pbx(os.path.join(base, "pbx"), {"AGENT_TALK": 4, "DIAL_TIMEOUT": 3}, custom_dialplan=outcome.DIALPLAN)
    sender = None
    try:
        config = os.path.join(base, "settings.json")
        with open(config, "w") as stream:
            json.dump({"api_key": KEY, "outgoing_path": pbx.outgoing, "outgoing_temp_path": pbx.staging,
                       "file_owner": None, "rate_limit": None, "dedupe_seconds": 0, "outcome": True,
                       "max_retries": 0, "webhooks": [{"url": receiver.url, "secret": SECRET,
                                                       "events": ["call.finished"]}]}, stream)
        sender = subprocess.Popen(["/usr/bin/python3", "-m", "pbxcall", "notify", "--config", config], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        state = os.path.join(os.path.dirname(pbx.outgoing), "pbxcall")
        names = []
        for index in range(args.calls):
            out = subprocess.run(["/usr/bin/python3", "-m", "pbxcall", "call", "--from", str(100 + index % 100), "--to",
                                  "8999%07d7" % index, "--config", config], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, check=True).stdout
            names.append(json.loads(out.decode())["filename"])
            time.sleep(0.3)
        deadline = time.time() + 120
        while time.time() < deadline and len(receiver.received) < len(names):
            time.sleep(0.2)
        latencies = []
        for item in list(receiver.received):
            name = json.loads(item["body"])["call"]["filename"]
            hangup = os.stat(os.path.join(state, "outcome", name)).st_mtime_ns / 1e9
            latencies.append((item["at"] - hangup) * 1000)
        print("1. hangup -> call.finished received, %d of %d calls: p50 %.0f ms, p99 %.0f ms, min %.0f, max %.0f"
              % (len(latencies), len(names), percentile(latencies, 0.5), percentile(latencies, 0.99),
                 min(latencies), max(latencies)))
        sys.stdout.flush()
        before = cpu_seconds(sender.pid)
        time.sleep(args.idle)
        used = cpu_seconds(sender.pid) - before
        print("2. sender idle for %.0f s: %.3f s of CPU (%.4f %%)" % (args.idle, used, 100 * used / args.idle))
        sys.stdout.flush()
    finally:
        if sender is not None:
            sender.terminate()
            sender.wait(10)
        pbx.stop()
    try:
        spool = os.path.join(base, "throughput")
        os.makedirs(os.path.join(spool, "outgoing"))
        settings = Settings.from_mapping({"api_key": KEY, "outgoing_path": os.path.join(spool, "outgoing"),
                                          "webhooks": [{"url": receiver.url, "secret": SECRET}]})
        round_sender = Sender(settings, Log(io.StringIO()))
        now = time.time()
        for index in range(args.events):
            round_sender.outbox.add("call-%016x" % index, "call.finished", "call-%016x:call.finished" % index,
                                    "webhooks[0]", receiver.url, b'{"bench": %d}' % index, now)
        received = len(receiver.received)
        started = time.time()
        delivered, _ = round_sender.deliver(time.time())
        elapsed = time.time() - started
        print("3. outbox throughput: %d events delivered in %.2f s: %.0f events/s (received %d)"
              % (delivered, elapsed, delivered / elapsed, len(receiver.received) - received))
    finally:
        receiver.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
