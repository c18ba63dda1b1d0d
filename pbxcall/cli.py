"""``python3 -m pbxcall``: the command line.

    serve [--demo] [--host H] [--port P] [--config PATH]
        The WSGI app on wsgiref's development server, loopback only by default.
        --demo needs no settings: a throwaway spool under ./pbxcall-demo and a
        random key, and it prints the curl line to try.

    apache-config [--style 2.4|2.4.6|wsgi] [--config PATH] [--allow CIDR ...]
        The shipped Apache config from apache/ with this install's absolute paths
        filled in: 2.4 (Apache >= 2.4.13, FreePBX 17), 2.4.6 (FreePBX 16), wsgi
        (mod_wsgi daemon mode).  --allow replaces the placeholder network.

    prune [--config PATH]
        Retention now (for cron): archived and cancelled call files older than
        retention_days, staging leftovers, stale index lines.  Prints the counts.

    check [--config PATH] [--user USER]
        Load the settings as the CGI script would and report, one line each with
        its fix, every problem (exit 1) and hint (exit 0 if only hints), checking
        files and directories as USER (default: asterisk when it exists).

    call --from EXT --to NUMBER [--external-id ID] [--at TIME | --delay S]
         [--key NAME] [--config PATH]
        Place a call through the same code as the HTTP endpoint (same checks,
        same file, the rules and limits of key NAME, default the first key);
        prints the JSON the API would have returned.  Exit 1 on an error answer.

    import-php PATH.php
        Print the old .api.env.php as JSON settings (read, never executed).
        Exit 1 if it cannot be read or is not usable as settings (said on stderr).

Exit codes: 0 done, 1 the command failed (or found problems), 2 unusable arguments.
"""

import argparse
import os
import sys
from typing import TYPE_CHECKING, List, Optional

from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .settings import Settings

DEMO_DIR = "pbxcall-demo"
INSTALL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APACHE_STYLES = {"2.4": "pbxcall.conf", "2.4.6": "pbxcall-2.4.6.conf", "wsgi": "pbxcall-wsgi.conf"}
#: what the shipped files say, replaced by apache-config
SHIPPED_INSTALL_DIR = "/opt/pbxcall"
SHIPPED_NETWORK_LINE = "    Require ip 192.0.2.0/24\n"


def demo_settings(base: str) -> "Settings":
    """Settings for a throwaway spool under ``base`` with a fresh random key."""
    from .settings import Settings

    outgoing = os.path.join(base, "outgoing")
    for path in (outgoing, os.path.join(base, "tmp")):
        os.makedirs(path, exist_ok=True)
    return Settings.from_mapping(
        {"api_key": "demo-" + os.urandom(12).hex(), "outgoing_path": outgoing, "file_owner": None},
        "<demo>",
    )


def serve(args: argparse.Namespace) -> int:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from .app import make_app

    settings = demo_settings(os.path.abspath(DEMO_DIR)) if args.demo else load(args)
    class QuietHandler(WSGIRequestHandler):
        """wsgiref's handler without its access log: pbxcall logs each request itself."""

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = make_server(args.host, args.port, make_app(settings), handler_class=QuietHandler)
    host, port = args.host, server.server_port
    print("pbxcall serving http://%s:%d/api/make_call.php  (Ctrl-C stops)" % (host, port))
    print("settings: %s; spool: %s" % (settings.source, settings.outgoing_path))
    if args.demo:
        print("\nTry it:\n\n  curl -s -H 'Authorization: Bearer %s' "
              "'http://%s:%d/api/make_call.php?from=101&to=89998887766&external_id=crm-2345'\n"
              % (settings.keys[0].secret.decode("ascii"), host, port))
        print("The call file appears in %s/\n" % settings.outgoing_path)
    sys.stdout.flush()
    # Requests are served in a thread: wsgiref's handler swallows any exception, so
    # Ctrl-C or SIGTERM landing mid-request would otherwise be lost; here the main
    # thread receives them.
    import signal
    import threading

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


def apache_config(args: argparse.Namespace) -> int:
    from .settings import SYSTEM_PATH

    path = os.path.join(INSTALL_DIR, "apache", APACHE_STYLES[args.style])
    try:
        with open(path) as stream:
            text = stream.read()
    except OSError as exc:
        print("pbxcall: cannot read %s: %s" % (path, exc.strerror), file=sys.stderr)
        return 1
    text = text.replace(SHIPPED_INSTALL_DIR, INSTALL_DIR).replace(SYSTEM_PATH, os.path.abspath(args.config))
    if args.allow:
        text = text.replace(SHIPPED_NETWORK_LINE, "".join("    Require ip %s\n" % net for net in args.allow))
    sys.stdout.write(text)
    return 0


def load(args: argparse.Namespace) -> "Settings":
    from .settings import Settings, find_path

    settings = Settings.from_file(args.config or find_path())
    for warning in settings.warnings:
        print("pbxcall: warning: %s" % warning, file=sys.stderr)
    return settings


