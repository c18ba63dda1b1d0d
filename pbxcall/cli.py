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

    notify [--once] [--config PATH]
        The webhook sender: writes call events to the outbox and delivers them,
        until stopped (systemd: packaging/pbxcall-notify.service), or one round with
        --once (cron, every minute).

    webhooks [list | resend [--all | NAME ...]] [--config PATH]
        The outbox: what waits to be sent and the dead letters; resend puts dead
        letters back (all, or by name) for another 24 hours of retries.

    enable [--config PATH] / disable
        Switch the endpoint over to pbxcall (its Apache config enabled, Apache
        reloaded) -- only when check finds no problem -- or back to the PHP script.
        Debian: a2enconf/a2disconf pbxcall; EL: /etc/httpd/conf.d/pbxcall.conf.

    dialplan
        Print pbxcall's dialplan context for the call outcome (setting "outcome"):
        append it to /etc/asterisk/extensions_custom.conf, asterisk -rx "dialplan
        reload", then set "outcome": true.  check verifies that Asterisk loaded it.

    import-php PATH.php [--output FILE]
        The old .api.env.php as JSON settings (read, never executed), printed or
        written to FILE (atomically, mode 0640, only when usable: a failed import
        never leaves an empty settings file).  Warns about settings it does not
        know; exit 1 if the file cannot be read or is not usable as settings.

Run as root, call, prune, notify, webhooks and serve --config first become the owner of the spool
(outgoing/'s owner: asterisk on FreePBX), so that every file they create is one the
web server can use.  From any directory: python3 /opt/pbxcall/pbxcall COMMAND.

Exit codes: 0 done, 1 the command failed (or found problems), 2 unusable arguments.
"""

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, List, Optional

from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .settings import Settings

DESCRIPTION = ("pbxcall's admin commands: serve, apache-config, prune, check, call, notify, webhooks, enable, "
               "disable, dialplan, import-php.")
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
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from .app import make_app

    settings = demo_settings(os.path.abspath(DEMO_DIR)) if args.demo else load(args)

    class QuietHandler(WSGIRequestHandler):
        """wsgiref's handler without its access log: pbxcall logs each request itself."""

        def log_message(self, format: str, *args: object) -> None:
            pass

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        """One thread a request: a slow client does not hold up the others."""

        daemon_threads = True

    try:
        server = make_server(args.host, args.port, make_app(settings), server_class=ThreadingServer,
                             handler_class=QuietHandler)
    except OSError as exc:
        print("pbxcall serve: cannot listen on %s:%d: %s -> choose another port with --port (0: any free one)"
              % (args.host, args.port, exc.strerror or exc), file=sys.stderr)
        return 1
    if not args.demo:
        become_spool_owner(settings.outgoing_path)
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
        networks = ", ".join(args.allow)
        text = re.sub(r"(?m)^(#\s+)192\.0\.2\.0/24( +)the network your CRM calls from \(documentation\n"
                      r"#\s+placeholder: replace it, or add more \"Require ip\" lines\)\n",
                      lambda found: "%s%s  the networks your CRM calls from (set by apache-config --allow)\n"
                      % (found.group(1), networks), text)
        text = re.sub(r"(?m)^(#\s+)192\.0\.2\.0/24( +)the network your CRM calls from \(placeholder\)\n",
                      lambda found: "%s%s  the networks your CRM calls from (set by apache-config --allow)\n"
                      % (found.group(1), networks), text)
    sys.stdout.write(text)
    return 0


def load(args: argparse.Namespace, as_spool_owner: bool = False) -> "Settings":
    """The settings; ``as_spool_owner``: then, if root, become the spool's owner."""
    from .settings import Settings, find_path

    settings = Settings.from_file(args.config or find_path())
    for warning in settings.warnings:
        print("pbxcall: warning: %s" % warning, file=sys.stderr)
    if as_spool_owner:
        become_spool_owner(settings.outgoing_path)
    return settings


def become_spool_owner(outgoing_path: str) -> None:
    """As root, switch to the user and group that own ``outgoing_path`` (asterisk on
    FreePBX) before anything touches the spool or the state: what a root-run command
    creates (state directory, dedupe, rate and index files, call files) is then owned
    as the web server would own it.  Left as root when root owns the spool."""
    if os.geteuid() != 0:
        return
    st = os.stat(outgoing_path)
    if st.st_uid == 0:
        return
    import pwd

    try:
        groups = os.getgrouplist(pwd.getpwuid(st.st_uid).pw_name, st.st_gid)
    except KeyError:
        groups = [st.st_gid]
    os.setgroups(groups)
    os.setgid(st.st_gid)
    os.setuid(st.st_uid)


def prune(args: argparse.Namespace) -> int:
    import time

    from .retention import run

    counts = run(load(args, as_spool_owner=True), time.time())
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

    settings = load(args, as_spool_owner=True)
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


def notify(args: argparse.Namespace) -> int:
    import signal

    from .log import Log
    from .notify import Sender

    settings = load(args, as_spool_owner=True)
    sender = Sender(settings, Log(sys.stderr, settings.log_file))
    if args.once:
        written, delivered, _ = sender.round()
        print("%d events written, %d delivered" % (written, delivered))
        return 0
    def stop(signum: int, frame: object) -> None:
        # Raised where the sender is (asleep in select, or between two files): every
        # outbox write is a temporary file and a rename, so nothing is left half-done.
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    try:
        sender.run()
    except KeyboardInterrupt:
        pass
    return 0


def webhooks(args: argparse.Namespace) -> int:
    import time

    from .outbox import Outbox

    settings = load(args, as_spool_owner=True)
    outbox = Outbox(settings.state_path)
    if args.action == "resend":
        names = [name for name, _ in outbox.dead_letters()] if args.all else args.names
        if not names:
            print("pbxcall webhooks: name the dead letters to resend, or --all", file=sys.stderr)
            return 2
        missing = [name for name in names if not outbox.resend(name, time.time())]
        print("%d dead letters back in the outbox" % (len(names) - len(missing)))
        for name in missing:
            print("pbxcall webhooks: no dead letter %s" % name, file=sys.stderr)
        return 1 if missing else 0
    for kind, entries in (("pending", outbox.pending()), ("dead", outbox.dead_letters())):
        for name, entry in entries:
            print("%s %s %s attempts=%d next_at=%s last_error=%s" % (
                kind, name, entry["url"], entry.get("attempts", 0),
                "-" if kind == "dead" else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["next_at"])),
                entry.get("last_error") or "-"))
    return 0


