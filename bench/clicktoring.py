"""Click-to-ring latency: /usr/bin/python3 bench/clicktoring.py [--calls 50].

From the moment the HTTP answer is complete (the CRM's click is done) to the moment
Asterisk creates the agent's channel (the AMI ``Newchannel`` event of
``Local/<agent>@from-internal-...;1``), on a real Asterisk (pbxsim, ../shared/asterisk)
whose spool both endpoints write into, behind one real Apache (prefork, mod_cgid,
mod_php): pbxcall's CGI script with the shipped config, and the PHP stand-in
../shared/reference/make_call.php.  Calls alternate between the two, one at a time,
each ringing an agent of its own; the customer's number ends in 7 (congestion), so
every call is over a second after the agent answers.

A negative figure means Asterisk had the channel before the client had read the
whole answer: pbxcall renames the file into the spool before it writes the answer.
Prints numbers; asserts nothing.  Needs root (Apache runs as asterisk), apache2 and
libapache2-mod-php (bench/run installs them).
"""

import argparse
import http.client
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from apache import KEY, Apache  # noqa: E402
from pbxsim import Pbx  # noqa: E402
from run import PHP_MODULE, REFERENCE_PHP, write  # noqa: E402


class Ami(threading.Thread):
    """Reads AMI events; puts (arrival time, channel) of each agent-leg Newchannel in ``events``."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.stream = self.sock.makefile("rwb")
        self.stream.readline()  # banner
        self.stream.write(b"Action: Login\r\nUsername: pbxsim\r\nSecret: pbxsim\r\nEvents: call\r\n\r\n")
        self.stream.flush()
        self.sock.settimeout(None)
        self.events = queue.Queue()

    def run(self):
        block = {}
        for raw in self.stream:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                name, _, value = line.partition(": ")
                block[name] = value
                continue
            channel = block.get("Channel", "")
            if block.get("Event") == "Newchannel" and "@from-internal-" in channel and channel.endswith(";1"):
                self.events.put((time.time(), channel))
            block = {}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="calls per endpoint")
    args = parser.parse_args(argv)
    base = tempfile.mkdtemp(prefix="pbxcall-bench-ring-", dir="/var/spool")
    os.chmod(base, 0o755)
    pbx = Pbx(os.path.join(base, "pbx"), {"AGENT_TALK": 2, "DIAL_TIMEOUT": 2})
    server = None
    try:
        spool = os.path.dirname(pbx.outgoing)
        server = Apache("2.4", mpm="prefork", cgi_module="cgid", base_dir="/var/spool",
                        extra_modules=[("php_module", PHP_MODULE)],
                        settings={"outgoing_path": pbx.outgoing, "outgoing_temp_path": pbx.staging})
        for path in (spool, pbx.outgoing, pbx.staging):  # FreePBX: the spool is asterisk's
            server.give(path, 0o755, to_user=True)
        php = os.path.join(server.base, "php")
        os.mkdir(php)
        with open(REFERENCE_PHP, "rb") as stream:
            write(os.path.join(php, "make_call.php"), stream.read())
        write(os.path.join(php, ".api.env.php"), (
            "<?php return ['api_key' => '%s', 'outgoing_path' => '%s', 'outgoing_temp_path' => '%s', "
            "'outgoing_context' => 'from-internal'];\n" % (KEY, pbx.outgoing, pbx.staging)).encode())
        server.extra_conf = ("Alias /php/make_call.php %s/make_call.php\n<Directory %s>\n    Require all granted\n"
                             "    SetHandler application/x-httpd-php\n</Directory>" % (php, php))
        with open(server.conf, "w") as stream:
            stream.write(server.main_config("prefork", "cgid"))
        server.start()
        ami = Ami(int(pbx.env["AMI_PORT"]))
        ami.start()
        paths = {"pbxcall CGI (mod_cgid)": "/api/make_call.php", "PHP stand-in (mod_php)": "/php/make_call.php"}
        found = {label: [] for label in paths}
        missed = {label: 0 for label in paths}
        warmup = 2 * len(paths)  # the first calls pay for first use (Asterisk's and Apache's): shown apart
        first = {label: [] for label in paths}
        for index in range(warmup + args.calls * len(paths)):
            label = list(paths)[index % len(paths)]
            agent = 100 + index % 100
            while not ami.events.empty():
                ami.events.get_nowait()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "%s?from=%d&to=8999%07d7" % (paths[label], agent, index),
                         headers={"Authorization": "Bearer " + KEY})
            response = conn.getresponse()
            response.read()
            done = time.time()
            conn.close()
            if response.status != 200:
                raise SystemExit("%s answered %d" % (label, response.status))
            try:
                while True:
                    stamp, channel = ami.events.get(timeout=5)
                    if channel.startswith("Local/%d@" % agent):
                        (first if index < warmup else found)[label].append((stamp - done) * 1000)
                        break
            except queue.Empty:
                missed[label] += 1
            time.sleep(0.3)
        print("click-to-ring: HTTP answer read -> AMI Newchannel of the agent's leg, %d calls each, "
              "one at a time, after 2 warm-up calls each; spool %s" % (args.calls, pbx.outgoing))
        print("warm-up calls (ms): %s" % ", ".join("%s %s" % (label, " ".join("%.1f" % value for value in values))
                                                   for label, values in first.items()))
        print("%-26s %8s %8s %8s %8s %7s" % ("", "p50 ms", "p99 ms", "min ms", "max ms", "missed"))
        for label, values in found.items():
            if values:
                print("%-26s %8.2f %8.2f %8.2f %8.2f %7d" % (label, percentile(values, 0.5), percentile(values, 0.99),
                                                           min(values), max(values), missed[label]))
            else:
                print("%-26s no channel seen for any call (missed %d)" % (label, missed[label]))
        if os.environ.get("BENCH_VERBOSE"):
            print({label: [round(value, 1) for value in values] for label, values in found.items()})
        subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(ROOT), "shared", "asterisk", "pbxsim"),
                        "wait", pbx.dir, "--timeout", "60"], stdout=subprocess.DEVNULL)
        return 0
    finally:
        if server is not None:
            server.stop()
        pbx.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
