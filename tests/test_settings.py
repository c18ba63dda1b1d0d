"""pbxcall.settings: lookup order, validation with clear messages, the legacy PHP file."""

import json
import os
import shutil
import subprocess

import pytest

from pbxcall import settings as settings_module
from pbxcall.errors import ConfigError, ConfigNotFound
from pbxcall.settings import Settings, find_path

from helpers import FIXTURES, ROOT, SYSTEM_PYTHON, as_nobody

MINIMAL = {"api_key": "k-123456789"}


def load(**data):
    return Settings.from_mapping(data, "test.json")


def refused(data):
    """The detail of the ConfigError for ``data`` (a mapping, or JSON text)."""
    from pbxcall.settings import parse_text

    with pytest.raises(ConfigError) as info:
        Settings.from_mapping(parse_text(data, "test.json") if isinstance(data, str) else data, "test.json")
    assert info.value.message == "Invalid configuration"
    return info.value.detail


def test_defaults_give_the_spec_behaviour():
    settings = load(**MINIMAL)
    assert [(key.name, key.secret) for key in settings.keys] == [("default", b"k-123456789")]
    assert settings.outgoing_path == "/var/spool/asterisk/outgoing"
    assert settings.outgoing_temp_path == "/var/spool/asterisk/tmp"
    assert settings.outgoing_context == settings.channel_context == "from-internal"
    assert settings.caller_id == '"{to}" <{from}>'
    assert settings.account == "{from}"
    assert (settings.max_retries, settings.retry_time, settings.wait_time) == (2, 60, 30)
    assert settings.archive is True and settings.fsync is True
    assert settings.file_owner == "asterisk" and settings.log_file is None
    assert settings.from_pattern.source == "^[0-9]{2,8}$"
    assert settings.to_pattern.source == r"^\+?[0-9]{3,15}$"
    assert settings.warnings == []


def test_example_file_is_refused_until_the_key_is_changed():
    with open(os.path.join(ROOT, ".api.env.example.json")) as stream:
        data = json.load(stream)
    assert "placeholder" in refused(data)
    data["api_key"] = "a-real-random-key-0123"
    assert load(**data).outgoing_temp_path == "/var/spool/asterisk/tmp"


@pytest.mark.parametrize("key", ["change-me", "CHANGE-ME", "your-secret-key", "", None, 123,
                                 "has space", "tab\tkey", "ключ"])
def test_bad_keys_are_refused_without_quoting_them(key):
    detail = refused({"api_key": key} if key is not None else {"api_key": None})
    if isinstance(key, str) and key:
        assert key not in detail


def test_api_keys_with_names():
    settings = load(api_keys=[{"name": "crm", "key": "k1-aaaaaaaa"}, {"name": "shop", "key": "k2-bbbbbbbb"}])
    assert [key.name for key in settings.keys] == ["crm", "shop"]
    assert "k1-aaaaaaaa" not in repr(settings.keys)


def test_api_key_and_api_keys_together():
    settings = load(api_key="k0-00000000", api_keys=[{"name": "crm", "key": "k1-aaaaaaaa"}])
    assert [key.name for key in settings.keys] == ["default", "crm"]


