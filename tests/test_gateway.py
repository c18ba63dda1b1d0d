"""pbxcall.gateway answers byte for byte what wsgiref's CGIHandler answers.

The CGI script uses pbxcall.gateway instead of wsgiref.handlers.CGIHandler to save the
imports (see bench/README.md).  Here the same requests go through both, as real CGI
processes, and the outputs are compared after the random filename is masked.
"""

import json
import re
import subprocess

import pytest

from helpers import CGI_SCRIPT, ROOT, SYSTEM_PYTHON, cgi_environ, keep

VIA_WSGIREF = ("import sys; sys.path.insert(0, %r)\n"
               "from wsgiref.handlers import CGIHandler\n"
               "from pbxcall.app import application\n"
               "CGIHandler().run(application)\n" % ROOT)
CASES = [
    ("GET", "from=101&to=89998887766&external_id=crm-2345", "Bearer crm-test-key-5f2a9c0e1b", None, b""),
    ("GET", "from=101&to=89998887766", "Bearer wrong", None, b""),
    ("GET", "from=101&to=1", "Bearer crm-test-key-5f2a9c0e1b", None, b""),
    ("PUT", "", "Bearer crm-test-key-5f2a9c0e1b", None, b""),
    ("POST", "", "Bearer crm-test-key-5f2a9c0e1b", "application/json",
     json.dumps({"from": 30, "to": 89229954595}).encode()),
    ("POST", "", "Bearer crm-test-key-5f2a9c0e1b", "application/x-www-form-urlencoded", b"from=30&to=8%20922%20995"),
    ("GET", "from=101&to=89998887766&delay=600", "Bearer crm-test-key-5f2a9c0e1b", None, b""),
    ("GET", "filename=call-0000000000000000", "Bearer crm-test-key-5f2a9c0e1b", None, b""),
]


def run(command, env, body):
    proc = subprocess.run(command, env=env, input=body, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    keep("cgi", proc.stdout + proc.stderr)
    return re.sub(rb"call-[0-9a-f]{16}", b"call-X", proc.stdout)


@pytest.mark.parametrize("method, query, auth, content_type, body", CASES)
def test_same_bytes_as_cgihandler(spool, write_config, method, query, auth, content_type, body):
    config = write_config()
    extra = {"CONTENT_LENGTH": str(len(body))} if body else {}
    if content_type:
        extra["CONTENT_TYPE"] = content_type
    script = "/api/call_status.php" if query.startswith("filename") else "/api/make_call.php"
    env = cgi_environ(query, method=method, auth=auth, config=config, SCRIPT_NAME=script, **extra)
    ours = run([SYSTEM_PYTHON, "-IS", CGI_SCRIPT], env, body)
    theirs = run([SYSTEM_PYTHON, "-IS", "-c", VIA_WSGIREF], env, body)
    assert ours == theirs
    assert ours.startswith(b"Status: ")


def test_https_and_non_ascii_environ():
    """PEP 3333: environ values are the raw bytes as latin-1; wsgi.url_scheme from HTTPS."""
    code = ("import sys, json; sys.path.insert(0, %r)\n"
            "from pbxcall.gateway import cgi_environ\n"
            "e = cgi_environ()\n"
            "print(json.dumps([e['wsgi.url_scheme'], e['QUERY_STRING'], e['wsgi.run_once']]))\n" % ROOT)
    env = {"HTTPS": "on", "QUERY_STRING": "to=\u00e9"}
    out = subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code], env=env, stdout=subprocess.PIPE, check=True).stdout
    assert json.loads(out) == ["https", "to=\u00c3\u00a9", True]  # UTF-8 bytes of é, each as a latin-1 char
