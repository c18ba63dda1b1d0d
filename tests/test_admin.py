"""The admin commands through cli.main: check, call, import-php, --help."""

import json
import os
import pwd
import subprocess
import tempfile

import pytest

from pbxcall import cli

from helpers import FIXTURES, ROOT, fixture


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- check -------------------------------------------------------------------------

ME = pwd.getpwuid(os.geteuid()).pw_name  # check as this user unless a test says otherwise


def check(capsys, path, user=None):
    return run(capsys, "check", "--config", path, "--user", user or ME)


def lines(out, kind):
    return [line for line in out.splitlines() if line.startswith(kind + ": ")]


def test_check_clean_settings_have_only_the_context_hint(capsys, write_config, spool):
    path = write_config(api_key="k-0123456789abcdef")
    os.chmod(path, 0o640)
    code, out, _ = check(capsys, path)
    assert code == 0, out
    assert lines(out, "problem") == []
    assert len(lines(out, "hint")) == 1 and "originate-skipvm" in out
    code, out, _ = check(capsys, write_config(api_key="k-0123456789abcdef", channel_context="originate-skipvm"))
    assert "0 problems, 0 hints" in out


def test_item13_a_short_key_is_a_hint_not_a_problem(capsys, write_config):
    """A drop-in migration keeps the CRM's existing key: the API serves it, check must pass."""
    path = write_config(api_key="short-key", channel_context="originate-skipvm")
    os.chmod(path, 0o640)
    code, out, _ = check(capsys, path)
    assert code == 0 and lines(out, "problem") == [], out
    assert "has 9 characters" in "\n".join(lines(out, "hint"))


@pytest.mark.parametrize("overrides, mode, words", [
    ({"api_key": "k-0123456789abcdef"}, 0o644, "readable by every user"),
    ({"api_key": "k-0123456789abcdef", "max_retry": 3}, 0o640, "unknown setting 'max_retry'"),
    ({"api_key": "change-me"}, 0o640, "placeholder"),
    ({"api_key": "k-0123456789abcdef", "outgoing_temp_path": "/tmp/pbxcall-x"}, 0o640, "PrivateTmp"),
    ({"api_key": "k-0123456789abcdef", "log_file": "/nonexistent-dir/pbxcall.log"}, 0o640,
     "log_file: directory /nonexistent-dir does not exist"),
])
def test_check_problems(capsys, write_config, overrides, mode, words):
    path = write_config(**overrides)
    os.chmod(path, mode)
    code, out, _ = check(capsys, path)
    assert code == 1 and words in "\n".join(lines(out, "problem")), out


def test_check_missing_spool(capsys, write_config, spool):
    path = write_config(api_key="k-0123456789abcdef")
    os.rmdir(spool.outgoing)
    code, out, _ = check(capsys, path)
    assert code == 1 and "outgoing_path: directory %s does not exist" % spool.outgoing in out


def test_check_no_settings(capsys, spool):
    code, out, _ = check(capsys, os.path.join(spool.base, "none.json"))
    assert code == 1 and "No such file" in out


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root")
def test_check_as_the_apache_user(capsys, write_config, spool):
    """--user nobody: the root-owned 0755 spool and the 0640 root:root settings are not theirs."""
    path = write_config(api_key="k-0123456789abcdef")
    os.chmod(path, 0o640)
    code, out, _ = check(capsys, path, "nobody")
    problems = "\n".join(lines(out, "problem"))
    assert code == 1 and "not readable by nobody" in problems
    assert "outgoing_path: %s is not writable by nobody" % spool.outgoing in problems
    assert "(checked as nobody)" in out


def test_check_unknown_user_is_a_usage_error(capsys, write_config):
    code, _, err = run(capsys, "check", "--config", write_config(), "--user", "no-such-user-x")
    assert code == 2 and "no-such-user-x" in err


