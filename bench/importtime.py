"""What a CGI request imports beyond the bare interpreter, and what each costs.

    /usr/bin/python3 bench/importtime.py

Runs the real cgi-bin/pbxcall once for the seed request (200) and once with a wrong
key (401) under ``python3 -X importtime -IS`` and prints every module imported that
``python3 -I -S -c pass`` does not import itself, with its own and cumulative time
(microseconds, as ``-X importtime`` reports them: inflated by the measuring, so read
them as proportions).  Prints numbers; asserts nothing.
"""

import json
import os
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
KEY = "bench-key-0123456789"


def imported(command, env):
    err = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         universal_newlines=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, total, name = (part.strip() for part in line[len("import time:"):].split("|"))
            rows.append((name, int(own), int(total)))
    return rows


def main():
    base = tempfile.mkdtemp(prefix="pbxcall-importtime-", dir="/dev/shm")
    try:
        os.makedirs(os.path.join(base, "outgoing"))
        config = os.path.join(base, "api.env.json")
        with open(config, "w") as stream:
            json.dump({"api_key": KEY, "outgoing_path": os.path.join(base, "outgoing"), "file_owner": None}, stream)
        floor = {name for name, _, _ in imported([PYTHON, "-X", "importtime", "-I", "-S", "-c", "pass"], {})}
        for label, query, auth in (("200 seed", "from=101&to=89998887766&external_id=crm-2345", "Bearer " + KEY),
                                   ("401 wrong key", "from=101&to=89998887766", "Bearer wrong")):
            env = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/api/make_call.php", "QUERY_STRING": query,
                   "HTTP_AUTHORIZATION": auth, "REMOTE_ADDR": "127.0.0.1", "PBXCALL_CONFIG": config}
            rows = [row for row in imported([PYTHON, "-X", "importtime", "-IS", os.path.join(ROOT, "cgi-bin",
                                                                                           "pbxcall")], env)
                    if row[0] not in floor]
            print("%s: %d modules beyond the floor, %d us of own import time" % (
                label, len(rows), sum(own for _, own, _ in rows)))
            print("| module | own us | cumulative us |\n|---|---:|---:|")
            for name, own, total in sorted(rows, key=lambda row: -row[1]):
                print("| %s | %d | %d |" % (name, own, total))
            print()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