#: where a package puts pbxcall's Apache config: Debian's conf-available, EL's conf.d (as .disabled)
DEBIAN_CONF = "/etc/apache2/conf-available/pbxcall.conf"
EL_CONF = "/etc/httpd/conf.d/pbxcall.conf"


def _apache(*command: str) -> int:
    import subprocess

    return subprocess.run(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


#: where a running Apache keeps its pid: Debian, EL
APACHE_PIDS = ("/run/apache2/apache2.pid", "/var/run/apache2/apache2.pid", "/run/httpd/httpd.pid")


def _reload() -> str:
    """Reload Apache gracefully if it runs — never start one that is stopped ("graceful"
    would).  A config change needs a reload; a2enmod would need a restart."""
    import shutil

    running = False
    for path in APACHE_PIDS:
        try:
            with open(path) as stream:
                os.kill(int(stream.read().strip()), 0)
            running = True
            break
        except (OSError, ValueError):
            continue
    if not running:
        return "Apache is not running: it takes effect when Apache starts"
    for command in (["apache2ctl", "graceful"], ["apachectl", "graceful"]):
        if shutil.which(command[0]):
            return "Apache reloaded" if _apache(*command) == 0 else "Apache's reload failed: see its error log"
    return "reload Apache to make it take effect"


def enable(args: argparse.Namespace) -> int:
    import shutil

    from .check import check as run_check

    problems = [text for kind, text in run_check(args.config, _default_user()) if kind == "problem"]
    if problems:
        for text in problems:
            print("problem: %s" % text)
        print("pbxcall enable: refused while check finds problems; the endpoint is unchanged", file=sys.stderr)
        return 1
    if os.path.exists(DEBIAN_CONF) and shutil.which("a2enconf"):
        if _apache("a2enconf", "-q", "pbxcall") != 0:
            print("pbxcall enable: a2enconf pbxcall failed", file=sys.stderr)
            return 1
        if shutil.which("apache2ctl") and _apache("apache2ctl", "configtest") != 0:
            _apache("a2disconf", "-q", "pbxcall")
            print("pbxcall enable: apache2ctl configtest fails with pbxcall's config: left disabled", file=sys.stderr)
            return 1
    elif os.path.exists(EL_CONF + ".disabled"):
        os.rename(EL_CONF + ".disabled", EL_CONF)
    else:
        print("pbxcall enable: no packaged Apache config (%s or %s.disabled); see README: manual install"
              % (DEBIAN_CONF, EL_CONF), file=sys.stderr)
        return 1
    print("pbxcall is now serving /api/make_call.php (%s)" % _reload())
    return 0


def disable(args: argparse.Namespace) -> int:
    import shutil

    if os.path.exists(DEBIAN_CONF) and shutil.which("a2disconf"):
        _apache("a2disconf", "-q", "pbxcall")
    elif os.path.exists(EL_CONF):
        os.rename(EL_CONF, EL_CONF + ".disabled")
    print("the previous /api/make_call.php serves the URL again (%s)" % _reload())
    return 0


def _default_user() -> "Optional[str]":
    import pwd

    try:
        return pwd.getpwnam("asterisk").pw_name
    except KeyError:
        return None


def dialplan(args: argparse.Namespace) -> int:
    from .outcome import DIALPLAN

    sys.stdout.write(DIALPLAN)
    return 0


def import_php(args: argparse.Namespace) -> int:
    import json

    from .fileio import read_file
    from .phpenv import PhpSyntaxError, loads
    from .settings import MAX_FILE, Settings

    try:
        data = loads(read_file(args.path, MAX_FILE).decode("utf-8"))
    except (OSError, UnicodeDecodeError, PhpSyntaxError) as exc:
        print("pbxcall import-php: cannot read %s: %s" % (args.path, exc), file=sys.stderr)
        return 1
    try:
        settings = Settings.from_mapping(data, args.path)
    except ConfigError as exc:
        print("pbxcall import-php: %s -> nothing written; fix it in %s (or in the JSON afterwards) and run "
              "import-php again" % (exc.detail, args.path), file=sys.stderr)
        return 1
    for warning in settings.warnings:
        print("pbxcall import-php: warning: %s (pbxcall ignores it; see README: Settings)" % warning,
              file=sys.stderr)
    text = json.dumps(data, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        from .fileio import write_whole

        write_whole(os.path.abspath(args.output), text.encode("utf-8"), 0o640, keep_owner=True)
    except OSError as exc:
        print("pbxcall import-php: cannot write %s: %s" % (args.output, exc.strerror or exc), file=sys.stderr)
        return 1
    print("pbxcall import-php: wrote %s (mode 0640; FreePBX: chown root:asterisk %s)" % (args.output, args.output),
          file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="python3 -m pbxcall", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version="pbxcall %s" % __version__)
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
    send = commands.add_parser("notify", help="the webhook sender (long-running, or --once)")
    send.add_argument("--once", action="store_true", help="one round, then exit (for cron)")
    send.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    send.set_defaults(func=notify)
    hooks = commands.add_parser("webhooks", help="list the webhook outbox and dead letters, or resend them")
    hooks.add_argument("action", nargs="?", choices=["list", "resend"], default="list")
    hooks.add_argument("names", nargs="*", metavar="NAME", help="dead letters to resend (as listed)")
    hooks.add_argument("--all", action="store_true", help="resend every dead letter")
    hooks.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    hooks.set_defaults(func=webhooks)
    on = commands.add_parser("enable", help="switch the endpoint over to pbxcall (after check)")
    on.add_argument("--config", help="settings file (default: PBXCALL_CONFIG or the usual places)")
    on.set_defaults(func=enable)
    off = commands.add_parser("disable", help="give the endpoint back to the previous script")
    off.set_defaults(func=disable)
    plan = commands.add_parser("dialplan", help="print the dialplan context for the call outcome")
    plan.set_defaults(func=dialplan)
    php = commands.add_parser("import-php", help="turn an old .api.env.php into JSON settings")
    php.add_argument("path", metavar="PATH.php", help="the old settings file")
    php.add_argument("--output", metavar="FILE",
                     help="write the JSON settings to FILE (atomically, only when usable) instead of printing them")
    php.set_defaults(func=import_php)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print("pbxcall: %s" % (exc.detail or exc.message), file=sys.stderr)
        return 1
