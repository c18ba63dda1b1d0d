"""Shared fixtures: a throwaway spool, settings files, the WSGI app under WebTest."""

import io
import json
import os
import shutil
import sys
import tempfile
from functools import partial

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from pbxcall.app import make_app  # noqa: E402
from pbxcall.settings import Settings  # noqa: E402

from helpers import keep  # noqa: E402

# tests/mutation/run: fewer examples, the same ones every time (a kill must be reproducible)
hypothesis_settings.register_profile("mutation", max_examples=40, derandomize=True, deadline=None)

SEED_KEY = "crm-test-key-5f2a9c0e1b"
SEED_QUERY = "from=101&to=89998887766&external_id=crm-2345"
AUTH = {"Authorization": "Bearer " + SEED_KEY}
# File creation under the work tree is slow on these machines; /dev/shm is not.
# PBXCALL_TEST_TMP: another place (the mutation runner gives each run its own).
FAST_TMP = os.environ.get("PBXCALL_TEST_TMP") or (
    "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None)


class Spool:
    """``<base>/outgoing`` and ``<base>/tmp``, like /var/spool/asterisk."""

    def __init__(self, base):
        self.base = base
        self.outgoing = os.path.join(base, "outgoing")
        self.tmp = os.path.join(base, "tmp")
        os.makedirs(self.outgoing)
        os.makedirs(self.tmp)

    def calls(self):
        """Basenames in outgoing/, sorted."""
        return sorted(os.listdir(self.outgoing))

    def staged(self):
        return sorted(os.listdir(self.tmp))

    def read(self, name):
        with open(os.path.join(self.outgoing, name)) as stream:
            return stream.read()

    def only_call(self):
        """The text of the one call file; fails unless there is exactly one."""
        calls = self.calls()
        assert len(calls) == 1, calls
        return self.read(calls[0])

    def config(self, **overrides):
        # No rate limit or dedupe unless a test asks: many tests place the same call again.
        data = {"api_key": SEED_KEY, "outgoing_path": self.outgoing,
                "outgoing_temp_path": self.tmp, "file_owner": None, "rate_limit": None, "dedupe_seconds": 0}
        data.update(overrides)
        return {key: value for key, value in data.items() if value is not Ellipsis}


@pytest.fixture
def spool():
    base = tempfile.mkdtemp(prefix="pbxcall-test-", dir=FAST_TMP)
    os.chmod(base, 0o755)
    try:
        yield Spool(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def settings_factory(spool):
    """``settings_factory(**overrides)`` -> Settings for the test spool."""
    return lambda **overrides: Settings.from_mapping(spool.config(**overrides))


@pytest.fixture
def write_config(spool):
    """``write_config(**overrides)`` -> path of a JSON settings file for the test spool."""
    def write(name="api.env.json", **overrides):
        path = os.path.join(spool.base, name)
        with open(path, "w") as stream:
            json.dump(spool.config(**overrides), stream)
        return path
    return write


@pytest.fixture
def app_factory(settings_factory):
    """``app_factory(**overrides)`` -> a WebTest TestApp over make_app(settings)."""
    from webtest import TestApp

    logs = []

    def build(**overrides):
        log = io.StringIO()
        logs.append(log)
        test_app = TestApp(recording(make_app(settings_factory(**overrides), log)),
                           extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        test_app.log = log  # everything pbxcall logged for this app
        return test_app
    yield build
    for log in logs:
        keep("wsgi-log", log.getvalue())


def recording(app):
    """WSGI middleware: every response (status, headers, body) goes to the transcript."""
    def wrapper(environ, start_response):
        seen = []

        def start(status, headers, exc_info=None):
            seen.append("%s %r " % (status, headers))
            return start_response(status, headers)
        body = b"".join(app(environ, start))
        keep("wsgi-responses", seen[0].encode() + body)
        return [body]
    return wrapper


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    """GET /api/make_call.php with the seed key: ``client(query, status=...)``."""
    return partial(_get, app)


def _get(app, query, status=200, headers=AUTH):
    return app.get("/api/make_call.php?" + query, headers=headers, status=status)


def pytest_sessionfinish(session, exitstatus):
    from helpers import TRANSCRIPTS
    shutil.rmtree(TRANSCRIPTS, ignore_errors=True)
