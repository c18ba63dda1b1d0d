"""The READMEs stay true to the code: every setting, every error code, every command."""

import inspect
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
