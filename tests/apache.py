"""A real Apache (Debian's apache2) on a loopback port, for the tests.

Each server gets its own directory with a copy of the install tree (cgi-bin/,
pbxcall/, apache/ — as README's install step copies it to /opt/pbxcall; from the work
tree, or ``source``: an unpacked release tarball), a spool and
a settings file, and a main config that loads the modules and includes one of the
shipped files from apache/ with only its paths substituted.  As root the server runs
as the unprivileged user `asterisk`, created here if missing (FreePBX runs Apache as
asterisk).  It is started in the foreground and stopped by its own pid.
"""

import http.client
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from helpers import ROOT, keep

APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
USER = "asterisk"
SHIPPED_INSTALL_DIR = "/opt/pbxcall"
SHIPPED_CONFIG = "/etc/pbxcall/api.env.json"
SHIPPED_NETWORK = "192.0.2.0/24"
KEY = "apache-test-key-0123456789"


def available():
    return os.path.exists(APACHE) and os.path.exists(os.path.join(MODULES, "mod_cgid.so"))


def ensure_user():
    """(uid, gid) of `asterisk`, created as a system user when missing; None unless root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Apache:
    """``Apache(style)`` with style ``2.4``, ``2.4.6`` or ``wsgi``; ``mpm`` event or prefork."""

    def __init__(self, style="2.4", mpm="event", cgi_module="cgid", edit=None, settings=None, site=None,
                 base_dir="/dev/shm", extra_modules=(), extra_conf="", source=ROOT):
        self.style = style
        self.extra_modules = list(extra_modules)  # [(module name, .so path)]
        self.extra_conf = extra_conf  # more directives, before the site config
        self.base = tempfile.mkdtemp(prefix="pbxcall-apache-", dir=base_dir)
        os.chmod(self.base, 0o755)
        self.owner = ensure_user()
        self.install = os.path.join(self.base, "opt", "pbxcall")
        for part in ("cgi-bin", "pbxcall", "apache"):
            shutil.copytree(os.path.join(source, part), os.path.join(self.install, part),
                            ignore=shutil.ignore_patterns("__pycache__"))
        # README's install step: byte-compile as root, or every CGI request compiles pbxcall
        subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", os.path.join(self.install, "pbxcall")],
                       check=True)
        self.spool = os.path.join(self.base, "spool")
        self.outgoing = os.path.join(self.spool, "outgoing")
        self.tmp = os.path.join(self.spool, "tmp")
        for path in (self.outgoing, self.tmp):
            os.makedirs(path)
            self.give(path, 0o755, to_user=True)
        self.give(self.spool, 0o755, to_user=True)  # like /var/spool/asterisk
        self.config = os.path.join(self.base, "etc", "api.env.json")
        os.makedirs(os.path.dirname(self.config))
        self.give(os.path.dirname(self.config), 0o750)
        self.write_settings(settings or {})
        self.port = free_port()
        self.error_log = os.path.join(self.base, "error.log")
        self.conf = os.path.join(self.base, "httpd.conf")
        self.site_conf = self.shipped_config(edit) if site is None else self.write_site(site(self))
        other = os.path.join(self.base, "other.cgi")  # prints whether Authorization reached it
        with open(other, "w") as stream:
            stream.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                         "if [ -n \"$HTTP_AUTHORIZATION\" ]; then echo has-authorization; else echo none; fi\n")
        os.chmod(other, 0o755)
        with open(self.conf, "w") as stream:
            stream.write(self.main_config(mpm, cgi_module))
        self.proc = None

    # -- set-up ------------------------------------------------------------
    def give(self, path, mode, to_user=False):
        """root:asterisk (settings, as README's install step says), or asterisk's own (spool)."""
        os.chmod(path, mode)
        if self.owner:
            os.chown(path, self.owner[0] if to_user else 0, self.owner[1])

    def write_settings(self, overrides):
        data = {"api_key": KEY, "outgoing_path": self.outgoing, "outgoing_temp_path": self.tmp,
                "rate_limit": None, "dedupe_seconds": 0}
        data.update(overrides)
        with open(self.config, "w") as stream:
            json.dump(data, stream)
        self.give(self.config, 0o640)

    def shipped_config(self, edit):
        name = {"2.4": "pbxcall.conf", "2.4.6": "pbxcall-2.4.6.conf", "wsgi": "pbxcall-wsgi.conf"}[self.style]
        with open(os.path.join(ROOT, "apache", name)) as stream:
            text = stream.read()
        # Only paths are substituted; the network placeholder stays as shipped.
        text = text.replace(SHIPPED_INSTALL_DIR, self.install).replace(SHIPPED_CONFIG, self.config)
        if self.owner is None:  # not root: mod_wsgi cannot switch users
            text = text.replace(" user=asterisk group=asterisk", "")
        if edit:
            text = edit(text)
        return self.write_site(text)

    def write_site(self, text):
        path = os.path.join(self.base, "site.conf")
        with open(path, "w") as stream:
            stream.write(text)
        return path

    def main_config(self, mpm, cgi_module):
        modules = ["mpm_" + mpm, "authz_core", "authz_host", "alias", "env", "setenvif", "headers"]
        if self.style == "wsgi" or cgi_module:  # None: no CGI module at all (a2dismod cgi cgid)
            modules.append("wsgi" if self.style == "wsgi" else cgi_module)
        lines = ["LoadModule %s_module %s/mod_%s.so" % (name, MODULES, name) for name in modules]
        lines += ["LoadModule %s %s" % pair for pair in self.extra_modules]
        lines += [
            "ServerRoot %s" % self.base,
            "ServerName localhost",
            "Listen 127.0.0.1:%d" % self.port,
            "PidFile %s/httpd.pid" % self.base,
            "DefaultRuntimeDir %s" % self.base,
            "ErrorLog %s" % self.error_log,
            "LogLevel warn",
            "DocumentRoot %s" % self.base,
            "<Directory />\n    Require all denied\n</Directory>",
            "ScriptSock %s/cgid.sock" % self.base if "cgid" in modules else "",
            "Alias /other.cgi %s/other.cgi" % self.base,  # another CGI script on the same server
            "<Location /other.cgi>\n    SetHandler cgi-script\n    Options +ExecCGI\n    Require all granted\n"
            "</Location>",
            "WSGISocketPrefix %s/wsgi" % self.base
            if self.style == "wsgi" or any(name == "wsgi_module" for name, _ in self.extra_modules) else "",
            "StartServers 2\nMaxRequestWorkers 64\nServerLimit 64" if mpm == "prefork" else "",
            self.extra_conf,
            "Include %s" % self.site_conf,
        ]
        if self.owner:
            lines.insert(0, "User %s\nGroup %s" % (USER, USER))
        return "\n".join(lines) + "\n"

    # -- life --------------------------------------------------------------
    def start(self):
        check = subprocess.run([APACHE, "-t", "-f", self.conf], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        if check.returncode:
            raise RuntimeError("apache2 -t refused the config:\n" + check.stdout.decode())
        self.proc = subprocess.Popen([APACHE, "-DFOREGROUND", "-f", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     # Apache signals its whole process group when it stops.
                                     start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("apache2 exited: %s\n%s" % (self.proc.stderr.read().decode(), self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("apache2 did not listen on %d" % self.port)

    def stop(self):
        if os.path.exists(self.error_log):
            keep("apache", self.log())
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # its own pid: graceful stop of this server only
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- use ---------------------------------------------------------------
    def request(self, path, method="GET", body=None, headers=None, source="127.0.0.1", auth=True):
        """-> (status, headers dict lower-cased, body bytes)"""
        headers = dict(headers or {})
        if auth is True:
            headers["Authorization"] = "Bearer " + KEY
        elif auth:
            headers["Authorization"] = auth
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            body = response.read()
            keep("apache-responses", b"%d %r " % (response.status, response.getheaders()) + body)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            conn.close()

    def calls(self):
        return sorted(os.listdir(self.outgoing))

    def log(self):
        with open(self.error_log, errors="replace") as stream:
            return stream.read()
