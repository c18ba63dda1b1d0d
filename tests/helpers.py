"""Test helpers that mirror Asterisk and run the real CGI script."""

import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Everything pbxcall says during the tests (responses, logs) is appended here, and
#: tests/test_zz_secrets.py greps it for every key the tests use.
TRANSCRIPTS = os.environ.setdefault("PBXCALL_TEST_TRANSCRIPTS", "/dev/shm/pbxcall-transcripts-%d" % os.getpid())
#: every key a test configures or sends
KNOWN_KEYS = ["crm-test-key-5f2a9c0e1b", "apache-test-key-0123456789", "k1-aaaaaaaa", "k2-bbbbbbbb", "another-key-456",
              "bench-key-0123456789"]


def keep(kind, data):
    """Append ``data`` (bytes or str) to the transcript file for ``kind``."""
    os.makedirs(TRANSCRIPTS, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    with open(os.path.join(TRANSCRIPTS, kind), "ab") as stream:
        stream.write(data + b"\n")


#: what Apache runs the CGI script with (the shebang); also reachable for "nobody"
SYSTEM_PYTHON = "/usr/bin/python3"
CGI_SCRIPT = os.path.join(ROOT, "cgi-bin", "pbxcall")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TEMPLATE_KEYWORDS = ["Channel", "CallerID", "Account", "Context", "Extension", "Priority",
                     "MaxRetries", "RetryTime", "WaitTime", "Set", "Set", "Archive"]


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as stream:
        return stream.read()


def spool_lines(text):
    """(keyword, value) pairs as Asterisk's pbx_spool.c reads a call file.

    Per line: ';' ends it; '#' after white space starts a comment; lines of 1024 bytes
    or more are dropped; 'Keyword: value' with both sides trimmed.  Anything the test
    template does not have shows up here as an extra pair.
    """
    pairs = []
    for line in text.split("\n"):
        if len(line.encode("utf-8")) + 1 >= 1024:
            continue
        line = line.split(";", 1)[0]
        for index, char in enumerate(line):
            if char == "#" and index and line[index - 1] in " \t":
                line = line[:index]
                break
        line = line.strip()
        if not line:
            continue
        keyword, sep, value = line.partition(":")
        pairs.append((keyword.strip(), value.strip()) if sep else (line, None))
    return pairs


def cgi_environ(query="", method="GET", auth="Bearer crm-test-key-5f2a9c0e1b", config=None, **extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "/api/make_call.php",
        "QUERY_STRING": query,
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if auth is not None:
        env["HTTP_AUTHORIZATION"] = auth
    if config is not None:
        env["PBXCALL_CONFIG"] = config
    env.update(extra)
    return env


def run_cgi(python, env, body=b"", timeout=30):
    """Run the CGI script as Apache would (shebang flags -IS) -> (status, headers, body, stderr)."""
    proc = subprocess.run([python, "-IS", CGI_SCRIPT], input=body, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    keep("cgi", proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr.decode()
    return parse_cgi_output(proc.stdout) + (proc.stderr.decode("utf-8", "replace"),)


def as_nobody():
    """preexec_fn: drop to the unprivileged 'nobody' when running as root."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)


class Inotify:
    """The kernel's view of a directory, as Asterisk's pbx_spool.c gets it (via ctypes).

    ``events()`` returns [(mask names, file name)] seen since the last call.
    """

    NAMES = {0x2: "MODIFY", 0x8: "CLOSE_WRITE", 0x20: "OPEN", 0x40: "MOVED_FROM",
             0x80: "MOVED_TO", 0x100: "CREATE", 0x200: "DELETE", 0x4: "ATTRIB"}

    def __init__(self, path):
        import ctypes
        import ctypes.util

        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, ctypes.get_errno()
        mask = 0xFFF  # IN_ALL_EVENTS
        assert self._libc.inotify_add_watch(self.fd, path.encode(), mask) >= 0

    def events(self):
        import struct

        found = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                found.append(({text for bit, text in self.NAMES.items() if mask & bit}, name))

    def close(self):
        os.close(self.fd)


def parse_cgi_output(stdout):
    """CGI output -> (status, headers lower-cased, body)."""
    head, _, payload = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.pop("status").split()[0])
    return status, headers, payload


def run_cgi_many(envs, python=SYSTEM_PYTHON, preexec_fn=None):
    """Start one real CGI process per environ, all at once -> [(status, headers, body, stderr)]."""
    procs = [subprocess.Popen([python, "-IS", CGI_SCRIPT], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec_fn)
             for env in envs]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        keep("cgi", out + err)
        assert proc.returncode == 0, err.decode()
        results.append(parse_cgi_output(out) + (err.decode("utf-8", "replace"),))
    return results


# -- Asterisk's side of the spool, as pbx/pbx_spool.c does it -------------------

def asterisk_attempt(outgoing, name, retries, retrytime=60, pid=4242, word="StartRetry"):
    """safe_append(): '\\n<word>: <pid> <retries> (<time>)\\n' appended, mtime moved on."""
    path = os.path.join(outgoing, name)
    now = int(time.time())
    with open(path, "a") as stream:
        stream.write("\n%s: %d %d (%d)\n" % (word, pid, retries, now + retrytime))
    os.utime(path, (now, now + retrytime))


def asterisk_finish(outgoing, name, status):
    """remove_from_queue() with Archive: yes: rename into outgoing_done/, then append Status."""
    done = os.path.join(os.path.dirname(outgoing), "outgoing_done")
    os.makedirs(done, 0o777, exist_ok=True)
    os.rename(os.path.join(outgoing, name), os.path.join(done, name))
    with open(os.path.join(done, name), "a") as stream:
        stream.write("Status: %s\n" % status)
