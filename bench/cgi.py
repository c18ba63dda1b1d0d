"""Whole-process time of one CGI request against the interpreter's floor.

    /usr/bin/python3 bench/cgi.py [--runs 20] [--python /usr/bin/python3] [--spool /dev/shm]

Runs, in pairs, `python3 -I -S -c pass` (the floor) and the real cgi-bin/pbxcall with
a CGI environment for the seed request (200), a wrong key (401) and a bad number
(400), and prints each median, its ratio to the floor's, and the peak RSS.  The spool
is under --spool (file creation in the work tree is slow on these machines).  Time it
with Debian's /usr/bin/python3 — what Apache runs; pyenv's interpreters load extra
start-up files.  Prints numbers; asserts nothing.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "cgi-bin", "pbxcall")
KEY = "bench-key-0123456789"
# %(n)04d makes every seed request a new call: dedupe and the rate limits stay on (the
# defaults' code path, with limits high enough never to refuse) and never short-cut it.
CASES = [
    ("200 seed", "from=101&to=8999888%(n)04d&external_id=crm-%(n)d", "Bearer " + KEY),
    ("401 wrong key", "from=101&to=89998887766", "Bearer wrong"),
    ("400 bad to", "from=101&to=12", "Bearer " + KEY),
]


GNU_TIME = "/usr/bin/time"  # Debian package "time"


def run(command, env, env_again=dict):
    """Wall time of one process in ms, and its peak RSS in KiB (None without GNU time).

    The peak RSS comes from a second run under GNU time (environ ``env_again()``): a
    child forked from this benchmark would count the benchmark's own pages as its peak.
    """
    start = time.perf_counter()
    pid = os.posix_spawn(command[0], command, env)
    _, status = os.waitpid(pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    assert os.waitstatus_to_exitcode(status) == 0, command
    if not os.path.exists(GNU_TIME):
        return elapsed, None
    proc = subprocess.run([GNU_TIME, "-f", "%M", *command], env=env_again() or env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=True)
    return elapsed, int(proc.stderr.decode().split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--spool", default="/dev/shm")
    parser.add_argument("--fsync", choices=["on", "off"], default="on")
    args = parser.parse_args(argv)

    base = tempfile.mkdtemp(prefix="pbxcall-bench-", dir=args.spool)
    try:
        for sub in ("outgoing", "tmp"):
            os.mkdir(os.path.join(base, sub))
        config = os.path.join(base, "api.env.json")
        with open(config, "w") as stream:
            json.dump({"api_key": KEY, "outgoing_path": os.path.join(base, "outgoing"),
                       "file_owner": None, "fsync": args.fsync == "on",
                       "rate_limit": {"per_key": "1000000/minute", "per_from": "1000000/minute"}}, stream)
        floor = [args.python, "-I", "-S", "-c", "pass"]
        script = [args.python, "-IS", SCRIPT]
        env_base = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/api/make_call.php",
                    "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
                    "SERVER_PROTOCOL": "HTTP/1.1", "PBXCALL_CONFIG": config}
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(1), os.dup(2)
        results = {}
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            for _ in range(3):  # warm the page cache
                run(floor, {})
            serial = iter(range(1000000))
            for name, query, auth in CASES:
                pairs = []
                for _ in range(args.runs):
                    env = dict(env_base, HTTP_AUTHORIZATION=auth)
                    pairs.append((run(floor, {}), run(script, dict(env, QUERY_STRING=query % {"n": next(serial)}),
                                                      lambda: dict(env, QUERY_STRING=query % {"n": next(serial)}))))
                results[name] = pairs
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
        calls = len(os.listdir(os.path.join(base, "outgoing")))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print("CGI whole process, %s, %d paired runs, spool under %s, fsync %s"
          % (args.python, args.runs, args.spool, args.fsync))
    print("%-16s %10s %10s %7s %10s %10s %7s" % ("case", "floor ms", "pbxcall ms", "ratio",
                                                  "floor KiB", "pbxcall KiB", "ratio"))
    for name, pairs in results.items():
        floor_ms = statistics.median(f[0] for f, _ in pairs)
        ours_ms = statistics.median(o[0] for _, o in pairs)
        line = "%-16s %10.2f %10.2f %6.2fx" % (name, floor_ms, ours_ms, ours_ms / floor_ms)
        if pairs[0][0][1] is not None:
            floor_kb = statistics.median(f[1] for f, _ in pairs)
            ours_kb = statistics.median(o[1] for _, o in pairs)
            line += " %10d %10d %6.2fx" % (floor_kb, ours_kb, ours_kb / floor_kb)
        print(line)
    print("call files written: %d (expected %d: the seed case runs twice, once under GNU time)"
          % (calls, args.runs * (2 if os.path.exists(GNU_TIME) else 1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
