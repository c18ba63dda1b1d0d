"""Every figure of bench/README.md in one run: python3 bench/run.py [--requests 2000].

1. CGI whole process against ``python3 -I -S -c pass`` (bench/cgi.py).
2. Through Apache, ``ab -n N -c 4``: pbxcall under mod_cgid (event MPM) and mod_cgi
   (prefork) against a trivial CGI script with the same shebang that prints a fixed
   JSON body (the CGI floor).
3. mod_wsgi daemon mode, ``ab -c 1`` and ``-c 4``: pbxcall with fsync on and off
   against Apache serving the same JSON as a static file (the Apache floor) and the
   PHP stand-in ../shared/reference/make_call.php under mod_php.

Apache is Debian's apache2, started by tests/apache.py exactly as the tests start
it (the shipped configs, the install tree byte-compiled, the server running as
``asterisk``).  Spools are on the real disk, under /var/spool.  pbxcall runs with
dedupe off (ab repeats one URL) and rate limits far above the load, so their
locking still runs.  Prints numbers and ratios; asserts nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from apache import KEY, Apache  # noqa: E402

REFERENCE_PHP = os.path.join(os.path.dirname(ROOT), "shared", "reference", "make_call.php")
PHP_MODULE = "/usr/lib/apache2/modules/libphp8.2.so"
AB = "/usr/bin/ab"
SEED = "/api/make_call.php?from=101&to=89998887766&external_id=crm-2345"
BENCH_SETTINGS = {"dedupe_seconds": 0, "rate_limit": {"per_key": "1000000/minute", "per_from": "1000000/minute"}}
ANSWER = (b'{"status": "OK", "from": "101", "to": "89998887766", "external_id": "crm-2345", '
          b'"filename": "call-0123456789abcdef", "file": "call-0123456789abcdef"}')
FLOOR_CGI = (b"#!/usr/bin/python3 -IS\n"
             b"import sys\n"
             b"sys.stdout.write('Status: 200 OK\\r\\nContent-Type: application/json; charset=utf-8\\r\\n'\n"
             b"                 'Cache-Control: no-store\\r\\n\\r\\n' + %r)\n" % ANSWER.decode())


def ab(server, path, requests, concurrency):
    """One ab run -> {rps, failed, non2xx, p50, p99}; a short warm-up first."""
    url = "http://127.0.0.1:%d%s" % (server.port, path)
    command = [AB, "-q", "-H", "Authorization: Bearer " + KEY, "-c", str(concurrency)]
    subprocess.run(command + ["-n", str(max(concurrency * 20, 50)), url], stdout=subprocess.DEVNULL, check=True)
    out = subprocess.run(command + ["-n", str(requests), url], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout

    def number(pattern, default=0.0):
        found = re.search(pattern, out, re.M)
        return float(found.group(1)) if found else default
    return {"rps": number(r"^Requests per second:\s+([\d.]+)"), "failed": int(number(r"^Failed requests:\s+(\d+)")),
            "non2xx": int(number(r"^Non-2xx responses:\s+(\d+)")), "p50": number(r"^\s+50%\s+(\d+)"),
            "p99": number(r"^\s+99%\s+(\d+)")}


def median_runs(runs):
    """The run with the median req/s of ``runs`` (dicts from :func:`ab`)."""
    return sorted(runs, key=lambda result: result["rps"])[len(runs) // 2]


def interleaved(server, paths, requests, concurrency, rounds):
    """ab on each of ``paths`` in turn, ``rounds`` times, the spool emptied and the disk
    settled before each run -> {path: median run}; the disk's noise hits all alike."""
    runs = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            clear(server.outgoing)
            result = ab(server, path, requests, concurrency)
            result["files"] = whole_files(server.outgoing)  # (call files, whole ones) of this run
            runs[path].append(result)
    return {path: median_runs(found) for path, found in runs.items()}


def whole_files(directory):
    """(count, count of files that end with the template's last line)."""
    names = [name for name in os.listdir(directory) if name.startswith("call-")]
    whole = 0
    for name in names:
        with open(os.path.join(directory, name)) as stream:
            whole += stream.read().endswith("Archive: yes\n")
    return len(names), whole


def clear(directory):
    """Empty the spool, then let the disk settle: the next run must not pay for this one."""
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.sync()


def write(path, data, mode=0o644):
    with open(path, "wb") as stream:
        stream.write(data)
    os.chmod(path, mode)


def row(label, result, base=None):
    ratio = "%6.2fx" % (result["rps"] / base["rps"]) if base else "       "
    return "%-44s %9.1f %s %6d %6d %6d %6d" % (label, result["rps"], ratio, result["p50"], result["p99"],
                                                 result["failed"], result["non2xx"])


def cgi_servers(requests, rounds):
    lines = []
    for mpm, module in (("event", "cgid"), ("prefork", "cgi")):
        server = Apache("2.4", mpm=mpm, cgi_module=module, settings=BENCH_SETTINGS, base_dir="/var/spool")
        floor = os.path.join(server.base, "floor.cgi")
        write(floor, FLOOR_CGI, 0o755)
        server.extra_conf = ("ScriptAlias /floor.cgi %s\n<Location /floor.cgi>\n    Require all granted\n</Location>"
                             % floor)
        with open(server.conf, "w") as stream:
            stream.write(server.main_config(mpm, module))
        with server:
            found = interleaved(server, ["/floor.cgi", SEED], requests, 4, rounds)
            base, ours = found["/floor.cgi"], found[SEED]
            files, whole = ours["files"]
        lines.append(row("mod_%s -c 4: trivial CGI (floor)" % module, base))
        lines.append(row("mod_%s -c 4: pbxcall CGI" % module, ours, base))
        lines.append("    call files: %d, whole: %d, expected %d (+ the warm-up's)" % (files, whole, requests))
    return lines