def test_check_staging_on_another_filesystem(capsys, spool, tmp_path):
    """/dev/shm (tmpfs) against /var/spool (disk): a real mount boundary."""
    base = tempfile.mkdtemp(prefix="pbxcall-check-", dir="/var/spool")
    try:
        os.mkdir(os.path.join(base, "outgoing"))
        config = tmp_path / "api.env.json"
        config.write_text(json.dumps({"api_key": "k-0123456789abcdef", "outgoing_path": base + "/outgoing",
                                      "outgoing_temp_path": spool.tmp, "state_path": base + "/pbxcall"}))
        config.chmod(0o640)
        code, out, _ = check(capsys, str(config))
        assert code == 1 and "outgoing_temp_path %s is on another mount" % spool.tmp in out
        assert "EXDEV" in out and '-> "outgoing_temp_path": "%s/tmp"' % base in out
        assert_fixes_are_valid_json(out)
    finally:
        subprocess.run(["rm", "-rf", base])


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root (mount --bind)")
def test_check_sees_a_bind_mount_that_st_dev_would_miss(capsys, tmp_path):
    base = tempfile.mkdtemp(prefix="pbxcall-bind-", dir="/var/spool")
    source, bound = os.path.join(base, "source"), os.path.join(base, "tmp")
    os.makedirs(source)
    os.makedirs(bound)
    os.makedirs(os.path.join(base, "outgoing"))
    subprocess.run(["mount", "--bind", source, bound], check=True)
    try:
        assert os.stat(bound).st_dev == os.stat(os.path.join(base, "outgoing")).st_dev
        config = tmp_path / "api.env.json"
        config.write_text(json.dumps({"api_key": "k-0123456789abcdef", "outgoing_path": base + "/outgoing"}))
        config.chmod(0o640)
        code, out, _ = check(capsys, str(config))
        assert code == 1 and "outgoing_temp_path %s is on another mount" % bound in out
        # the default staging <spool>/tmp is the mount itself: the fix must not name it again
        fix = next(line for line in lines(out, "problem") if "outgoing_temp_path %s" % bound in line)
        assert '"outgoing_temp_path": "%s"' % bound not in fix and "mkdir" in fix, fix
        assert_fixes_are_valid_json(out)
    finally:
        subprocess.run(["umount", bound], check=True)
        subprocess.run(["rm", "-rf", base])


def assert_fixes_are_valid_json(out):
    """Issue 13 item 14: every '"setting": value' a fix offers pastes into the JSON file."""
    import re

    offered = re.findall(r'("[a-z_]+": (?:"[^"]*"|\S+))', out)
    assert offered, out
    for member in offered:
        json.loads("{%s}" % member.rstrip(";,."))
    assert "': '" not in out and ": '/" not in out


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root")
def test_item5_commands_run_as_root_leave_files_the_web_server_can_use(capsys, write_config, spool):
    """pbxcall call and prune as root created root-owned state: every later web request
    for that extension answered 500.  Now they run as the spool's owner, and check finds
    (and fixes) anything under state_path that is not the web server's."""
    from apache import ensure_user
    from helpers import CGI_SCRIPT, SYSTEM_PYTHON, cgi_environ

    uid, gid = ensure_user()
    for path in (spool.base, spool.outgoing, spool.tmp):
        os.chown(path, uid, gid)
    config = write_config(api_key="k-0123456789abcdef", dedupe_seconds=10,
                          rate_limit={"per_key": "100/minute", "per_from": "100/minute"})
    os.chmod(config, 0o644)
    proc = subprocess.run([SYSTEM_PYTHON, "-m", "pbxcall", "call", "--from", "101", "--to", "89998887766",
                           "--external-id", "root-1", "--config", config], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)  # a real root process
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = os.path.join(spool.base, "pbxcall")
    owners = {(os.lstat(os.path.join(d, n)).st_uid, os.lstat(os.path.join(d, n)).st_gid)
              for d, dirs, files in os.walk(state) for n in dirs + files}
    assert owners == {(uid, gid)}, owners
    assert {os.stat(os.path.join(spool.outgoing, name)).st_uid for name in spool.calls()} == {uid}

    def as_asterisk():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    env = cgi_environ("from=101&to=89990000001&external_id=web-1", auth="Bearer k-0123456789abcdef", config=config)
    proc = subprocess.run([SYSTEM_PYTHON, "-IS", CGI_SCRIPT], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, preexec_fn=as_asterisk)
    assert b"Status: 200" in proc.stdout, proc.stdout + proc.stderr
    # a file made by root by hand (or by an older pbxcall): check finds it, its fix works
    with open(os.path.join(state, "dedupe.default.102"), "w"):
        pass
    code, out, _ = check(capsys, config, "asterisk")
    problem = next(line for line in lines(out, "problem") if "not owned by asterisk" in line)
    fix = problem.split("-> ")[1]
    assert fix.startswith("chown -R asterisk:") and fix.endswith(state)
    subprocess.run(fix, shell=True, check=True)
    code, out, _ = check(capsys, config, "asterisk")
    assert "not owned by" not in out


