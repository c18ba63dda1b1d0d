"""``python3 -m pbxcall check``: everything that would stop a call, found before a CRM does.

Loads the settings exactly as the CGI script does and looks at what they point to,
as the user Apache runs as.  Each finding is one line with its fix: a *problem*
(pbxcall will fail, or is unsafe) or a *hint* (works, could be better).
"""

import json
import os
import stat
from typing import Callable, Dict, List, Optional, Tuple

from .errors import ConfigError
from .settings import Settings, fallback_staging, find_path

Finding = Tuple[str, str]  # ("problem" | "hint", text with the fix)
RECOMMENDED_CONTEXT = "originate-skipvm"
MIN_KEY_LENGTH = 16
KEYGEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp")


class UnknownUser(ValueError):
    """--user names no account here."""


def mounts(mountinfo: str = "/proc/self/mountinfo") -> List[Tuple[str, str]]:
    """(mount id, mount point) of every mount.  Bind mounts have their own id but share
    ``st_dev`` with their source, and rename() across them still fails with EXDEV."""
    found = []
    with open(mountinfo) as stream:
        for line in stream:
            fields = line.split()
            if len(fields) > 4:
                point = fields[4]
                for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
                    point = point.replace(escape, char)
                found.append((fields[0], point))
    return found


def mount_of(path: str, table: List[Tuple[str, str]]) -> str:
    """The id of the mount that holds ``path`` (its nearest existing ancestor if missing)."""
    path = os.path.realpath(path)
    best = ("", "")
    for mount_id, point in table:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[1]):
            best = (mount_id, point)  # later lines win: the mount on top
    return best[0]