def wsgi_server(requests, rounds, base_dir="/var/spool", daemon=None):
    """``daemon``: replaces the shipped "processes=2 threads=4", to try other sizes."""
    settings_off = dict(BENCH_SETTINGS, fsync=False)
    edit = (lambda text: text.replace("processes=2 threads=4", daemon)) if daemon else None
    server = Apache("wsgi", mpm="prefork", settings=BENCH_SETTINGS, base_dir=base_dir, edit=edit,
                    extra_modules=[("php_module", PHP_MODULE)])
    static = os.path.join(server.base, "static")
    php = os.path.join(server.base, "php")
    os.mkdir(static)
    os.mkdir(php)
    write(os.path.join(static, "answer.json"), ANSWER)
    with open(REFERENCE_PHP, "rb") as stream:
        write(os.path.join(php, "make_call.php"), stream.read())
    php_settings = ("<?php return ['api_key' => '%s', 'outgoing_path' => '%s', 'outgoing_temp_path' => '%s', "
                    "'outgoing_context' => 'from-internal'];\n" % (KEY, server.outgoing, server.tmp))
    write(os.path.join(php, ".api.env.php"), php_settings.encode())
    off_config = server.config.replace(".json", "-nofsync.json")
    with open(off_config, "w") as stream:
        json.dump(dict(json.load(open(server.config)), **settings_off), stream)
    server.give(off_config, 0o640)
    wsgi = os.path.join(server.install, "apache", "pbxcall.wsgi")
    user = " user=asterisk group=asterisk" if server.owner else ""
    server.extra_conf = "\n".join([
        "Alias /static/answer.json %s/answer.json" % static,
        '<Directory %s>\n    Require all granted\n    ForceType "application/json; charset=utf-8"\n</Directory>'
        % static,
        "Alias /php/make_call.php %s/make_call.php" % php,
        "<Directory %s>\n    Require all granted\n    SetHandler application/x-httpd-php\n</Directory>" % php,
        "WSGIDaemonProcess nofsync%s %s python-path=%s" % (user, daemon or "processes=2 threads=4", server.install),
        "WSGIScriptAlias /nofsync/api/make_call.php %s" % wsgi,
        "<Location /nofsync/api/make_call.php>\n    WSGIProcessGroup nofsync\n    WSGIApplicationGroup %%{GLOBAL}\n"
        "    WSGIPassAuthorization On\n    SetEnv PBXCALL_CONFIG %s\n    Require all granted\n</Location>"
        % off_config,
    ])
    with open(server.conf, "w") as stream:
        stream.write(server.main_config("prefork", "cgid"))
    lines = []
    with server:
        php_path = "/php/make_call.php?from=101&to=89998887766"
        for concurrency in (1, 4):
            base = ab(server, "/static/answer.json", requests, concurrency)
            found = interleaved(server, [php_path, SEED, "/nofsync" + SEED], requests, concurrency, rounds)
            stand_in, on, off = found[php_path], found[SEED], found["/nofsync" + SEED]
            files_on, files_off = on["files"], off["files"]
            lines.append(row("-c %d: Apache static JSON (floor)" % concurrency, base))
            lines.append(row("-c %d: PHP stand-in, mod_php" % concurrency, stand_in, base))
            lines.append(row("-c %d: pbxcall mod_wsgi, fsync on" % concurrency, on, base))
            lines.append(row("-c %d: pbxcall mod_wsgi, fsync off" % concurrency, off, base))
            lines.append("    fsync off / PHP stand-in: %.2fx; call files on/off (whole): %d (%d) / %d (%d)"
                         % (off["rps"] / stand_in["rps"], files_on[0], files_on[1], files_off[0], files_off[1]))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=20, help="paired runs for the whole-process figure")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved ab rounds per figure (median taken)")
    args = parser.parse_args(argv)
    print("== 1. CGI whole process (bench/cgi.py)")
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "cgi.py"), "--runs", str(args.runs),
                    "--spool", "/var/spool"], check=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "cgi.py"), "--runs", str(args.runs),
                    "--spool", "/var/spool", "--fsync", "off"], check=True)
    header = "%-44s %9s %7s %6s %6s %6s %6s" % ("", "req/s", "ratio", "p50ms", "p99ms", "failed", "non2xx")
    print("\n== 2. Through Apache, ab -n %d, spool on disk (/var/spool), median of %d interleaved rounds"
          % (args.requests, args.rounds))
    print(header)
    for line in cgi_servers(args.requests, args.rounds):
        print(line)
    sys.stdout.flush()
    print("\n== 3. mod_wsgi daemon mode (prefork, mod_php loaded), ab -n %d, spool on disk, median of %d "
          "interleaved rounds" % (args.requests, args.rounds))
    print(header)
    for line in wsgi_server(args.requests, args.rounds):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
