"""A real Asterisk for the tests: pbxsim (``../shared/asterisk/pbxsim``, or ``$PBXSIM``).

pbxsim starts a throwaway Asterisk 22 that behaves like a small FreePBX: agents
1XX answer, 2XX never answer, 3XX are busy; a customer's behaviour is chosen by
the last digit of the number (0-4 answer, 5 busy, 6 never answers, 7 congestion,
8 answers and waits, 9 talks 10 s).  Its README is the fact sheet.

``Pbx(directory)`` starts one instance there; ``stop()`` stops it by its own pid
(pbxsim reads ``run/asterisk.pid`` and checks ``/proc/PID/cmdline``), and kills
the pid that ``start`` printed if it is still alive after that.
"""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time

from helpers import ROOT, keep

PBXSIM = os.environ.get("PBXSIM") or os.path.join(os.path.dirname(ROOT), "shared", "asterisk", "pbxsim")
#: pbxsim is a python3 script; called through the interpreter it works without its mode bits
LAUNCHER = ["/usr/bin/python3", PBXSIM]


def require():
    """At module level: fail under CI=true, else skip with one line, when pbxsim is missing."""
    import pytest

    if os.path.isfile(PBXSIM):
        return
    why = "the Asterisk simulator is not at %s (set PBXSIM to its path)" % PBXSIM
    if os.environ.get("CI") == "true":
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)


def local_epoch(stamp):
    """``2026-11-30 14:33:59.131`` (Asterisk's log and CDR, local time) -> epoch seconds."""
    whole, _, fraction = stamp.partition(".")
    return time.mktime(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) + float("0." + (fraction or "0"))


class Pbx:
    """One running pbxsim instance in ``directory``."""

    def __init__(self, directory, globals_=None, custom_dialplan=None):
        self.dir = directory
        self.globals = dict(globals_ or {})
        if custom_dialplan is not None:  # as an admin adds it to FreePBX's extensions_custom.conf
            os.makedirs(os.path.join(directory, "etc"), exist_ok=True)
            with open(os.path.join(directory, "etc", "extensions_custom.conf"), "w") as stream:
                stream.write("[from-internal-custom]\n\n" + custom_dialplan)
        self.start()

    def start(self, keep=False):
        """Start Asterisk (again); ``keep``: with the spool, logs and CDRs of the last run."""
        out = self._run("start", self.dir, "--timeout", "60", *(["--keep"] if keep else []), check=True)
        self.env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.env = {name: shlex.split(value)[0] for name, value in self.env.items()}
        self.outgoing = self.env["SPOOL"]
        self.done = self.env["DONE"]
        self.staging = self.env["STAGING"]
        self.pid = int(self.env["PID"])
        for name, value in sorted(self.globals.items()):
            self.cli("dialplan set global %s %s" % (name, value))

    def _run(self, verb, *args, check=False, timeout=90):
        proc = subprocess.run(LAUNCHER + [verb] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError("pbxsim %s failed (%d): %s" % (verb, proc.returncode, proc.stderr.decode()))
        return proc.stdout.decode("utf-8", "replace")

    def cli(self, command):
        """An Asterisk CLI command's output (``asterisk -rx``)."""
        return self._run("cli", self.dir, command, check=True)

    def cdr(self):
        """Every CDR row so far, as pbxsim prints them (one dict a row)."""
        return [json.loads(line) for line in self._run("cdr", self.dir).splitlines() if line.strip()]

    def log(self):
        with open(self.env["LOG"], encoding="utf-8", errors="replace") as stream:
            return stream.read()

    def log_lines(self, *needles):
        """(epoch, line) of the log lines that contain every needle."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("[") and all(needle in line for needle in needles):
                found.append((local_epoch(line[1:line.index("]")]), line))
        return found

    def channels(self):
        """Names of the channels that are up now."""
        return [line.split("!", 1)[0] for line in self.cli("core show channels concise").splitlines()
                if "!" in line]

    def stop(self):
        try:
            self._run("stop", self.dir)
        finally:
            try:
                keep("asterisk", self.log())
            except OSError:
                pass
            if _alive(self.pid):  # pbxsim gave up on it: the pid its start printed

                os.kill(self.pid, signal.SIGKILL)


def _alive(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as stream:
            return b"asterisk" in stream.read()
    except OSError:
        return False


@contextlib.contextmanager
def running(prefix, globals_=None, custom_dialplan=None):
    """A pbxsim instance in a fresh directory under /dev/shm for a test module; stopped
    (by its own pid) and removed afterwards, also when a test failed.  As on FreePBX
    the call files are Asterisk's: ``file_owner`` is ``asterisk`` when running as root."""
    import shutil
    import tempfile

    import apache

    base = tempfile.mkdtemp(prefix=prefix, dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    os.chmod(base, 0o755)
    instance = None
    try:
        instance = Pbx(os.path.join(base, "pbx"), globals_, custom_dialplan)
        instance.file_owner = apache.USER if apache.ensure_user() else None
        instance.state = os.path.join(os.path.dirname(instance.outgoing), "pbxcall")
        yield instance
    finally:
        if instance is not None:
            instance.stop()
        shutil.rmtree(base, ignore_errors=True)
