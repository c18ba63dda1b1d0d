"""Webhooks: events written to a durable outbox, signed, delivered at least once to a
real HTTP(S) receiver on loopback, retried, dead-lettered.  Asterisk's side of the
spool is played here by tests/helpers.py (as pbx_spool.c does it); the same on a real
Asterisk is in tests/test_webhooks_asterisk.py."""

import io
import json
import os
import time

import pytest

from pbxcall import cli, webhook
from pbxcall.app import make_app
from pbxcall.log import Log
from pbxcall.notify import Sender
from pbxcall.outbox import Outbox
from pbxcall.settings import Settings

from conftest import AUTH
from helpers import asterisk_attempt, asterisk_finish
from receiver import Receiver, make_ca

SECRET = "whsec-0123456789abcdef"
CALL = "/api/make_call.php?from=101&to=89998887766&external_id=crm-2345"


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


def world(spool, url, **overrides):
    """(WebTest app, Sender) on one settings value with a webhook to ``url``."""
    from webtest import TestApp

    data = spool.config(webhooks=[{"url": url, "secret": SECRET, "events": ["call.answered", "call.finished"]}])
    data.update(overrides)
    settings = Settings.from_mapping(data)
    log = io.StringIO()
    return TestApp(make_app(settings, log), extra_environ={"REMOTE_ADDR": "127.0.0.1"}), \
        Sender(settings, Log(log)), log


def test_a_finished_call_is_posted_signed_with_a_stable_event_id(spool, receiver):
    app, sender, _ = world(spool, receiver.url)
    name = app.get(CALL, headers=AUTH).json["filename"]
    assert sender.round()[:2] == (0, 0)  # queued: nothing to tell yet
    asterisk_attempt(spool.outgoing, name, 1)
    asterisk_finish(spool.outgoing, name, "Completed")
    written, delivered, _ = sender.round()
    assert (written, delivered) == (1, 1)
    [item] = receiver.received
    payload = json.loads(item["body"])
    assert payload["event_id"] == name + ":call.finished" and payload["event"] == "call.finished"
    assert payload["call"]["filename"] == name and payload["call"]["state"] == "completed"
    assert payload["call"]["external_id"] == "crm-2345" and payload["call"]["outcome"]["agent"] == "unknown"
    assert item["headers"]["X-Pbxcall-Event-Id"] == payload["event_id"]
    assert webhook.verify(SECRET.encode(), item["headers"]["X-Pbxcall-Signature"], item["body"], time.time())
    assert not webhook.verify(b"wrong-secret-000000", item["headers"]["X-Pbxcall-Signature"], item["body"],
                              time.time())
    assert not webhook.verify(SECRET.encode(), item["headers"]["X-Pbxcall-Signature"], item["body"] + b" ",
                              time.time())
    assert not webhook.verify(SECRET.encode(), item["headers"]["X-Pbxcall-Signature"], item["body"],
                              time.time() + 600)  # a replay ten minutes later
    assert sender.round()[:2] == (0, 0) and len(receiver.received) == 1  # told once


def test_receiver_down_then_up_everything_arrives(spool):
    receiver = Receiver()
    url = receiver.url
    receiver.close()  # down: connection refused
    app, sender, log = world(spool, url)
    names = [app.get(CALL.replace("crm-2345", "crm-%d" % index), headers=AUTH).json["filename"] for index in range(5)]
    for name in names:
        asterisk_finish(spool.outgoing, name, "Expired")
    sender.round()
    pending = list(Outbox(spool.config()["outgoing_path"].rpartition("/")[0] + "/pbxcall").pending())
    assert len(pending) == 5 and all(entry["attempts"] == 1 and entry["last_error"] for _, entry in pending)
    assert "ConnectionRefusedError" in log.getvalue()
    up = Receiver(port=int(url.split(":")[2].split("/")[0]))  # the same address, up again
    try:
        sender.round(time.time() + 11)  # the first retry is due after 10 s
        assert sorted(event_id for event_id, _, _ in up.events()) == sorted(name + ":call.finished" for name in names)
        assert list(sender.outbox.pending()) == []
    finally:
        up.close()