@pytest.mark.parametrize("data, words", [
    ({}, "no api_key"),
    ({"api_keys": "k"}, "list"),
    ({"api_keys": ["k"]}, "api_keys[0] must be an object"),
    ({"api_keys": [{"key": "k1-aaaaaaaa"}]}, "name"),
    ({"api_keys": [{"name": "a b", "key": "k1-aaaaaaaa"}]}, "name"),
    ({"api_keys": [{"name": "a", "key": "k1-aaaaaaaa"}, {"name": "a", "key": "k2-aaaaaaaa"}]}, "twice"),
    ({"api_keys": [{"name": "a", "key": "k1-aaaaaaaa"}, {"name": "b", "key": "k1-aaaaaaaa"}]}, "twice"),
    (dict(MINIMAL, max_retries="2"), "max_retries must be a whole number from 0 to 1000"),
    (dict(MINIMAL, max_retries=True), "max_retries"),
    (dict(MINIMAL, max_retries=-1), "max_retries"),
    (dict(MINIMAL, retry_time=0), "retry_time"),
    (dict(MINIMAL, wait_time=1.5), "wait_time"),
    (dict(MINIMAL, archive="yes"), "archive must be true or false"),
    (dict(MINIMAL, outgoing_path=5), "outgoing_path must be a string"),
    (dict(MINIMAL, outgoing_path=""), "outgoing_path must be an absolute path"),
    # issue 13 item 8: a relative path would be resolved against Apache's working directory
    (dict(MINIMAL, outgoing_path="spool/outgoing"), "outgoing_path must be an absolute path"),
    (dict(MINIMAL, outgoing_temp_path="tmp"), "outgoing_temp_path must be an absolute path"),
    (dict(MINIMAL, state_path="./state"), "state_path must be an absolute path"),
    (dict(MINIMAL, log_file="pbxcall.log"), "log_file must be an absolute path"),
    (dict(MINIMAL, audit_log="../audit.jsonl"), "audit_log must be an absolute path"),
    # issue 13 item 2: a name given twice, nesting past the reader's limit
    ('{"api_key": "k-123456789", "api_key": "k-987654321"}', "given twice"),
    ('{"api_key": "k-123456789", "x": ' + "[" * 40 + "]" * 40 + "}", "Nested more than 32"),
    (dict(MINIMAL, outgoing_context="from internal"), "outgoing_context"),
    (dict(MINIMAL, channel_context="a;b"), "channel_context"),
    (dict(MINIMAL, caller_id="{name}"), "caller_id template"),
    (dict(MINIMAL, account="a;b"), "account template"),
    (dict(MINIMAL, to_pattern="(["), "to_pattern"),
    (dict(MINIMAL, outgoing_path="/s/outgoing", outgoing_temp_path="/s/outgoing/"), "itself"),
    ([], "top level"),
])
def test_invalid_settings_say_what_is_wrong(data, words):
    assert words in refused(data)


def test_unknown_keys_are_a_warning_not_a_failure():
    settings = load(api_key="k-123456789", colour="blue")
    assert settings.warnings == ["test.json: unknown setting 'colour' ignored"]


def test_null_file_owner_means_never_chown():
    assert load(api_key="k-123456789", file_owner=None).file_owner is None


def test_custom_patterns_and_contexts():
    settings = load(api_key="k-123456789", from_pattern="^[0-9]{3}$", outgoing_context="from-crm",
                    channel_context="originate-skipvm")
    assert settings.from_pattern("123") and not settings.from_pattern("12")
    assert (settings.outgoing_context, settings.channel_context) == ("from-crm", "originate-skipvm")


def test_from_file_json(tmp_path):
    path = tmp_path / "api.env.json"
    path.write_text(json.dumps({"api_key": "k-123456789", "archive": True}))
    settings = Settings.from_file(str(path))
    assert settings.archive is True and settings.source == str(path)


def test_from_file_legacy_php_as_is(tmp_path):
    with open(os.path.join(FIXTURES, "legacy.api.env.php")) as stream:
        text = stream.read()
    path = tmp_path / ".api.env.php"
    path.write_text(text.replace("my-secret-key-123", "crm-real-key-8c1e"))
    settings = Settings.from_file(str(path))
    assert settings.keys[0].secret == b"crm-real-key-8c1e"
    assert settings.outgoing_temp_path == "/tmp"  # kept; the spool falls back on EXDEV


@pytest.mark.parametrize("key", ["my-secret-key-123", "YOUR_API_KEY", "your-secret-key", "Change-Me", "KEY"])
def test_item13_documented_example_keys_are_refused(key):
    """Issue 13 item 13: the old project's example key (and the README's) in production
    is a key every reader of the docs knows."""
    assert "placeholder" in refused({"api_key": key})
    assert "placeholder" in refused({"api_keys": [{"name": "crm", "key": key}]})


