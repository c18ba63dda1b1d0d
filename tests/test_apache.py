"""pbxcall behind a real Apache, with the configs shipped in apache/.

Debian's apache2 is started on a free loopback port (see tests/apache.py); the CGI
script runs as the unprivileged user `asterisk`.  Without apache2 these tests fail
under CI=true and are skipped elsewhere.
"""

import io
import json
import os
import re
import stat
import threading

import pytest

from pbxcall.app import make_app
from pbxcall.settings import Settings

import apache as apache_mod
from apache import KEY, Apache

SEED = "/api/make_call.php?from=101&to=89998887766&external_id=crm-2345"

if not apache_mod.available():
    if os.environ.get("CI") == "true":
        pytest.fail("apache2 is not installed: tests/run installs it (as root)", pytrace=False)
    pytest.skip("apache2 is not installed (tests/run installs it as root)", allow_module_level=True)

pytestmark = pytest.mark.apache


@pytest.fixture(scope="module")
def cgid():
    """FreePBX 17 style: Apache >= 2.4.13 config, mod_cgid, event MPM."""
    with Apache("2.4", mpm="event", cgi_module="cgid") as server:
        yield server


@pytest.fixture(scope="module")
def cgi_246():
    """FreePBX 16 style: the SetEnvIf config (no CGIPassAuth), mod_cgi, prefork MPM."""
    with Apache("2.4.6", mpm="prefork", cgi_module="cgi") as server:
        yield server


@pytest.fixture(scope="module")
def wsgi():
    """mod_wsgi daemon mode as shipped."""
    with Apache("wsgi", mpm="event") as server:
        yield server


@pytest.fixture(params=["cgid", "cgi_246", "wsgi"])
def server(request):
    return request.getfixturevalue(request.param)


def in_process_body(server, query):
    """What the WSGI app answers in-process for the same request (same settings file)."""
    from webtest import TestApp

    app = TestApp(make_app(Settings.from_file(server.config), io.StringIO()))
    response = app.get("/api/make_call.php?" + query, headers={"Authorization": "Bearer " + KEY})
    name = response.json["filename"]
    os.unlink(os.path.join(server.outgoing, name))
    return response.body.replace(name.encode(), b"call-X")


def test_seed_request_same_json_as_in_process_and_a_whole_file(server):
    before = set(server.calls())
    status, headers, body = server.request(SEED)
    assert status == 200, (body, server.log())
    name = json.loads(body.decode())["filename"]
    assert set(server.calls()) - before == {name}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert body.replace(name.encode(), b"call-X") == in_process_body(server, SEED.split("?")[1])
    path = os.path.join(server.outgoing, name)
    with open(path) as stream:
        assert stream.read() == open(os.path.join(os.path.dirname(__file__), "fixtures", "seed.call")).read()
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o644
    if server.owner:
        assert (st.st_uid, st.st_gid) == server.owner  # the Apache user: asterisk
    assert os.listdir(server.tmp) == []


@pytest.mark.parametrize("method, path, auth, status, code", [
    ("PUT", SEED, True, 405, "method_not_allowed"),
    ("DELETE", SEED, True, 405, "method_not_allowed"),
    ("GET", SEED, "Bearer wrong-key", 401, "unauthorized"),
    ("GET", SEED, None, 401, "unauthorized"),
    ("GET", "/api/make_call.php?from=101&to=12", True, 400, "invalid_to"),
    ("GET", "/api/make_call.php?from=1&to=89998887766", True, 400, "invalid_from"),
    ("GET", "/api/make_call.php?from=101&to=123&external_id=a%20b", True, 400, "invalid_external_id"),
    ("GET", "/api/make_call.php?from=101&to=123%0A456", True, 400, "bad_request"),
])
def test_errors_come_back_as_json_unchanged(server, method, path, auth, status, code):
    before = server.calls()
    got, headers, body = server.request(path, method=method, auth=auth)
    assert (got, json.loads(body.decode())["code"]) == (status, code), body
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    if status == 405:
        assert headers["allow"] == "GET, POST"
    if status == 401:
        assert headers["www-authenticate"] == 'Bearer realm="pbxcall"'
    assert server.calls() == before


