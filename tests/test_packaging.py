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
    system_apache = ["pgrep", "-f", "^/usr/sbin/apache2 -k"]  # started by apache2ctl (not a test server)
    apache_before = subprocess.run(system_apache, stdout=subprocess.PIPE).stdout
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
        import pathlib
        import tempfile

        # The test Apache and its spool are gone: a spool Apache's user can reach, for check.
        spool = pathlib.Path(tempfile.mkdtemp(prefix="pbxcall-pkg-", dir="/dev/shm"))
        os.chmod(str(spool), 0o755)
        for part in ("outgoing", "tmp"):
            (spool / part).mkdir()
        if owner:
            for path in (spool, spool / "outgoing", spool / "tmp"):
                os.chown(str(path), *owner)
        with open(settings, "w") as stream:
            json.dump(dict(json.loads(edited), outgoing_path=str(spool / "outgoing"),
                           outgoing_temp_path=str(spool / "tmp")), stream)
        enabled = subprocess.run(["pbxcall", "enable", "--config", settings], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True)
        assert enabled.returncode == 0, enabled.stdout
        assert os.path.islink("/etc/apache2/conf-enabled/pbxcall.conf")
        out = dpkg("-r", "pbxcall")  # removal, too, gives the URL back
        assert out.returncode == 0, out.stdout
        assert not os.path.exists("/etc/apache2/conf-enabled/pbxcall.conf")
        assert os.path.exists(settings) and not os.path.exists("/usr/share/pbxcall/pbxcall")
        out = dpkg("-P", "pbxcall")
        assert out.returncode == 0, out.stdout
        assert not os.path.exists("/etc/pbxcall") and not os.path.exists("/var/spool/asterisk/pbxcall")
        assert not os.path.exists("/etc/apache2/conf-available/pbxcall.conf")
        # enable/disable reload a running Apache, and never start the system's one
        assert subprocess.run(system_apache, stdout=subprocess.PIPE).stdout == apache_before
    finally:
        if server is not None:
            server.stop()
        if dpkg("-s", "pbxcall").returncode == 0:
            dpkg("-P", "pbxcall")
        for path in ("/etc/pbxcall", "/var/spool/asterisk/pbxcall"):
            subprocess.run(["rm", "-rf", path])
        subprocess.run(["sh", "-c", "rm -rf /dev/shm/pbxcall-pkg-*"])
        if not spool_existed and os.path.isdir("/var/spool/asterisk") and not os.listdir("/var/spool/asterisk"):
            os.rmdir("/var/spool/asterisk")
        for name in os.listdir(DIST) if os.path.isdir(DIST) else []:
            if "%s.1" % version() in name:  # the upgrade's build
                os.unlink(os.path.join(DIST, name))


def rpm_query(rpm, *args):
    return subprocess.run(["rpm", "-qp"] + list(args) + [rpm], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True).stdout


def test_rpm_for_freepbx_16_contents_modes_dependencies_and_scriptlets(tmp_path):
    """rpm -qp on the built .rpm; its files installed into a scratch root (rpm --root,
    no scripts: a scratch root has no /bin/sh) and its scriptlets run there with every
    path under it.  Not exercised: a real SNG7 (httpd, systemd, rpm 4.11) — README says so."""
    if not os.path.exists("/usr/bin/rpmbuild"):
        if os.environ.get("CI") == "true":
            pytest.fail("rpm is not installed: tests/run installs it (as root)")
        pytest.skip("rpm is not installed")
    build()
    rpm = os.path.join(DIST, "pbxcall-%s-1.noarch.rpm" % version())
    requires = rpm_query(rpm, "--requires").splitlines()
    assert "python3 >= 3.6" in requires and "httpd" in requires
    assert not [line for line in requires if "Zstd" in line]  # EL7's rpm 4.11 reads xz, not zstd
    assert rpm_query(rpm, "--qf", "%{ARCH} %{PAYLOADCOMPRESSOR}") == "noarch xz"
    listing = {line.split()[-1]: line.split()[0] for line in rpm_query(rpm, "-lv").splitlines()}
    assert listing["/usr/bin/pbxcall"] == "-rwxr-xr-x" and listing["/usr/share/pbxcall/cgi-bin/pbxcall"] == "-rwxr-xr-x"
    assert listing["/usr/share/pbxcall/pbxcall/app.py"] == "-rw-r--r--"
    assert "/etc/httpd/conf.d/pbxcall.conf.disabled" in listing and "/etc/httpd/conf.d/pbxcall.conf" not in listing
    configs = rpm_query(rpm, "-c").split()
    assert "/etc/httpd/conf.d/pbxcall.conf.disabled" in configs and "/etc/cron.d/pbxcall" in configs
    with open(os.path.join(ROOT, "apache", "pbxcall-2.4.6.conf")) as stream:
        assert "SetEnvIf Authorization" in stream.read()
    scripts = rpm_query(rpm, "--scripts")
    assert "/usr/share/pbxcall/packaging/setup.sh configure" in scripts
    scratch = str(tmp_path / "root")
    os.makedirs(os.path.join(scratch, "var", "spool", "asterisk", "outgoing"))
    owner = ensure_user()
    if owner:
        os.chown(os.path.join(scratch, "var", "spool", "asterisk", "outgoing"), *owner)
    out = subprocess.run(["rpm", "-i", "--root", scratch, "--nodeps", "--noscripts", "--dbpath", "/var/lib/rpm",
                          rpm], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert out.returncode == 0, out.stdout
    assert os.path.exists(os.path.join(scratch, "usr", "share", "pbxcall", "pbxcall", "app.py"))
    env = dict(os.environ, PBXCALL_ROOT=scratch)
    setup = os.path.join(scratch, "usr", "share", "pbxcall", "packaging", "setup.sh")
    subprocess.run([setup, "configure"], env=env, check=True)
    st = os.stat(os.path.join(scratch, "etc", "pbxcall"))
    assert oct(st.st_mode & 0o777) == "0o750"
    assert os.path.isdir(os.path.join(scratch, "usr", "share", "pbxcall", "pbxcall", "__pycache__"))
    state = os.stat(os.path.join(scratch, "var", "spool", "asterisk", "pbxcall"))
    if owner:
        assert (state.st_uid, state.st_gid) == owner
    # %preun on erase, with its paths under the scratch root: an enabled config goes back to .disabled
    conf = os.path.join(scratch, "etc", "httpd", "conf.d", "pbxcall.conf")
    os.rename(conf + ".disabled", conf)
    preun = scripts.split("preuninstall scriptlet (using /bin/sh):\n")[1].split("\n\n")[0]
    for path in ("/etc/httpd", "/usr/share/pbxcall"):
        preun = preun.replace(path, scratch + path)
    subprocess.run(["sh", "-c", preun, "preun", "0"], env=env, check=True)
    assert os.path.exists(conf + ".disabled") and not os.path.exists(conf)
    assert not os.path.exists(os.path.join(scratch, "usr", "share", "pbxcall", "pbxcall", "__pycache__"))
    subprocess.run([setup, "purge"], env=env, check=True)
    assert not os.path.exists(os.path.join(scratch, "etc", "pbxcall"))
