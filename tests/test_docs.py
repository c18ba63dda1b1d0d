"""The READMEs stay true to the code: every setting, every error code, every command."""

import inspect
import json
import os
import re

import pytest

from pbxcall import errors
from pbxcall.app import ENDPOINTS, INTERNAL_ERROR
from pbxcall.cli import build_parser
from pbxcall.settings import FIELDS, KEY_FIELDS

from helpers import ROOT

READMES = ["README.md", "README.ru.md"]


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as stream:
        return stream.read()


def backticked(text):
    return set(re.findall(r"`([^`\n]+)`", text))


SETTINGS = sorted(set(FIELDS) | set(KEY_FIELDS))
CODES = sorted({cls.code for _, cls in inspect.getmembers(errors, inspect.isclass)
                if issubclass(cls, errors.PbxcallError) and cls is not errors.PbxcallError}
               | {INTERNAL_ERROR["code"]})
COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore


@pytest.mark.parametrize("readme", READMES)
def test_every_setting_is_documented(readme):
    missing = [name for name in SETTINGS if name not in backticked(read(readme))]
    assert missing == []


@pytest.mark.parametrize("readme", READMES)
def test_every_error_code_is_documented(readme):
    missing = [code for code in CODES if code not in backticked(read(readme))]
    assert missing == []


@pytest.mark.parametrize("readme", READMES)
def test_every_endpoint_and_command_is_documented(readme):
    text = read(readme)
    assert all(name in text for name in ENDPOINTS)
    assert all("python3 -m pbxcall " + command in text for command in COMMANDS), COMMANDS


def test_both_readmes_mention_the_same_settings_and_codes():
    english, russian = (backticked(read(name)) for name in READMES)
    known = set(SETTINGS) | set(CODES)
    assert english & known == russian & known


@pytest.mark.parametrize("readme", READMES)
def test_the_two_commands_open_the_readme(readme):
    block = read(readme).split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in block] == ["python3 -m pbxcall serve --demo", "tests/run"]


def code_block(readme, language, after):
    """The first ```language block after the heading text ``after``."""
    text = read(readme)
    return text[text.index(after):].split("```" + language + "\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def dev_server(spool, write_config):
    import subprocess
    import sys
    config = write_config(api_key="crm-example-key-0123")
    server = subprocess.Popen([sys.executable, "-m", "pbxcall", "serve", "--config", config, "--port", "0"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        url = re.search(r"(http://[0-9.]+:\d+)/", server.stdout.readline()).group(1)
        yield url, "crm-example-key-0123"
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("readme, heading", [("README.md", "## CRM integration"), ("README.ru.md", "## Интеграция")])
def test_readme_python_client_works(readme, heading, dev_server, spool):
    url, key = dev_server
    namespace = {}
    exec(code_block(readme, "python", heading), namespace)
    answer = namespace["make_call"](url, key, "101", "+79998887766", "deal-42")
    assert answer["status"] == "OK" and answer["to"] == "+79998887766" and spool.calls() == [answer["filename"]]
    assert namespace["make_call"](url, "wrong-key", "101", "123")["code"] == "unauthorized"


@pytest.mark.parametrize("readme, heading", [("README.md", "## CRM integration"), ("README.ru.md", "## Интеграция")])
def test_readme_php_client_works(readme, heading, dev_server, spool, tmp_path):
    import subprocess
    if not os.path.exists("/usr/bin/php"):
        if os.environ.get("CI") == "true":
            pytest.fail("php-cli is not installed: tests/run installs it (as root)")
        pytest.skip("php-cli is not installed")
    url, key = dev_server
    source = code_block(readme, "php", heading)
    source = source.replace("https://pbx.example.com", url).replace("'your-pbxcall-key'", repr(key)).replace(
        "'ваш-ключ-pbxcall'", repr(key))
    script = tmp_path / "client.php"
    script.write_text(source + "\necho json_encode($answer);\n")
    out = subprocess.run(["/usr/bin/php", str(script)], stdout=subprocess.PIPE, check=True).stdout.decode()
    answer = json.loads(out)
    assert answer["status"] == "OK" and answer["to"] == "+79998887766" and spool.calls() == [answer["filename"]]