def test_5xx_is_retried_with_backoff_and_410_is_a_dead_letter(spool, capsys):
    receiver = Receiver(answers=[500, 503, 200])
    try:
        app, sender, _ = world(spool, receiver.url)
        name = app.get(CALL, headers=AUTH).json["filename"]
        asterisk_finish(spool.outgoing, name, "Completed")
        sender.round()
        [(entry_name, entry)] = list(sender.outbox.pending())
        assert entry["attempts"] == 1 and 5 < entry["next_at"] - time.time() <= 10  # first retry: 10 s
        sender.round(entry["next_at"] + 1)
        [(_, entry)] = list(sender.outbox.pending())
        assert entry["attempts"] == 2 and 10 < entry["next_at"] - time.time() <= 20  # then 20 s
        sender.deliver(entry["next_at"] + 1)
        assert list(sender.outbox.pending()) == [] and [item["status"] for item in receiver.received] == [500, 503, 200]
        assert len({json.loads(item["body"])["event_id"] for item in receiver.received}) == 1
    finally:
        receiver.close()
    gone = Receiver(answers=[410])
    try:
        app, sender, _ = world(spool, gone.url)
        name = app.get(CALL.replace("crm-2345", "crm-gone"), headers=AUTH).json["filename"]
        asterisk_finish(spool.outgoing, name, "Completed")
        sender.round()
        assert list(sender.outbox.pending()) == []
        [(dead, entry)] = list(sender.outbox.dead_letters())
        assert entry["last_error"] == "HTTP 410" and len(gone.received) == 1
        config = os.path.join(spool.base, "hooks.json")
        with open(config, "w") as stream:
            json.dump(spool.config(webhooks=[{"url": gone.url, "secret": SECRET}]), stream)
        assert cli.main(["webhooks", "--config", config]) == 0
        assert "dead %s %s attempts=1" % (dead, gone.url) in capsys.readouterr().out
        assert cli.main(["webhooks", "resend", dead, "--config", config]) == 0
        assert cli.main(["notify", "--once", "--config", config]) == 0
        assert [item["status"] for item in gone.received] == [410, 200]
        assert list(sender.outbox.dead_letters()) == []
    finally:
        gone.close()


@pytest.mark.parametrize("status, retried", [(301, False), (302, False), (400, False), (401, False),
                                             (404, False), (408, True), (429, True)])
def test_redirects_are_not_followed_4xx_are_final_but_408_and_429(spool, status, retried):
    receiver = Receiver(answers=[status])
    try:
        app, sender, _ = world(spool, receiver.url)
        name = app.get(CALL, headers=AUTH).json["filename"]
        asterisk_finish(spool.outgoing, name, "Completed")
        sender.round()
        assert len(receiver.received) == 1  # a redirect's Location was not visited
        assert (len(list(sender.outbox.pending())), len(list(sender.outbox.dead_letters()))) == \
            ((1, 0) if retried else (0, 1))
    finally:
        receiver.close()


def test_after_24_hours_of_failures_a_dead_letter():
    created = 1000.0
    assert webhook.next_attempt(created, 1, created) == created + 10
    assert webhook.next_attempt(created, 5, created + 100) == created + 100 + 160
    assert webhook.next_attempt(created, 20, created + 3600) == created + 7200  # at most an hour apart
    assert webhook.next_attempt(created, 30, created + 24 * 3600 - 10) is None


def test_https_verified_with_the_ca_file(spool, tmp_path):
    ca, cert, key = make_ca(str(tmp_path))
    receiver = Receiver(tls=(cert, key))
    try:
        app, sender, log = world(spool, receiver.url)  # system CAs: the test CA is not among them
        name = app.get(CALL, headers=AUTH).json["filename"]
        asterisk_finish(spool.outgoing, name, "Completed")
        sender.round()
        assert receiver.received == [] and "CERTIFICATE_VERIFY_FAILED" in log.getvalue()
        app, sender, _ = world(spool, receiver.url, webhook_ca_file=ca)
        [(entry_name, entry)] = list(sender.outbox.pending())
        sender.outbox._write(sender.outbox.path, entry_name, dict(entry, next_at=0))
        sender.round()
        assert [event for _, event, _ in receiver.events()] == ["call.finished"]
    finally:
        receiver.close()


