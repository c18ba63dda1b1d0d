"""The key never appears in a log line or a response: grep everything the tests produced.

Runs last (file order).  Every CGI run, Apache error log, Apache response, WSGI log and
WSGI response of the whole session was appended to the transcripts (tests/helpers.py:
keep); this module adds one request of every outcome, with log_file and audit_log set,
so that it proves something even when run alone.
"""

import glob
import os

import pytest

from conftest import SEED_QUERY
from helpers import KNOWN_KEYS, SYSTEM_PYTHON, TRANSCRIPTS, cgi_environ, keep, run_cgi


@pytest.fixture
def every_outcome(spool, write_config):
    log_file = os.path.join(spool.base, "pbxcall.log")
    audit = os.path.join(spool.base, "audit.jsonl")
    config = write_config(log_file=log_file, audit_log=audit, rate_limit={"per_from": "1/minute"},
                          denied_to=["00"])
    requests = [
        (SEED_QUERY, "Bearer crm-test-key-5f2a9c0e1b"),  # 200
        (SEED_QUERY, "Bearer crm-test-key-5f2a9c0e1b"),  # 429
        (SEED_QUERY, "Bearer crm-test-key-5f2a9c0e1"),  # 401, a prefix of the key
        (SEED_QUERY, "Bearer crm-test-key-5f2a9c0e1b4"),  # 401, the key and more
        (SEED_QUERY, "crm-test-key-5f2a9c0e1b"),  # 401, no scheme
        ("from=102&to=0049301234", "Bearer crm-test-key-5f2a9c0e1b"),  # 403
        ("from=102&to=1", "Bearer crm-test-key-5f2a9c0e1b"),  # 400
        ("from=102&to=123456&api_key=crm-test-key-5f2a9c0e1b", None),  # 401, key in the URL
    ]
    for query, auth in requests:
        run_cgi(SYSTEM_PYTHON, cgi_environ(query, auth=auth, config=config))
    for path in (log_file, audit):
        with open(path) as stream:
            keep("files", stream.read())


def test_no_key_in_any_log_or_response(every_outcome):
    files = glob.glob(os.path.join(TRANSCRIPTS, "*"))
    assert files
    leaks = []
    for path in files:
        with open(path, "rb") as stream:
            text = stream.read()
        assert text
        for key in KNOWN_KEYS:
            where = text.find(key.encode())
            if where != -1:
                leaks.append((os.path.basename(path), key, text[max(0, where - 80):where + 80]))
    assert leaks == []