def test_post_form_and_json(server):
    before = len(server.calls())
    status, _, _ = server.request("/api/make_call.php", "POST", b"from=101&to=89998887766",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    status, _, body = server.request("/api/make_call.php", "POST", b'{"from": 101, "to": "89998887766"}',
                                     {"Content-Type": "application/json"})
    assert status == 200, body
    assert len(server.calls()) == before + 2


def test_missing_settings_file_is_config_error_json(server):
    os.rename(server.config, server.config + ".away")
    try:
        status, headers, body = server.request(SEED)
    finally:
        os.rename(server.config + ".away", server.config)
    assert (status, json.loads(body.decode())) == (500, {
        "status": "ERROR", "error": "Configuration file not found", "code": "config_error"})
    assert headers["content-type"] == "application/json; charset=utf-8"


def test_request_from_another_address_is_refused_by_apache(server):
    """`Require ip 127.0.0.1` as shipped: 127.0.0.2 gets 403 (as JSON) and writes nothing."""
    before = server.calls()
    assert server.request(SEED, source="127.0.0.1")[0] == 200
    status, headers, body = server.request(SEED, source="127.0.0.2")
    assert status == 403
    assert json.loads(body.decode())["code"] == "forbidden"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert len(server.calls()) == len(before) + 1


def test_authorization_reaches_the_script_and_key_is_never_logged(server):
    assert server.request(SEED, auth="bearer " + KEY)[0] == 200
    server.request(SEED, auth="Bearer not-the-key-987")
    log = server.log()
    assert KEY not in log and "not-the-key-987" not in log


def test_without_auth_passing_the_client_gets_401_and_the_log_the_hint():
    """The shipped config minus CGIPassAuth: Apache withholds the header."""
    edit = lambda text: text.replace("    CGIPassAuth On\n", "")  # noqa: E731
    with Apache("2.4", edit=edit) as server:
        status, _, body = server.request(SEED)
        assert (status, json.loads(body.decode())["code"]) == (401, "unauthorized")
        assert "CGIPassAuth On" in server.log() and "SetEnvIf Authorization" in server.log()
        assert server.calls() == []


def test_without_setenvif_the_246_config_gets_401_too():
    assert "SetEnvIf Authorization" in open(os.path.join(apache_mod.ROOT, "apache", "pbxcall-2.4.6.conf")).read()
    edit = lambda text: re.sub(r"\n *SetEnvIf Authorization [^\n]*\n", "\n", text)  # noqa: E731
    with Apache("2.4.6", mpm="prefork", cgi_module="cgi", edit=edit) as server:
        status, _, body = server.request(SEED)
        assert (status, json.loads(body.decode())["code"]) == (401, "unauthorized")
        assert server.calls() == []


def test_fifty_concurrent_requests_through_cgid(cgid):
    before = set(cgid.calls())
    results = []

    def call(index):
        results.append(cgid.request("/api/make_call.php?from=101&to=8999888%04d&external_id=c-%d"
                                    % (index, index)))
    threads = [threading.Thread(target=call, args=(index,)) for index in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _, _ in results) == [200] * 50
    names = {json.loads(body.decode())["filename"] for _, _, body in results}
    assert set(cgid.calls()) - before == names and len(names) == 50
    for name in names:
        with open(os.path.join(cgid.outgoing, name)) as stream:
            text = stream.read()
        index = int(re.search(r"external_id=c-(\d+)|PBXCALL_EXTERNAL_ID=c-(\d+)", text).group(2))
        assert "Extension: 8999888%04d\n" % index in text and "_EXTERNAL_ID=c-%d\n" % index in text
    assert os.listdir(cgid.tmp) == []


def test_readme_install_steps_with_apache_config(tmp_path):
    """README "Install on FreePBX", step by step, on the FreePBX 17 layout.

    The release tarball (packaging/build --tarball-only), unpacked, is copied to
    <base>/opt/pbxcall (Apache() does the copy); the settings are
    imported from an old .api.env.php with import-php --output and made root:asterisk
    0640; check runs; the Apache config is what apache-config of the installed copy
    prints — every command as `python3 <install>/pbxcall COMMAND` from another
    directory, nothing hand-written.
    """
    import subprocess
    import tarfile

    import pbxcall as package

    from helpers import ROOT, SYSTEM_PYTHON

    # The release tarball, unpacked elsewhere, is what the admin copies to /opt/pbxcall.
    subprocess.run([os.path.join(ROOT, "packaging", "build"), "--tarball-only"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    with tarfile.open(os.path.join(ROOT, "dist", "pbxcall-%s.tar.gz" % package.__version__)) as tar:
        tar.extractall(str(tmp_path / "release"))
    release = str(tmp_path / "release" / ("pbxcall-%s" % package.__version__))

    def pbxcall(server, *args):
        return subprocess.run([SYSTEM_PYTHON, os.path.join(server.install, "pbxcall")] + list(args),
                              cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)

    def installed_config(server):
        import shutil

        old = tmp_path / ".api.env.php"
        old.write_text("<?php\n// the old script's settings\nreturn [\n    'api_key' => '%s',\n"
                       "    'outgoing_path' => '%s',\n    'outgoing_temp_path' => '%s',\n"
                       "    'outgoing_context' => 'from-internal',\n];\n" % (KEY, server.outgoing, server.tmp))
        os.unlink(server.config)
        imported = pbxcall(server, "import-php", str(old), "--output", server.config)
        assert imported.returncode == 0 and imported.stdout == "", imported.stderr
        server.give(server.config, 0o640)
        shutil.rmtree(os.path.join(server.install, "apache", "__pycache__"), ignore_errors=True)
        assert os.stat(os.path.join(server.install, "cgi-bin", "pbxcall")).st_mode & 0o755 == 0o755
        checked = pbxcall(server, "check", "--config", server.config)
        assert "No module named" not in checked.stderr and " problem" in checked.stdout, checked.stderr
        config = pbxcall(server, "apache-config", "--config", server.config)
        assert config.returncode == 0, config.stderr
        return config.stdout

    with Apache("2.4", site=installed_config, source=release) as server:
        with open(server.site_conf) as stream:
            assert "ScriptAlias /api/make_call.php %s/cgi-bin/pbxcall" % server.install in stream.read()
        status, _, body = server.request(SEED)
        assert status == 200, body
        assert len(server.calls()) == 1
        if server.owner:
            st = os.stat(server.config)
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, server.owner[1])


def test_status_and_cancel_through_apache(server):
    status, _, body = server.request(SEED + "&delay=600")
    name = json.loads(body.decode())["filename"]
    status, _, body = server.request("/api/call_status.php?filename=" + name)
    assert (status, json.loads(body.decode())["state"]) == (200, "scheduled")
    status, headers, body = server.request("/api/cancel_call.php?filename=" + name)
    assert (status, headers["allow"], json.loads(body.decode())["code"]) == (405, "POST", "method_not_allowed")
    status, _, body = server.request("/api/cancel_call.php?filename=" + name, method="POST", body=b"")
    assert (status, json.loads(body.decode())["state"]) == (200, "cancelled"), body
    assert name not in server.calls()


# -- field trials (issue 13) ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/make_call.php/make_call.php", "/api/call_status.php/make_call.php",
                                  "/api/cancel_call.php/x", "/api/make_call.php/"])
