"""Faults and load on the real CGI script: nothing lost, nothing half-written.

Every fault here is real except where a test says otherwise: missing and unwritable
directories (as the unprivileged user 'nobody'), a file size limit (RLIMIT_FSIZE on
the real process: the kernel refuses the write half-way, as on a full disk), EXDEV
(the staging directory on /dev/shm, a different filesystem from /var/spool), broken
settings files, and SIGKILL at random moments while processes write call files.
"""

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import SEED_QUERY, Spool
from helpers import (
    CGI_SCRIPT,
    SYSTEM_PYTHON,
    as_nobody,
    cgi_environ,
    fixture,
    parse_cgi_output,
    run_cgi,
    run_cgi_many,
    spool_lines,
)


def code_of(result):
    status, _, body, _ = result
    return status, json.loads(body.decode())["code"] if status != 200 else "ok"


def expect_nothing_written(spool):
    assert spool.calls() == [] and spool.staged() == []


def test_200_concurrent_cgi_processes(spool, write_config):
    config = write_config()
    envs = [cgi_environ("from=%d&to=8999%07d&external_id=load-%d" % (100 + index % 50, index, index),
                        config=config) for index in range(200)]
    results = run_cgi_many(envs)
    assert [status for status, _, _, _ in results] == [200] * 200
    names = [json.loads(body.decode())["filename"] for _, _, body, _ in results]
    assert sorted(names) == spool.calls() and len(set(names)) == 200
    for index, name in enumerate(names):
        lines = dict(spool_lines(spool.read(name)))
        assert lines["Extension"] == "8999%07d" % index
        assert "Set: __PBXCALL_EXTERNAL_ID=load-%d\nArchive: yes\n" % index in spool.read(name)
    assert spool.staged() == []


def test_spool_directory_missing(spool, write_config):
    config = write_config()
    shutil.rmtree(spool.outgoing)
    result = run_cgi(SYSTEM_PYTHON, cgi_environ(SEED_QUERY, config=config))
    assert code_of(result) == (500, "spool_error")
    assert "No such file or directory" in result[3]
    assert spool.staged() == [] and not os.path.exists(spool.outgoing)


def test_spool_not_writable_for_the_apache_user(spool, write_config):
    config = write_config()
    os.chmod(config, 0o644)
    if os.geteuid() != 0:
        os.chmod(spool.outgoing, 0o555)
        os.chmod(spool.tmp, 0o555)
    [result] = run_cgi_many([cgi_environ(SEED_QUERY, config=config)], preexec_fn=as_nobody)
    assert code_of(result) == (500, "spool_error") and "Permission denied" in result[3]
    expect_nothing_written(spool)


def test_file_too_big_while_writing(spool, write_config):
    """RLIMIT_FSIZE of 64 bytes: the call file (~240 bytes) cannot be written whole."""
    config = write_config()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
    [result] = run_cgi_many([cgi_environ(SEED_QUERY, config=config)], preexec_fn=limit)
    assert code_of(result) == (500, "spool_error") and "File too large" in result[3]
    expect_nothing_written(spool)


@pytest.fixture
def disk_spool():
    """A spool on the real disk (/var/spool), so that /dev/shm is another filesystem."""
    os.makedirs("/var/spool", exist_ok=True)
    base = tempfile.mkdtemp(prefix="pbxcall-test-", dir="/var/spool")
    os.chmod(base, 0o755)
    try:
        yield Spool(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_real_exdev_falls_back_to_spool_tmp(disk_spool, tmp_path):
    private_tmp = tempfile.mkdtemp(prefix="pbxcall-private-tmp-", dir="/dev/shm")
    try:
        assert os.stat(private_tmp).st_dev != os.stat(disk_spool.outgoing).st_dev
        config = tmp_path / "api.env.json"
        config.write_text(json.dumps(disk_spool.config(outgoing_temp_path=private_tmp)))
        result = run_cgi(SYSTEM_PYTHON, cgi_environ(SEED_QUERY, config=str(config)))
        assert result[0] == 200
        assert disk_spool.only_call() == fixture("seed.call")
        assert os.listdir(private_tmp) == [] and disk_spool.staged() == []
        assert "set \"outgoing_temp_path\": '%s'" % disk_spool.tmp in result[3]
        # and without a <spool>/tmp to fall back on: 500, nothing anywhere
        shutil.rmtree(disk_spool.tmp)
        result = run_cgi(SYSTEM_PYTHON, cgi_environ(SEED_QUERY, config=str(config)))
        assert code_of(result) == (500, "spool_error")
        assert len(disk_spool.calls()) == 1 and os.listdir(private_tmp) == []
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)


@pytest.mark.parametrize("content, error", [
    (None, "Configuration file not found"),
    (b"{not json", "Invalid configuration"),
    (b'{"api_key": "k-123456789", "max_retries": "2"}', "Invalid configuration"),
    (b'{"api_key": "change-me"}', "Invalid configuration"),
    (b'{"api_key": "k-123456789", "outgoing_path": 7}', "Invalid configuration"),
    (b"\xff\xfe{}", "Invalid configuration"),
    (b"", "Invalid configuration"),
])
def test_broken_settings_files(spool, content, error):
    path = os.path.join(spool.base, "api.env.json")
    if content is not None:
        with open(path, "wb") as stream:
            stream.write(content)
    result = run_cgi(SYSTEM_PYTHON, cgi_environ(SEED_QUERY, config=path))
    assert code_of(result) == (500, "config_error")
    assert json.loads(result[2].decode())["error"] == error
    expect_nothing_written(spool)


def test_settings_file_unreadable_for_the_apache_user(spool, write_config):
    config = write_config()
    os.chmod(config, 0o600)  # root's only
    if os.geteuid() != 0:
        os.chmod(config, 0)
    [result] = run_cgi_many([cgi_environ(SEED_QUERY, config=config)], preexec_fn=as_nobody)
    assert code_of(result) == (500, "config_error") and "Permission denied" in result[3]
    expect_nothing_written(spool)


def test_sigkill_at_random_moments_leaves_only_whole_files(spool, write_config):
    """150 real CGI processes, each SIGKILLed after a random 0-25 ms: outgoing/ holds only whole files."""
    config = write_config()
    rng = random.Random(20261130)
    killed_early = 0
    for index in range(150):
        env = cgi_environ("from=101&to=8999%07d&external_id=kill-%d" % (index, index), config=config)
        proc = subprocess.Popen([SYSTEM_PYTHON, "-IS", CGI_SCRIPT], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.025))
        proc.kill()
        out, _ = proc.communicate()
        if proc.returncode == -signal.SIGKILL:
            killed_early += 1
        elif proc.returncode == 0:
            status, _, body = parse_cgi_output(out)
            assert status == 200 and json.loads(body.decode())["filename"] in spool.calls()
    calls = spool.calls()
    for name in calls:
        text = spool.read(name)
        index = int(text.rsplit("kill-", 1)[1].split("\n")[0])
        assert text == fixture("seed.call").replace("89998887766", "8999%07d" % index).replace(
            "crm-2345", "kill-%d" % index)
    # Both outcomes must have happened, or the delays did not cover the write.
    print("sigkill: %d killed before answering, %d call files, all whole" % (killed_early, len(calls)))
    assert 0 < killed_early < 150 and 0 < len(calls) < 150, (killed_early, len(calls))
    # A kill between create and rename can leave a staging file, never a file in outgoing/.
    assert all(name.startswith("call-") for name in spool.staged())