def test_callback_url_only_under_the_allowed_prefixes_and_never_contacted_otherwise(spool, receiver):
    allowed = receiver.url.rpartition("/")[0] + "/crm/"
    app, sender, _ = world(spool, receiver.url, callback_url_prefixes=[allowed], callback_secret="cb-secret-0123456789")
    for url in ["http://127.0.0.1:9/crm/x", allowed.replace("127.0.0.1", "localhost") + "x", allowed[:-1] + "-evil/x",
                allowed + "../x", allowed.replace("http:", "https:") + "x", allowed + "x?y=1", allowed + "x#f",
                "http://user@" + allowed[7:] + "x", "ftp://127.0.0.1/crm/x", allowed + "%2e%2e/x"]:
        answer = app.get(CALL + "&callback_url=" + url.replace("?", "%3F").replace("#", "%23").replace("&", "%26"),
                         headers=AUTH, status=400).json
        assert answer == {"status": "ERROR", "error": "Invalid callback_url", "code": "invalid_callback_url"}, url
    assert spool.calls() == []
    name = app.get(CALL + "&callback_url=" + allowed + "calls/42", headers=AUTH).json["filename"]
    asterisk_finish(spool.outgoing, name, "Completed")
    sender.round()
    paths = sorted(item["path"] for item in receiver.received)
    assert paths == ["/crm/calls/42", "/hook"]
    callback = next(item for item in receiver.received if item["path"] == "/crm/calls/42")
    assert webhook.verify(b"cb-secret-0123456789", callback["headers"]["X-Pbxcall-Signature"], callback["body"],
                          time.time())


def test_without_prefixes_a_callback_url_is_refused(app, spool):
    answer = app.get(CALL + "&callback_url=http://127.0.0.1:9/x", headers=AUTH, status=400).json
    assert answer["code"] == "invalid_callback_url" and spool.calls() == []


def test_cancelled_and_answered_events(spool, receiver):
    app, sender, _ = world(spool, receiver.url, outcome=True)
    name = app.get(CALL + "&delay=600", headers=AUTH).json["filename"]
    outcome_file = os.path.join(sender.state, "outcome", name)
    with open(outcome_file, "a") as stream:  # what pbxcall's dialplan writes when the agent picks up
        stream.write("answered 1796052094 1796052094.5\n")
    sender.round()
    assert [event for _, event, _ in receiver.events()] == ["call.answered"]
    app.post("/api/cancel_call.php?filename=" + name, headers=AUTH)
    sender.round()
    events = receiver.events()
    assert [event for _, event, _ in events] == ["call.answered", "call.finished"]
    assert events[1][2]["call"]["state"] == "cancelled"


def test_webhook_settings_are_checked():
    from pbxcall.errors import ConfigError

    base = {"api_key": "k-0123456789abcdef"}
    for bad, words in [({"webhooks": [{"url": "ftp://x/", "secret": SECRET}]}, "http"),
                       ({"webhooks": [{"url": "https://x/", "secret": "short"}]}, "secret"),
                       ({"webhooks": [{"url": "https://x/", "secret": SECRET, "events": ["call.made"]}]}, "events"),
                       ({"callback_url_prefixes": ["https://crm.example.com/"]}, "callback_secret"),
                       ({"api_keys": [{"name": "crm", "key": "k-0123456789", "webhooks": "x"}]}, "webhooks")]:
        with pytest.raises(ConfigError) as info:
            Settings.from_mapping(dict(base, **bad))
        assert words in info.value.detail, info.value.detail


def test_check_reports_the_sender_the_outbox_and_dead_letters(spool, receiver):
    from pbxcall.check import webhook_findings

    app, sender, _ = world(spool, receiver.url)
    [(kind, text)] = webhook_findings(sender.state, time.time())
    assert kind == "problem" and "no sender is running (never ran)" in text
    sender.round()
    assert webhook_findings(sender.state, time.time()) == []
    assert "last seen" in webhook_findings(sender.state, time.time() + 600)[0][1]
    receiver.answers = [500, 404]
    for index in range(2):
        name = app.get(CALL.replace("crm-2345", "crm-w%d" % index), headers=AUTH).json["filename"]
        asterisk_finish(spool.outgoing, name, "Completed")
    sender.round()
    texts = [text for _, text in webhook_findings(sender.state, time.time() + 900)]
    assert any("outbox is growing: 1 waiting, the oldest for 15 min (last error: HTTP 500)" in text for text in texts)
    assert any("1 webhook dead letter " in text and "resend --all" in text for text in texts), texts


# -- the READMEs' verification examples, run on a real signed delivery ----------------

def readme_block(readme, language, heading, containing=""):
    import re

    from helpers import ROOT

    with open(os.path.join(ROOT, readme), encoding="utf-8") as stream:
        text = stream.read()
    section = text[text.index(heading):]
    return next(block for block in re.findall(r"```%s\n(.*?)```" % language, section, re.S) if containing in block)


