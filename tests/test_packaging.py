"""packaging/build and the .deb it makes, installed for real with dpkg (root only).

The build must produce the tarball and a lintian-clean .deb; the .deb is installed,
enabled (only after check passes), serves the seed request through a real Apache that
includes the enabled config, is upgraded to a higher version keeping the edited
settings and the state, disabled, removed (settings kept) and purged (settings and
state gone).  The test refuses to touch a machine where pbxcall is already installed,
and leaves it as it found it.
"""

import json
import os
import subprocess
import tarfile

import pytest

from apache import Apache, ensure_user
from helpers import ROOT

DIST = os.path.join(ROOT, "dist")
ROOT_NEEDED = os.geteuid() != 0


def build(version=None):
    env = dict(os.environ)
    if version:
        env["PBXCALL_TEST_VERSION"] = version
    proc = subprocess.run([os.path.join(ROOT, "packaging", "build")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def version():
    import pbxcall

    return pbxcall.__version__


def dpkg(*args):
    return subprocess.run(["dpkg"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


def test_build_makes_the_tarball_and_a_lintian_clean_deb():
    if not os.path.exists("/usr/bin/lintian"):
        if os.environ.get("CI") == "true":
            pytest.fail("lintian is not installed: tests/run installs it (as root)")
        pytest.skip("lintian is not installed")
    out = build()
    assert "lintian: 1 lines" in out or "lintian: 0 lines" in out, out
    deb = os.path.join(DIST, "pbxcall_%s-1_all.deb" % version())
    info = subprocess.run(["dpkg-deb", "-I", deb], stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert "Depends: python3 (>= 3.6), apache2" in info and "Architecture: all" in info
    contents = subprocess.run(["dpkg-deb", "-c", deb], stdout=subprocess.PIPE, universal_newlines=True).stdout
    for path in ("./usr/share/pbxcall/pbxcall/app.py", "./usr/share/pbxcall/cgi-bin/pbxcall", "./usr/bin/pbxcall",
                 "./etc/apache2/conf-available/pbxcall.conf", "./lib/systemd/system/pbxcall-notify.service",
                 "./etc/cron.d/pbxcall", "./etc/logrotate.d/pbxcall"):
        assert path in contents, path
    assert "__pycache__" not in contents and "./etc/pbxcall" not in contents  # settings: the admin's
    with tarfile.open(os.path.join(DIST, "pbxcall-%s.tar.gz" % version())) as tar:
        names = tar.getnames()
    prefix = "pbxcall-%s/" % version()
    for path in ("cgi-bin/pbxcall", "pbxcall/app.py", "apache/pbxcall.conf", ".api.env.example.json", "README.md"):
        assert prefix + path in names, path
    assert not [name for name in names if name.startswith(prefix + "tests")]


@pytest.mark.skipif(ROOT_NEEDED and os.environ.get("CI") != "true", reason="installs a package: root")
def test_deb_installs_enables_serves_upgrades_and_goes_away(tmp_path):
    if dpkg("-s", "pbxcall").returncode == 0:
        pytest.fail("pbxcall is already installed here: this test will not touch it")
    owner = ensure_user()
    spool_existed = os.path.exists("/var/spool/asterisk")
    build()
    first = os.path.join(DIST, "pbxcall_%s-1_all.deb" % version())
    settings = "/etc/pbxcall/api.env.json"
    server = None
    try:
        out = dpkg("-i", first)
        assert out.returncode == 0, out.stdout
        assert subprocess.run(["pbxcall", "--version"], stdout=subprocess.PIPE,
                              universal_newlines=True).stdout.strip() == "pbxcall " + version()
        assert os.path.exists("/etc/apache2/conf-available/pbxcall.conf")
        assert not os.path.exists("/etc/apache2/conf-enabled/pbxcall.conf")  # installed, not switched over
        assert os.path.isdir("/usr/share/pbxcall/pbxcall/__pycache__")  # byte-compiled at install
        refused = subprocess.run(["pbxcall", "enable"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True)
        assert refused.returncode == 1 and "refused while check finds problems" in refused.stdout
        assert not os.path.exists("/etc/apache2/conf-enabled/pbxcall.conf")
        server = Apache("2.4", site=lambda apache: "Include /etc/apache2/conf-enabled/pbxcall*.conf\n")
        with open(settings, "w") as stream:  # what import-php or the admin writes
            json.dump({"api_key": "pkg-test-key-0123456789", "outgoing_path": server.outgoing,
                       "outgoing_temp_path": server.tmp, "rate_limit": None, "dedupe_seconds": 0}, stream)
        os.chmod(settings, 0o640)
        if owner:
            os.chown(settings, 0, owner[1])
        enabled = subprocess.run(["pbxcall", "enable", "--config", settings], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True)
        assert enabled.returncode == 0, enabled.stdout
        assert os.path.islink("/etc/apache2/conf-enabled/pbxcall.conf")
        server.start()
        status, _, body = server.request("/api/make_call.php?from=101&to=89998887766&external_id=crm-2345",
                                         auth="Bearer pkg-test-key-0123456789")
        assert status == 200, (body, server.log())
        name = json.loads(body.decode())["filename"]
        with open(os.path.join(server.outgoing, name)) as stream:
            assert stream.read().endswith("Archive: yes\n")
        if owner:
            assert os.stat(os.path.join(server.outgoing, name)).st_uid == owner[0]
        server.stop()
        server = None
        # upgrade: a higher version keeps the edited settings and the state
        with open(settings) as stream:
            edited = stream.read()
        state_marker = "/var/spool/asterisk/pbxcall/keep-me"
        os.makedirs(os.path.dirname(state_marker), exist_ok=True)
        open(state_marker, "w").close()
        build("%s.1" % version())
        out = dpkg("-i", os.path.join(DIST, "pbxcall_%s.1-1_all.deb" % version()))
        assert out.returncode == 0, out.stdout
        installed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "pbxcall"], stdout=subprocess.PIPE,
                                   universal_newlines=True).stdout
        assert installed == "%s.1-1" % version()
        with open(settings) as stream:
            assert stream.read() == edited
        assert os.path.exists(state_marker) and os.path.islink("/etc/apache2/conf-enabled/pbxcall.conf")
        assert subprocess.run(["pbxcall", "disable"], stdout=subprocess.DEVNULL).returncode == 0
        assert not os.path.exists("/etc/apache2/conf-enabled/pbxcall.conf")  # the old endpoint again
        out = dpkg("-r", "pbxcall")
        assert out.returncode == 0, out.stdout
        assert os.path.exists(settings) and not os.path.exists("/usr/share/pbxcall/pbxcall")
        out = dpkg("-P", "pbxcall")
        assert out.returncode == 0, out.stdout
        assert not os.path.exists("/etc/pbxcall") and not os.path.exists("/var/spool/asterisk/pbxcall")
        assert not os.path.exists("/etc/apache2/conf-available/pbxcall.conf")
    finally:
        if server is not None:
            server.stop()
        if dpkg("-s", "pbxcall").returncode == 0:
            dpkg("-P", "pbxcall")
        for path in ("/etc/pbxcall", "/var/spool/asterisk/pbxcall"):
            subprocess.run(["rm", "-rf", path])
        if not spool_existed and os.path.isdir("/var/spool/asterisk") and not os.listdir("/var/spool/asterisk"):
            os.rmdir("/var/spool/asterisk")
        for version_dir in [os.path.join(DIST, name) for name in os.listdir(DIST)] if os.path.isdir(DIST) else []:
            if ".1-1_all.deb" in version_dir or ".1.tar.gz" in version_dir:
                os.unlink(version_dir)
