"""The CGI script as a real subprocess with a CGI environment, under every Python.

pyenv's interpreters 3.6 to 3.13 (FreePBX 16 runs 3.6, FreePBX 17 runs 3.11) and
Debian's /usr/bin/python3, which Apache runs through the script's shebang.  Under
CI all eight minor versions must be present: a missing one fails, never skips.
"""

import glob
import json
import os
import subprocess
import time

import pytest

from helpers import CGI_SCRIPT, SYSTEM_PYTHON, cgi_environ, fixture, run_cgi

MINORS = ["3.%d" % minor for minor in range(6, 14)]


def pyenv_interpreters():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = {}
    for path in sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3"))):
        version = os.path.basename(os.path.dirname(os.path.dirname(path)))
        minor = ".".join(version.split(".")[:2])
        if minor in MINORS and version.replace(".", "").isdigit():
            found[minor] = path
    return found


INTERPRETERS = pyenv_interpreters()
PARAMS = [pytest.param(INTERPRETERS.get(minor), id=minor) for minor in MINORS]
PARAMS.append(pytest.param(SYSTEM_PYTHON, id="debian"))


@pytest.fixture(params=PARAMS)
def python(request):
    path = request.param
    if path is None or not os.path.exists(path):
        message = "Python %s is not installed" % request.node.callspec.id
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the CGI script under every Python 3.6-3.13")
        pytest.skip(message)
    return path


def test_seed_request(python, spool, write_config):
    status, headers, body, stderr = run_cgi(python, cgi_environ(
        "from=101&to=89998887766&external_id=crm-2345", config=write_config()))
    name = spool.calls()[0]
    assert status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert body.decode() == ('{"status": "OK", "from": "101", "to": "89998887766", "external_id": "crm-2345", '
                             '"filename": "%s", "file": "%s"}' % (name, name))
    assert spool.only_call() == fixture("seed.call")
    assert "outcome=ok" in stderr and "crm-test-key-5f2a9c0e1b" not in stderr


def test_post_json_and_errors(python, spool, write_config):
    config = write_config()
    body = json.dumps({"from": 30, "to": "89229954595"}).encode()
    status, _, payload, _ = run_cgi(python, cgi_environ(
        "", method="POST", config=config, CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body))), body)
    assert status == 200 and spool.only_call() == fixture("legacy.call")
    status, headers, payload, stderr = run_cgi(python, cgi_environ("from=101&to=1", auth=None, config=config))
    assert (status, json.loads(payload.decode())["code"]) == (401, "unauthorized")
    assert headers["www-authenticate"] == 'Bearer realm="pbxcall"' and "CGIPassAuth On" in stderr
    status, _, payload, _ = run_cgi(python, cgi_environ("from=101&to=1", config=config))
    assert (status, json.loads(payload.decode())["code"]) == (400, "invalid_to")
    status, _, payload, _ = run_cgi(python, cgi_environ("", config=os.path.join(spool.base, "nope.json")))
    assert (status, json.loads(payload.decode())["error"]) == (500, "Configuration file not found")
    assert len(spool.calls()) == 1


def test_legacy_php_settings(python, spool, tmp_path):
    path = tmp_path / ".api.env.php"
    path.write_text("<?php\n// old file\nreturn array('api_key' => 'crm-test-key-5f2a9c0e1b', 'outgoing_path' => '%s',"
                    " 'outgoing_temp_path' => '%s', 'file_owner' => null,);\n" % (spool.outgoing, spool.tmp))
    status, _, _, _ = run_cgi(python, cgi_environ("from=30&to=89229954595", config=str(path)))
    assert status == 200 and spool.only_call() == fixture("legacy.call")