def as_user(user: Optional[str], probe: Callable[[], Dict[str, bool]]) -> Dict[str, bool]:
    """Run ``probe`` with ``user``'s identity (forked, as root) and return its result."""
    import pwd

    try:
        entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    except KeyError:
        raise UnknownUser(user)
    if entry.pw_uid == os.geteuid():
        return probe()
    if os.geteuid() != 0:
        raise PermissionError("checking as %s needs root" % user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        try:
            os.close(read_end)
            os.setgroups(os.getgrouplist(entry.pw_name, entry.pw_gid))
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.write(write_end, json.dumps(probe()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks).decode() or "{}")


def _access(paths: Dict[str, int]) -> Callable[[], Dict[str, bool]]:
    def probe() -> Dict[str, bool]:
        return {path: os.access(path, mode) for path, mode in paths.items()}
    return probe


def check(path: Optional[str] = None, user: Optional[str] = None) -> List[Finding]:
    """Every finding for the settings at ``path`` (default: where the CGI looks), as ``user``."""
    findings: "List[Finding]" = []

    def problem(text: str) -> None:
        findings.append(("problem", text))

    try:
        path = path or find_path()
    except ConfigError as exc:
        return [("problem", "%s -> create /etc/pbxcall/api.env.json from .api.env.example.json" % exc.detail)]
    try:
        st = os.stat(path)
    except OSError as exc:
        return [("problem", "settings file %s: %s -> create it from .api.env.example.json" % (path, exc.strerror))]
    if st.st_mode & stat.S_IROTH:
        problem("settings file %s is readable by every user (it holds the API keys) -> chmod 640 %s; "
                "chown root:%s %s" % (path, path, user or "asterisk", path))
    if not as_user(user, _access({path: os.R_OK}))[path]:
        problem("settings file %s is not readable by %s -> chown root:%s %s; chmod 640 %s"
                % (path, user or "this user", user or "asterisk", path, path))
    try:
        settings = Settings.from_file(path)
    except ConfigError as exc:
        problem("%s -> fix the setting; pbxcall answers 500 config_error until then" % exc.detail)
        return findings
    for warning in settings.warnings:
        problem("%s -> remove it or correct its name (see README: Settings)" % warning)
    for key in settings.keys:
        if len(key.secret) < MIN_KEY_LENGTH:
            # The API serves it (a CRM's existing key must keep working after a drop-in
            # migration): a hint to rotate, not a problem.
            findings.append(("hint", "key %r has %d characters -> when you next rotate it, use %d or more "
                                     "random ones: %s" % (key.name, len(key.secret), MIN_KEY_LENGTH, KEYGEN)))
    findings.extend(_directories(settings, user))
    findings.extend(_ownership(settings.state_path, user))
    findings.extend(_cgi_module())
    if settings.outcome:
        findings.extend(outcome_finding(ASTERISK_CLI))
    if settings.targets or settings.callback_url_prefixes or any(key.webhooks for key in settings.keys):
        findings.extend(webhook_findings(settings.state_path, time_now()))
    if settings.channel_context != RECOMMENDED_CONTEXT:
        findings.append(("hint", "channel_context is %s -> %s keeps the agent's voicemail from answering the "
                                 "first leg" % (json.dumps(settings.channel_context),
                                                _setting("channel_context", RECOMMENDED_CONTEXT))))
    return findings


def _directories(settings: Settings, user: Optional[str]) -> List[Finding]:
    findings: "List[Finding]" = []
    writable = {"outgoing_path": settings.outgoing_path, "outgoing_temp_path": settings.outgoing_temp_path}
    state_parent = settings.state_path if os.path.isdir(settings.state_path) else os.path.dirname(
        settings.state_path)
    writable["state_path"] = state_parent
    for name in ("log_file", "audit_log"):
        value = getattr(settings, name)
        if value:
            writable[name] = os.path.dirname(os.path.abspath(value))
    missing = [(name, path) for name, path in writable.items() if not os.path.isdir(path)]
    for name, path in missing:
        findings.append(("problem", "%s: directory %s does not exist -> mkdir -p %s; chown %s %s"
                         % (name, path, path, user or "asterisk", path)))
    access = as_user(user, _access({path: os.W_OK | os.X_OK for name, path in writable.items()
                                    if (name, path) not in missing}))
    for name, path in writable.items():
        if access.get(path) is False:
            findings.append(("problem", "%s: %s is not writable by %s -> chown %s %s (FreePBX: asterisk owns "
                                        "/var/spool/asterisk)" % (name, path, user or "this user",
                                                                  user or "asterisk", path)))
    table = mounts()
    outgoing_mount = mount_of(settings.outgoing_path, table)
    spool = os.path.dirname(os.path.abspath(settings.outgoing_path))
    suggested = {"outgoing_temp_path": fallback_staging(settings.outgoing_path),
                 "state_path": os.path.join(spool, "pbxcall")}
    for name, path in (("outgoing_temp_path", settings.outgoing_temp_path), ("state_path", settings.state_path)):
        if mount_of(path, table) != outgoing_mount:
            findings.append(("problem", "%s %s is on another mount than outgoing_path %s: rename() fails with "
                                        "EXDEV -> %s" % (name, path, settings.outgoing_path,
                                                         _same_mount_fix(name, path, suggested[name], spool, table,
                                                                         outgoing_mount))))
    def private(path: str) -> bool:
        path = os.path.realpath(path)
        return any(path == d or path.startswith(d + "/") for d in PRIVATE_TMP_DIRS)
    if private(settings.outgoing_path):
        findings.append(("problem", "outgoing_path %s is under %s, which is private to Apache (systemd "
                                    "PrivateTmp=true): Asterisk never sees what Apache writes there -> "
                                    "\"outgoing_path\": \"/var/spool/asterisk/outgoing\" (Asterisk's spool)"
                         % (settings.outgoing_path, " or ".join(PRIVATE_TMP_DIRS))))
    elif private(settings.outgoing_temp_path):
        findings.append(("problem", "outgoing_temp_path %s is private to Apache (systemd PrivateTmp=true), "
                                    "another mount than the spool -> %s"
                         % (settings.outgoing_temp_path, _setting("outgoing_temp_path",
                                                                  suggested["outgoing_temp_path"]))))
    return findings


def _setting(name: str, value: str) -> str:
    """A settings line to paste into the JSON file: ``"name": "value"`` (JSON quoting)."""
    return "%s: %s" % (json.dumps(name), json.dumps(value))


def _same_mount_fix(name: str, path: str, suggested: str, spool: str, table: List[Tuple[str, str]],
                    outgoing_mount: str) -> str:
    """The fix for ``path`` being on another mount: the suggested place when it is on the
    spool's mount and is not ``path`` itself, else a directory to create there."""
    if os.path.realpath(suggested) != os.path.realpath(path) and mount_of(suggested, table) == outgoing_mount:
        return _setting(name, suggested)
    return ("create a directory on the spool's filesystem (mkdir %s; it must not be a separate mount) and set %s"
            % (os.path.join(spool, "pbxcall-" + name.split("_")[0]), _setting(name, os.path.join(
                spool, "pbxcall-" + name.split("_")[0]))))


def _ownership(state_path: str, user: Optional[str]) -> List[Finding]:
    """Anything under ``state_path`` not owned by ``user``: a root-run command before
    pbxcall switched users, or a hand-made file.  The web server cannot write it."""
    import pwd

    if not os.path.isdir(state_path):
        return []
    try:
        entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    except KeyError:
        return []
    wrong = []
    for directory, names, files in os.walk(state_path):  # symlinks to directories are not walked into
        for name in [""] + names + files:
            path = os.path.join(directory, name) if name else directory
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_uid != entry.pw_uid:
                wrong.append((path, st.st_uid))
    if not wrong:
        return []
    import grp

    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    path, uid = wrong[0]
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    return [("problem", "%d file%s under state_path %s not owned by %s (e.g. %s, owned by %s): the web server "
                        "cannot update them and answers 500 -> chown -R %s:%s %s"
             % (len(wrong), " is" if len(wrong) == 1 else "s are", state_path, entry.pw_name, path, owner,
                entry.pw_name, group, state_path))]


#: how to ask Apache for its modules and included files: Debian/FreePBX 17, EL7/FreePBX 16
APACHE_COMMANDS = (["/usr/sbin/apache2ctl"], ["/usr/sbin/httpd"])


def _cgi_module() -> List[Finding]:
    for command in APACHE_COMMANDS:
        if os.path.exists(command[0]):
            return cgi_module_finding(command)
    return []


def cgi_module_finding(command: List[str]) -> List[Finding]:
    """A problem when Apache (``command``, e.g. ``apache2ctl``) includes a pbxcall CGI
    config (a ScriptAlias of /api/make_call.php) but has neither mod_cgid nor mod_cgi
    loaded: the shipped configs then answer 503.  Nothing when Apache cannot be asked."""
    import subprocess

    def ask(*args: str) -> str:
        try:
            return subprocess.run(command + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  universal_newlines=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    includes = [line.split(")", 1)[-1].strip() for line in ask("-t", "-D", "DUMP_INCLUDES").splitlines()
                if line.strip().startswith("(")]
    ours = []
    for path in includes:
        try:
            with open(path, errors="replace") as stream:
                text = stream.read()
        except OSError:
            continue
        if any(line.split()[:2] == ["ScriptAlias", "/api/make_call.php"] for line in text.splitlines()
               if line.strip()):
            ours.append(path)
    modules = ask("-M")
    if not ours or "Loaded Modules" not in modules or " cgid_module " in modules or " cgi_module " in modules:
        return []
    debian = "apache2" in command[0]
    fix = ("a2enmod cgid && systemctl restart apache2 (a restart: after a2enmod a reload leaves mod_cgid "
           "without its daemon)" if debian else
           "LoadModule cgi_module modules/mod_cgi.so in /etc/httpd/conf.modules.d/01-cgi.conf && "
           "systemctl restart httpd")
    return [("problem", "Apache includes pbxcall's CGI config (%s) but has neither mod_cgid nor mod_cgi loaded: "
                        "the endpoints answer 503 service_unavailable -> %s" % (ours[0], fix))]


#: how to run an Asterisk CLI command (the command follows as one argument)
ASTERISK_CLI = ["/usr/sbin/asterisk", "-rx"]


def outcome_finding(cli: List[str]) -> List[Finding]:
    """With ``outcome`` on, Asterisk must have pbxcall's dialplan loaded: every call
    file sends the answered agent through it.  Asked with ``cli`` + ``dialplan show``."""
    import subprocess

    from .outcome import CONTEXT, HANDLER

    fix = ("python3 /opt/pbxcall/pbxcall dialplan >> /etc/asterisk/extensions_custom.conf && "
           "asterisk -rx 'dialplan reload'")
    try:
        out = subprocess.run(cli + ["dialplan show %s" % CONTEXT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [("problem", "outcome is on, but Asterisk could not be asked whether pbxcall's dialplan is loaded "
                            "(%s): calls fail if it is not -> run check where asterisk -rx works, or %s"
                 % (exc, fix))]
    missing = [what for what, found in (("the context [%s]" % CONTEXT, "Context '%s'" % CONTEXT in out),
                                        ("its '%s' extension" % HANDLER, "'%s' =>" % HANDLER in out),
                                        ("its '_[0-9+*#].' extension", "'_[0-9+*#].' =>" in out)) if not found]
    if not missing:
        return []
    return [("problem", "outcome is on, but Asterisk has not loaded %s: every answered call would fail -> %s "
                        "(or set \"outcome\": false)" % (", ".join(missing), fix))]


def time_now() -> float:
    import time

    return time.time()


#: a sender that has not looked for this long is not running
SENDER_SILENT = 180.0
#: an entry this old still in the outbox: the receiver has been failing for a while
OUTBOX_LATE = 600.0


def webhook_findings(state_path: str, now: float) -> List[Finding]:
    """The webhook sender's health: running, keeping up, no dead letters."""
    from .notify import HEARTBEAT
    from .outbox import Outbox

    findings: "List[Finding]" = []
    try:
        silent = now - os.stat(os.path.join(state_path, HEARTBEAT)).st_mtime
    except OSError:
        silent = None
    if silent is None or silent > SENDER_SILENT:
        findings.append(("problem", "webhooks are set but no sender is running (%s) -> systemctl enable --now "
                                    "pbxcall-notify (packaging/pbxcall-notify.service), or from cron every minute: "
                                    "python3 /opt/pbxcall/pbxcall notify --once"
                         % ("never ran" if silent is None else "last seen %d s ago" % silent)))
    outbox = Outbox(state_path)
    pending = [entry for _, entry in outbox.pending()]
    late = [entry for entry in pending if now - entry.get("created", now) > OUTBOX_LATE]
    if late:
        oldest = max(now - entry["created"] for entry in late)
        findings.append(("problem", "the webhook outbox is growing: %d waiting, the oldest for %d min (last error: "
                                    "%s) -> is the receiver up? python3 /opt/pbxcall/pbxcall webhooks"
                         % (len(pending), oldest // 60, late[0].get("last_error") or "-")))
    dead = list(outbox.dead_letters())
    if dead:
        findings.append(("problem", "%d webhook dead letter%s (e.g. %s: %s) -> python3 /opt/pbxcall/pbxcall webhooks; "
                                    "once the receiver is fixed: python3 /opt/pbxcall/pbxcall webhooks resend --all"
                         % (len(dead), "" if len(dead) == 1 else "s", dead[0][0], dead[0][1].get("last_error"))))
    return findings