def test_the_old_projects_example_file_is_refused_for_its_key():
    with pytest.raises(ConfigError) as info:
        Settings.from_file(os.path.join(FIXTURES, "legacy.api.env.php"))
    assert "placeholder" in info.value.detail


def test_from_file_legacy_php_array_syntax():
    settings = Settings.from_file(os.path.join(FIXTURES, "legacy-array.api.env.php"))
    assert (settings.channel_context, settings.max_retries, settings.retry_time) == ("originate-skipvm", 0, 60)


@pytest.mark.parametrize("content, words", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1]", "top level"),
])
def test_from_file_broken(tmp_path, content, words):
    path = tmp_path / "api.env.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        Settings.from_file(str(path))
    assert words in info.value.detail


def test_from_file_php_that_is_code(tmp_path):
    path = tmp_path / ".api.env.php"
    path.write_text("<?php return ['api_key' => getenv('KEY')];")
    with pytest.raises(ConfigError) as info:
        Settings.from_file(str(path))
    assert "not a plain PHP array file" in info.value.detail


def test_missing_file_is_config_not_found(tmp_path):
    with pytest.raises(ConfigNotFound) as info:
        Settings.from_file(str(tmp_path / "nope.json"))
    assert info.value.message == "Configuration file not found"


def test_unreadable_file(spool):
    """A real permission fault: as root the reader runs as nobody, as others the mode is 0."""
    path = os.path.join(spool.base, "api.env.json")
    with open(path, "w") as stream:
        stream.write("{}")
    os.chmod(path, 0o600 if os.geteuid() == 0 else 0)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from pbxcall.settings import Settings\n"
            "try: Settings.from_file(%r)\n"
            "except Exception as exc: print(type(exc).__name__, exc.detail)" % (ROOT, path))
    out = subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code], stdout=subprocess.PIPE,
                         preexec_fn=as_nobody, check=True).stdout.decode()
    assert out.startswith("ConfigError ") and "cannot be read: Permission denied" in out


def test_lookup_order(tmp_path, monkeypatch):
    system, beside = tmp_path / "etc.json", tmp_path / "beside.json"
    monkeypatch.setattr(settings_module, "SYSTEM_PATH", str(system))
    monkeypatch.setattr(settings_module, "PACKAGE_PATH", str(beside))
    monkeypatch.delenv("PBXCALL_CONFIG", raising=False)
    with pytest.raises(ConfigNotFound):
        find_path({})
    beside.write_text("{}")
    assert find_path({}) == str(beside)
    system.write_text("{}")
    assert find_path({}) == str(system)
    monkeypatch.setenv("PBXCALL_CONFIG", "/from/process")
    assert find_path({}) == "/from/process"
    assert find_path({"PBXCALL_CONFIG": "/from/apache"}) == "/from/apache"  # SetEnv under mod_wsgi


def test_package_path_is_beside_the_package():
    assert settings_module.PACKAGE_PATH == os.path.join(ROOT, ".api.env.json")
    assert shutil.os.path.isdir(os.path.join(os.path.dirname(settings_module.PACKAGE_PATH), "pbxcall"))


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "huge"])
def test_item7_settings_that_are_not_a_small_regular_file_are_refused_at_once(tmp_path, kind):
    """Issue 13 item 7: a FIFO or /dev/zero named as the settings hung the request."""
    import threading

    path = str(tmp_path / "api.env.json")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    elif kind == "directory":
        os.mkdir(path)
    else:
        with open(path, "w") as stream:
            stream.write('{"api_key": "k-123456789", "x": "%s"}' % ("a" * 2 * 1024 * 1024))
    result = []
    worker = threading.Thread(target=lambda: result.append(_config_error(path)), daemon=True)
    worker.start()
    worker.join(5)
    assert result, "reading the settings hung"
    assert "cannot be read" in result[0], result


def _config_error(path):
    try:
        Settings.from_file(path)
    except ConfigError as exc:
        return exc.detail
    return None