def test_shebang_runs_the_script_directly(spool, write_config):
    """Executed like Apache does: the kernel reads '#!/usr/bin/python3 -IS'."""
    with open(CGI_SCRIPT) as stream:
        assert stream.readline() == "#!/usr/bin/python3 -IS\n"
    assert os.access(CGI_SCRIPT, os.X_OK)
    proc = subprocess.run([CGI_SCRIPT], env=cgi_environ("from=30&to=89229954595", config=write_config()),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    assert proc.stdout.startswith(b"Status: 200 OK\r\n")
    assert spool.only_call() == fixture("legacy.call")


def test_broken_install_still_answers_json(tmp_path, spool, write_config):
    """A package that fails to import gives the generic 500 JSON, the traceback on stderr."""
    copy = tmp_path / "install"
    (copy / "cgi-bin").mkdir(parents=True)
    (copy / "pbxcall").mkdir()
    (copy / "pbxcall" / "__init__.py").write_text("")
    (copy / "pbxcall" / "app.py").write_text("raise ImportError('broken on purpose')\n")
    script = copy / "cgi-bin" / "pbxcall"
    script.write_text(open(CGI_SCRIPT).read())
    proc = subprocess.run([SYSTEM_PYTHON, "-IS", str(script)], env=cgi_environ("", config=write_config()),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 500 ")
    assert json.loads(body.decode()) == {"status": "ERROR", "error": "Internal error", "code": "internal_error"}
    assert b"broken on purpose" in proc.stderr and b"Traceback" not in proc.stdout


def test_every_python_is_found_under_ci():
    if os.environ.get("CI") == "true":
        assert set(INTERPRETERS) == set(MINORS)


def test_script_found_through_a_symlink_and_a_relative_path(spool, write_config, tmp_path):
    """An admin may link the script elsewhere; it still finds its package."""
    link = tmp_path / "bin" / "make_call"
    link.parent.mkdir()
    os.symlink(os.path.relpath(CGI_SCRIPT, str(link.parent)), str(link))
    env = cgi_environ("from=30&to=89229954595", config=write_config())
    proc = subprocess.run([SYSTEM_PYTHON, "-IS", "bin/make_call"], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    assert proc.stdout.startswith(b"Status: 200 OK\r\n"), proc.stderr
    assert spool.only_call() == fixture("legacy.call")


@pytest.mark.parametrize("extra, used", [("", "pbxcall.callfile"), ("&delay=60", "pbxcall.schedule")])
def test_a_request_imports_neither_os_nor_re_nor_typing(spool, write_config, extra, used):
    """The fast path stays fast: these imports cost a CGI process milliseconds."""
    probe = ("import sys, posix\n"
             "real_exit = posix._exit\n"
             "def report(code):\n"
             "    sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
             "    sys.stderr.flush()\n"
             "    real_exit(code)\n"
             "posix._exit = report\n"
             "__file__ = %r\n"
             "exec(compile(open(%r).read(), %r, 'exec'))\n" % (CGI_SCRIPT, CGI_SCRIPT, CGI_SCRIPT))
    env = cgi_environ("from=101&to=89998887766&external_id=crm-2345" + extra, config=write_config(
        rate_limit={"per_key": "60/minute", "per_from": "10/minute"}, dedupe_seconds=10))
    proc = subprocess.run([SYSTEM_PYTHON, "-IS", "-c", probe], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=True)
    assert proc.stdout.startswith(b"Status: 200 OK\r\n")
    modules = set(proc.stderr.decode().split("MODULES ")[1].split())
    assert used in modules
    assert not modules & {"os", "re", "typing", "json", "_json", "wsgiref", "hashlib", "ipaddress", "datetime", "enum"}


def test_lifecycle_under_every_python(python, spool, write_config):
    """Scheduling, dedupe, status and cancel: the code paths beyond make_call, per interpreter."""
    config = write_config(dedupe_seconds=10, rate_limit={"per_key": "60/minute"})
    tomorrow = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() + 86400))
    query = "from=101&to=89998887766&external_id=crm-2345&at=" + tomorrow
    status, _, body, _ = run_cgi(python, cgi_environ(query, config=config))
    made = json.loads(body.decode())
    assert status == 200 and made["scheduled_at"].endswith("T00:00:00Z")
    status, _, body, _ = run_cgi(python, cgi_environ(query, config=config))
    assert json.loads(body.decode())["duplicate"] is True
    status, _, body, _ = run_cgi(python, cgi_environ("external_id=crm-2345", config=config,
                                                     SCRIPT_NAME="/api/call_status.php"))
    assert (status, json.loads(body.decode())["state"]) == (200, "scheduled")
    status, _, body, _ = run_cgi(python, cgi_environ("filename=" + made["filename"], method="POST", config=config,
                                                     SCRIPT_NAME="/api/cancel_call.php"))
    assert (status, json.loads(body.decode())["state"]) == (200, "cancelled")
    assert spool.calls() == []