@pytest.fixture
def signed(spool, receiver):
    """(header, body) of a real delivery signed with SECRET."""
    app, sender, _ = world(spool, receiver.url)
    name = app.get(CALL, headers=AUTH).json["filename"]
    asterisk_finish(spool.outgoing, name, "Completed")
    sender.round()
    [item] = receiver.received
    return item["headers"]["X-Pbxcall-Signature"], item["body"]


@pytest.mark.parametrize("readme, heading", [("README.md", "## Webhooks"), ("README.ru.md", "## Вебхуки")])
def test_readme_python_verification(readme, heading, signed):
    namespace = {}
    exec(readme_block(readme, "python", heading), namespace)
    header, data = signed
    assert namespace["pbxcall_verified"](SECRET, header, data)
    assert not namespace["pbxcall_verified"]("another-secret-0123", header, data)
    assert not namespace["pbxcall_verified"](SECRET, header, data.replace(b"completed", b"cancelled"))


@pytest.mark.parametrize("readme, heading", [("README.md", "## Webhooks"), ("README.ru.md", "## Вебхуки")])
def test_readme_php_verification(readme, heading, signed, tmp_path):
    import subprocess

    if not os.path.exists("/usr/bin/php"):
        if os.environ.get("CI") == "true":
            pytest.fail("php-cli is not installed: tests/run installs it (as root)")
        pytest.skip("php-cli is not installed")
    header, data = signed
    (tmp_path / "body.json").write_bytes(data)
    script = tmp_path / "verify.php"
    script.write_text("<?php\n" + readme_block(readme, "php", heading) +
                      "\necho pbxcall_verified($argv[1], $argv[2], file_get_contents($argv[3])) ? 'yes' : 'no';\n")
    for secret, expected in ((SECRET, b"yes"), ("another-secret-0123", b"no")):
        out = subprocess.run(["php", str(script), secret, header, str(tmp_path / "body.json")],
                             stdout=subprocess.PIPE, check=True).stdout
        assert out == expected


@pytest.mark.parametrize("readme, heading", [("README.md", "## Webhooks"), ("README.ru.md", "## Вебхуки")])
def test_readme_shell_signature(readme, heading, signed, tmp_path):
    import subprocess

    header, data = signed
    (tmp_path / "body.json").write_bytes(data)
    stamp, digest = header.split(",")[0][2:], header.split("v1=")[1]
    out = subprocess.run(["bash", "-c", readme_block(readme, "sh", heading, "openssl dgst")], cwd=str(tmp_path),
                         env=dict(os.environ, T=stamp, SECRET=SECRET), stdout=subprocess.PIPE, check=True).stdout
    assert out.decode().strip() == digest


def test_the_outbox_is_never_written_through_a_symlink(spool, receiver, tmp_path):
    app, sender, log = world(spool, receiver.url)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(sender.state, exist_ok=True)
    os.symlink(str(outside), os.path.join(sender.state, "outbox"))
    name = app.get(CALL, headers=AUTH).json["filename"]
    asterisk_finish(spool.outgoing, name, "Completed")
    sender.round()
    assert list(outside.iterdir()) == [] and receiver.received == []
    assert "cannot queue the events of %s" % name in log.getvalue()
    os.unlink(os.path.join(sender.state, "outbox"))
    sender.round()  # the call waited in hooks/: told now
    assert [event for _, event, _ in receiver.events()] == ["call.finished"]


@pytest.mark.parametrize("readme, heading", [("README.md", "## Webhooks"), ("README.ru.md", "## Вебхуки")])
def test_readme_curl_sends_an_event_that_verifies(readme, heading, signed, receiver, tmp_path):
    import subprocess

    _, data = signed
    (tmp_path / "body.json").write_bytes(data)
    subprocess.run(["bash", "-c", readme_block(readme, "sh", heading, "curl")], cwd=str(tmp_path), check=True,
                   env=dict(os.environ, SECRET=SECRET, URL=receiver.url), stdout=subprocess.DEVNULL)
    sent = receiver.received[-1]
    assert sent["body"] == data
    assert webhook.verify(SECRET.encode(), sent["headers"]["X-Pbxcall-Signature"], sent["body"], time.time())


def test_a_call_that_never_reached_the_spool_leaves_no_hooks_or_outcome_file(spool, receiver):
    app, sender, _ = world(spool, receiver.url, outcome=True)
    os.rmdir(spool.outgoing)  # the rename fails
    assert app.get(CALL, headers=AUTH, status=500).json["code"] == "spool_error"
    for directory in ("hooks", "outcome"):
        assert os.listdir(os.path.join(sender.state, directory)) == []