# -- call --------------------------------------------------------------------------

def test_call_places_the_same_file_as_the_api(capsys, write_config, spool):
    code, out, err = run(capsys, "call", "--from", "101", "--to", "8 999 888-77-66", "--external-id", "crm-2345",
                         "--config", write_config())
    answer = json.loads(out)
    assert code == 0 and list(answer) == ["status", "from", "to", "external_id", "filename", "file"]
    assert answer["to"] == "89998887766" and spool.calls() == [answer["filename"]]
    assert spool.only_call() == fixture("seed.call")
    assert "client=cli key=default" in err and "outcome=ok" in err


def test_call_with_delay_and_errors(capsys, write_config, spool):
    path = write_config(denied_to=["00"])
    code, out, _ = run(capsys, "call", "--from", "101", "--to", "89998887766", "--delay", "600", "--config", path)
    assert code == 0 and "scheduled_at" in json.loads(out)
    code, out, _ = run(capsys, "call", "--from", "1", "--to", "89998887766", "--config", path)
    assert (code, json.loads(out)["code"]) == (1, "invalid_from")
    code, out, _ = run(capsys, "call", "--from", "101", "--to", "0049301234", "--config", path)
    assert (code, json.loads(out)["code"]) == (1, "forbidden")
    code, _, err = run(capsys, "call", "--from", "101", "--to", "89998887766", "--key", "nobody", "--config", path)
    assert code == 2 and "no key named" in err
    assert len(spool.calls()) == 1


def test_call_at_and_delay_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["call", "--from", "101", "--to", "123", "--at", "1", "--delay", "1"])
    assert info.value.code == 2


# -- import-php ----------------------------------------------------------------------

def test_import_php_prints_equivalent_json(capsys, tmp_path):
    legacy = tmp_path / ".api.env.php"
    legacy.write_text(fixture("legacy.api.env.php").replace("my-secret-key-123", "crm-real-key-8c1e"))
    code, out, err = run(capsys, "import-php", str(legacy))
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data == {"api_key": "crm-real-key-8c1e", "outgoing_path": "/var/spool/asterisk/outgoing",
                    "outgoing_temp_path": "/tmp", "outgoing_context": "from-internal"}
    target = tmp_path / "api.env.json"
    code, out, err = run(capsys, "import-php", str(legacy), "--output", str(target))
    assert code == 0 and out == "" and "wrote" in err
    assert oct(os.stat(str(target)).st_mode & 0o777) == "0o640"
    from pbxcall.settings import Settings
    assert Settings.from_file(str(target)).keys[0].secret == b"crm-real-key-8c1e"


def test_item15_import_php_output_only_when_usable_and_warns_about_unknown_keys(capsys, tmp_path):
    """A failed import left an empty settings file behind (shell redirection)."""
    target = tmp_path / "api.env.json"
    target.write_text('{"api_key": "k-previous-0123"}')
    code, out, err = run(capsys, "import-php", os.path.join(FIXTURES, "legacy.api.env.php"), "--output",
                         str(target))
    assert code == 1 and "placeholder" in err and "nothing written" in err  # the old example key
    assert target.read_text() == '{"api_key": "k-previous-0123"}' and os.listdir(str(tmp_path)) == ["api.env.json"]
    unknown = tmp_path / "unknown.php"
    unknown.write_text("<?php return ['api_key' => 'k-0123456789', 'db_password' => 'x', 'cdr_table' => 'cdr'];")
    code, out, err = run(capsys, "import-php", str(unknown), "--output", str(target))
    assert code == 0 and "unknown setting 'cdr_table'" in err and "unknown setting 'db_password'" in err
    assert json.loads(target.read_text())["api_key"] == "k-0123456789"