def test_item10_every_url_under_an_endpoint_is_ip_checked_and_a_json_404(server, path):
    """mod_wsgi let a denied address reach pbxcall through an extra path segment; the
    CGI configs answered Apache's HTML 403.  Now: denied as JSON, allowed as JSON 404."""
    before = server.calls()
    status, headers, body = server.request(path + "?from=101&to=89998887766", source="127.0.0.2")
    assert (status, json.loads(body.decode())["code"]) == (403, "forbidden"), body
    status, headers, body = server.request(path + "?from=101&to=89998887766")
    assert (status, json.loads(body.decode())["code"]) == (404, "not_found"), body
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert server.calls() == before


@pytest.mark.parametrize("style, mpm", [("2.4", "event"), ("2.4.6", "prefork")])
def test_item11_without_a_cgi_module_the_endpoints_fail_closed(style, mpm):
    """After a2dismod cgi cgid, ScriptAlias served the script's source as 200 text/plain."""
    with Apache(style, mpm=mpm, cgi_module=None) as server:
        for path in (SEED, "/api/call_status.php?filename=call-0000000000000000"):
            status, headers, body = server.request(path)
            assert (status, json.loads(body.decode())["code"]) == (503, "service_unavailable"), body
            assert b"import" not in body and headers["content-type"] == "application/json; charset=utf-8"
        assert server.calls() == []


def test_item12_the_246_config_passes_authorization_to_pbxcall_only(cgi_246):
    status, _, body = cgi_246.request("/other.cgi")
    assert (status, body.strip()) == (200, b"none")
    assert cgi_246.request(SEED)[0] == 200  # pbxcall still gets it


def test_item18_apaches_own_json_errors_are_not_cached(server):
    status, headers, _ = server.request(SEED, source="127.0.0.2")
    assert (status, headers.get("cache-control")) == (403, "no-store")


def test_item18_apaches_own_500_is_json_and_not_cached():
    def broken(server):
        script = os.path.join(server.install, "cgi-bin", "broken")
        with open(script, "w") as stream:
            stream.write("#!/bin/sh\nexit 3\n")
        os.chmod(script, 0o755)
        with open(os.path.join(apache_mod.ROOT, "apache", "pbxcall.conf")) as stream:
            text = stream.read()
        return (text.replace(apache_mod.SHIPPED_INSTALL_DIR, server.install)
                .replace(apache_mod.SHIPPED_CONFIG, server.config)
                .replace("ScriptAlias /api/make_call.php %s/cgi-bin/pbxcall" % server.install,
                         "ScriptAlias /api/make_call.php %s" % script))
    with Apache("2.4", site=broken) as server:
        status, headers, body = server.request(SEED)
        assert (status, json.loads(body.decode())["code"]) == (500, "internal_error"), body
        assert headers.get("cache-control") == "no-store"
