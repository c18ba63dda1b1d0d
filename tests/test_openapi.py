"""docs/openapi.yaml: valid OpenAPI 3.0, true to the code, and checked live by schemathesis."""

import inspect
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcall import errors, numbers, spool
from pbxcall.app import ENDPOINTS, INTERNAL_ERROR

from helpers import ROOT

SPEC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")
KEY = "schemathesis-key-0123"
#: (schemathesis failure code, operation) pairs the spec documents as expected, and why
DOCUMENTED = {
    ("ST202", "GET /api/make_call.php"),  # `at` must be near the server's clock; `at` xor `delay`
    ("ST202", "POST /api/make_call.php"),
    ("ST202", "GET /api/call_status.php"),  # filename or external_id required
    ("ST202", "POST /api/call_status.php"),
    ("ST202", "POST /api/cancel_call.php"),  # likewise: filename or external_id
}


with open(SPEC_PATH) as _stream:
    SPEC = yaml.safe_load(_stream)


@pytest.fixture
def spec():
    return SPEC


def test_spec_is_valid_openapi_3(spec):
    from openapi_spec_validator import validate

    validate(spec)
    assert spec["openapi"].startswith("3.0")


def test_every_endpoint_and_method_is_described(spec):
    described = {(path.rpartition("/")[2], method.upper()) for path, item in spec["paths"].items()
                 for method in item}
    implemented = {(name, method) for name, (_, methods) in ENDPOINTS.items() for method in methods}
    assert described == implemented


def test_error_codes_are_exactly_the_codes_pbxcall_can_answer(spec):
    codes = {cls.code for _, cls in inspect.getmembers(errors, inspect.isclass)
             if issubclass(cls, errors.PbxcallError) and cls is not errors.PbxcallError}
    codes.add(INTERNAL_ERROR["code"])
    assert set(spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"]) == codes


def schema_pattern(spec, name):
    return re.compile(spec["components"]["schemas"][name]["pattern"])


def accepts(check, value):
    try:
        check(value)
        return True
    except errors.PbxcallError:
        return False


@settings(max_examples=1500)
@given(st.one_of(st.text(max_size=25), st.text(alphabet="0123456789+ ().-x", max_size=25)))
def test_documented_patterns_decide_like_the_code(value):
    spec = SPEC
    for name, check in (("To", numbers.check_to), ("From", numbers.check_from),
                        ("ExternalId", numbers.check_external_id)):
        documented = schema_pattern(spec, name).fullmatch(value) is not None
        assert documented == accepts(check, value), (name, value)
    assert (schema_pattern(spec, "Filename").fullmatch(value) is not None) == spool.is_call_name(value)


def test_schemathesis_against_the_dev_server(spool, write_config):
    config = write_config(api_key=KEY)
    server = subprocess.Popen([sys.executable, "-m", "pbxcall", "serve", "--config", config, "--port", "0"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        url = re.search(r"(http://[0-9.]+:\d+)/", server.stdout.readline()).group(1)
        report = os.path.join(spool.base, "schemathesis.json")
        run = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run", SPEC_PATH, "--url", url,
             "-H", "Authorization: Bearer " + KEY, "--checks", "all", "--max-examples", "100", "--seed", "20261130",
             "--workers", "1", "--generation-database", "none", "--report", "json", "--report-json-path", report],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
        with open(report) as stream:
            result = json.load(stream)
    finally:
        server.terminate()
        server.wait(10)
    found = {(failure["code"], operation) for failure in result["failures"] for operation in failure["operations"]}
    assert result["errors"] == [], run.stdout[-3000:]
    assert found <= DOCUMENTED, run.stdout[-6000:]
    assert result["test_cases"]["generated"] > 150 and result["test_cases"]["errored"] == 0
    assert "Internal error" not in server.stderr.read()