def prune(args: argparse.Namespace) -> int:
    import time

    from .retention import run

    counts = run(load(args), time.time())
    print("removed %(archived)d archived or cancelled call files, %(staged)d staging leftovers, "
          "%(index)d index lines" % counts)
    for problem in counts["problems"]:
        print("pbxcall prune: %s" % problem, file=sys.stderr)
    return 0


def check(args: argparse.Namespace) -> int:
    import pwd

    from .check import UnknownUser
    from .check import check as run_check

    user = args.user
    if user is None:
        try:
            user = pwd.getpwnam("asterisk").pw_name
        except KeyError:
            user = None
    try:
        findings = run_check(args.config, user)
    except UnknownUser:
        print("pbxcall check: no user %r here" % args.user, file=sys.stderr)
        return 2
    except PermissionError as exc:
        print("pbxcall check: %s" % exc, file=sys.stderr)
        return 2
    for kind, text in findings:
        print("%s: %s" % (kind, text))
    problems = sum(kind == "problem" for kind, _ in findings)
    print("%d problem%s, %d hint%s (checked as %s)" % (
        problems, "" if problems == 1 else "s", len(findings) - problems,
        "" if len(findings) - problems == 1 else "s", user or "the current user"))
    return 1 if problems else 0


def call(args: argparse.Namespace) -> int:

    from .app import answer, make_call
    from .jsonwire import dumps
    from .log import Log

    settings = load(args)
    keys = [key for key in settings.keys if args.key in (None, key.name)]
    if not keys:
        print("pbxcall call: no key named %r in the settings" % args.key, file=sys.stderr)
        return 2
    fields = {name: value for name, value in (("from", args.from_), ("to", args.to), ("at", args.at),
                                              ("delay", args.delay), ("external_id", args.external_id))
              if value is not None}
    log = Log(sys.stderr, settings.log_file, settings.audit_log)
    record: "dict" = {"client": "cli", "key": keys[0].name}
    record.update((name, fields.get(name)) for name in ("from", "to", "external_id"))
    status, payload, _ = answer(lambda: make_call(settings, keys[0], fields, log, record), log, record)
    print(dumps(payload))
    return 0 if status == 200 else 1


def import_php(args: argparse.Namespace) -> int:
    import json

    from .phpenv import PhpSyntaxError, loads
    from .settings import Settings

    try:
        with open(args.path, encoding="utf-8") as stream:
            data = loads(stream.read())
    except (OSError, UnicodeDecodeError, PhpSyntaxError) as exc:
        print("pbxcall import-php: cannot read %s: %s" % (args.path, exc), file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2))
    try:
        Settings.from_mapping(data, args.path)
    except ConfigError as exc:
        print("pbxcall import-php: %s" % exc.detail, file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m pbxcall", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    run = commands.add_parser("serve", help="run the API on a local development server")
    run.add_argument("--demo", action="store_true",
                     help="throwaway spool under ./%s and a random key; prints a curl line" % DEMO_DIR)
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    run.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    run.set_defaults(func=serve)
    conf = commands.add_parser("apache-config", help="print the Apache config for this install")
    conf.add_argument("--style", choices=sorted(APACHE_STYLES), default="2.4",
                      help="2.4: Apache >= 2.4.13 (FreePBX 17); 2.4.6: FreePBX 16; wsgi: mod_wsgi daemon")
    conf.add_argument("--config", default="/etc/pbxcall/api.env.json",
                      help="settings file Apache passes as PBXCALL_CONFIG (default /etc/pbxcall/api.env.json)")
    conf.add_argument("--allow", action="append", metavar="CIDR",
                      help="network allowed besides loopback (repeatable); replaces the placeholder 192.0.2.0/24")
    conf.set_defaults(func=apache_config)
    cron = commands.add_parser("prune", help="apply retention now (for cron)")
    cron.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    cron.set_defaults(func=prune)
    audit = commands.add_parser("check", help="report every problem in the settings, with its fix")
    audit.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    audit.add_argument("--user", help="check access as this user (default: asterisk when it exists)")
    audit.set_defaults(func=check)
    place = commands.add_parser("call", help="place a call as the API would")
    place.add_argument("--from", dest="from_", required=True, help="the agent's extension")
    place.add_argument("--to", required=True, help="the number to call")
    place.add_argument("--external-id", help="the CRM's id for the call")
    when = place.add_mutually_exclusive_group()
    when.add_argument("--at", help="ISO 8601 time with offset, or Unix seconds")
    when.add_argument("--delay", help="seconds from now")
    place.add_argument("--key", help="whose rules and limits apply (a key name; default the first key)")
    place.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    place.set_defaults(func=call)
    php = commands.add_parser("import-php", help="print an old .api.env.php as JSON settings")
    php.add_argument("path", metavar="PATH.php", help="the old settings file")
    php.set_defaults(func=import_php)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print("pbxcall: %s" % (exc.detail or exc.message), file=sys.stderr)
        return 1
