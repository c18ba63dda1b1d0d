"""The admin commands through cli.main: check, call, import-php, --help."""

import json
import os
import pwd
import subprocess
import tempfile

import pytest

from pbxcall import cli

from helpers import FIXTURES, fixture


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


@pytest.mark.parametrize("overrides, mode, words", [
    ({"api_key": "short-key"}, 0o640, "has 9 characters"),
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
        assert "EXDEV" in out and "'%s/tmp'" % base in out
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
    finally:
        subprocess.run(["umount", bound], check=True)
        subprocess.run(["rm", "-rf", base])


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
    code, out, err = run(capsys, "import-php", os.path.join(FIXTURES, "legacy.api.env.php"))
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data == {"api_key": "my-secret-key-123", "outgoing_path": "/var/spool/asterisk/outgoing",
                    "outgoing_temp_path": "/tmp", "outgoing_context": "from-internal"}
    target = tmp_path / "api.env.json"
    target.write_text(out)
    from pbxcall.settings import Settings
    assert Settings.from_file(str(target)).keys[0].secret == b"my-secret-key-123"


def test_import_php_refuses_code_and_says_why(capsys, tmp_path):
    path = tmp_path / ".api.env.php"
    path.write_text("<?php return ['api_key' => getenv('KEY')];")
    code, out, err = run(capsys, "import-php", str(path))
    assert code == 1 and out == "" and "getenv" in err


def test_import_php_placeholder_prints_json_and_the_problem(capsys, tmp_path):
    path = tmp_path / ".api.env.php"
    path.write_text("<?php return ['api_key' => 'change-me'];")
    code, out, err = run(capsys, "import-php", str(path))
    assert code == 1 and json.loads(out) == {"api_key": "change-me"} and "placeholder" in err


# -- help ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["serve"], ["apache-config"], ["prune"], ["check"], ["call"],
                                     ["import-php"]])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main(command + ["--help"])
    assert info.value.code == 0 and "usage: python3 -m pbxcall" in capsys.readouterr().out