def test_import_php_refuses_code_and_says_why(capsys, tmp_path):
    path = tmp_path / ".api.env.php"
    path.write_text("<?php return ['api_key' => getenv('KEY')];")
    code, out, err = run(capsys, "import-php", str(path))
    assert code == 1 and out == "" and "getenv" in err


def test_import_php_placeholder_prints_nothing_and_the_problem(capsys, tmp_path):
    path = tmp_path / ".api.env.php"
    path.write_text("<?php return ['api_key' => 'change-me'];")
    code, out, err = run(capsys, "import-php", str(path))
    assert code == 1 and out == "" and "placeholder" in err


# -- help ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["serve"], ["apache-config"], ["prune"], ["check"], ["call"],
                                     ["import-php"]])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main(command + ["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "usage: python3 -m pbxcall" in out
    for markup in ("``", ":mod:", ":func:", ":class:", "**"):  # issue 13 item 18: no reST in --help
        assert markup not in out


def test_item15_commands_run_from_any_directory(tmp_path, write_config):
    """`python3 /opt/pbxcall/pbxcall COMMAND` anywhere (python3 -m pbxcall needed the tree)."""
    proc = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "pbxcall"), "check", "--config",
                           write_config(api_key="k-0123456789abcdef"), "--user", ME],
                          cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert "problem" in proc.stdout and "No module named" not in proc.stderr, proc.stderr


def test_item15_apache_config_allow_rewrites_the_header_comment(capsys):
    for style in ("2.4", "2.4.6", "wsgi"):
        code, out, _ = run(capsys, "apache-config", "--style", style, "--allow", "10.20.0.0/16")
        assert code == 0 and "192.0.2.0/24" not in out, out
        assert "#        10.20.0.0/16  the networks your CRM calls from" in out
        assert "    Require ip 10.20.0.0/16\n" in out


def test_item11_check_says_when_apache_has_no_cgi_module():
    """A real Apache whose config includes pbxcall's but loads no CGI module."""
    from pbxcall.check import cgi_module_finding

    from apache import APACHE, Apache, available

    if not available():
        pytest.fail("apache2 is not installed")
    without, with_cgid = Apache("2.4", cgi_module=None), Apache("2.4", cgi_module="cgid")
    try:
        [(kind, text)] = cgi_module_finding([APACHE, "-f", without.conf])
        assert kind == "problem" and "neither mod_cgid nor mod_cgi" in text and "restart" in text
        assert cgi_module_finding([APACHE, "-f", with_cgid.conf]) == []
    finally:
        without.stop()
        with_cgid.stop()


def test_item14_a_spool_under_tmp_is_named_not_echoed(capsys, tmp_path):
    """The fix for staging under /tmp was <spool>/tmp: the same path when the spool itself
    is under /tmp.  Now the spool is the problem, and the fix names Asterisk's spool."""
    base = tempfile.mkdtemp(prefix="pbxcall-tmpspool-", dir="/tmp")
    try:
        os.makedirs(os.path.join(base, "outgoing"))
        os.makedirs(os.path.join(base, "tmp"))
        config = tmp_path / "api.env.json"
        config.write_text(json.dumps({"api_key": "k-0123456789abcdef", "outgoing_path": base + "/outgoing"}))
        config.chmod(0o640)
        code, out, _ = check(capsys, str(config))
        problem = next(line for line in lines(out, "problem") if "private to Apache" in line)
        assert "outgoing_path %s/outgoing is under /tmp" % base in problem
        assert '"outgoing_path": "/var/spool/asterisk/outgoing"' in problem and base + "/tmp\"" not in problem
        assert_fixes_are_valid_json(out)
    finally:
        subprocess.run(["rm", "-rf", base])
