"""python3 -m pbxcall: the README's first command, really run."""

import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from pbxcall import cli

from helpers import ROOT, fixture


def test_serve_demo_prints_a_curl_line_that_places_a_call(tmp_path):
    """`python3 -m pbxcall serve --demo` from a fresh directory (here: a copy's parent)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "pbxcall", "serve", "--demo", "--port", "0"],
                            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    try:
        lines = []
        while not any(line.strip().startswith("curl ") for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        while "appears in" not in lines[-1]:
            lines.append(proc.stdout.readline())
        curl = shlex.split(next(line for line in lines if line.strip().startswith("curl ")))
        header = curl[curl.index("-H") + 1]
        url = curl[-1]
        assert url.endswith("/api/make_call.php?from=101&to=89998887766&external_id=crm-2345")
        spool = re.search(r"appears in (\S+)/", lines[-1]).group(1)
        assert spool == str(tmp_path / cli.DEMO_DIR / "outgoing")
        name, _, value = header.partition(": ")
        with urllib.request.urlopen(urllib.request.Request(url, headers={name: value})) as response:
            body = response.read().decode()
        assert os.listdir(spool) and body.endswith('"file": "%s"}' % os.listdir(spool)[0])
        with open(os.path.join(spool, os.listdir(spool)[0])) as stream:
            assert stream.read() == fixture("seed.call")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert "outcome=ok" in proc.stderr.read()


def test_serve_without_settings_fails_cleanly(capsys, tmp_path):
    assert cli.main(["serve", "--config", str(tmp_path / "none.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2


@pytest.mark.parametrize("style, marker", [("2.4", "CGIPassAuth On"), ("2.4.6", "SetEnvIf Authorization"),
                                           ("wsgi", "WSGIPassAuthorization On")])
def test_apache_config_fills_in_this_install(capsys, style, marker):
    assert cli.main(["apache-config", "--style", style, "--config", "/srv/pbx/api.env.json",
                     "--allow", "10.1.0.0/16", "--allow", "2001:db8::/32"]) == 0
    text = "".join(line for line in capsys.readouterr().out.splitlines(True) if not line.startswith("#"))
    assert marker in text and "/opt/pbxcall" not in text and "192.0.2.0/24" not in text
    assert "SetEnv PBXCALL_CONFIG /srv/pbx/api.env.json\n" in text
    assert "    Require ip 10.1.0.0/16\n    Require ip 2001:db8::/32\n" in text
    target = "cgi-bin/pbxcall" if style != "wsgi" else "apache/pbxcall.wsgi"
    assert " /api/make_call.php %s/%s\n" % (ROOT, target) in text


def test_apache_config_default_is_the_24_file(capsys):
    assert cli.main(["apache-config"]) == 0
    with open(os.path.join(ROOT, "apache", "pbxcall.conf")) as stream:
        assert capsys.readouterr().out == stream.read().replace("/opt/pbxcall", ROOT)


def test_item16_a_busy_port_is_one_clear_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "pbxcall", "serve", "--demo", "--port", str(port)],
                              cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1:%d" % port in proc.stderr
    assert "--port" in proc.stderr


def test_item16_a_slow_client_does_not_block_the_others(tmp_path):
    import socket

    proc = subprocess.Popen([sys.executable, "-m", "pbxcall", "serve", "--demo", "--port", "0"], cwd=str(tmp_path),
                            env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    try:
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout.readline()).group(1))
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"GET /api/make_call.php?from=101 HTTP/1.1\r\nHost: x\r\n")  # and never finishes
            with urllib.request.urlopen("http://127.0.0.1:%d/api/call_status.php" % port, timeout=5) as response:
                raise AssertionError("no key, yet %d" % response.status)
    except urllib.error.HTTPError as error:
        assert error.code == 401  # answered while the slow client still holds its connection
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
