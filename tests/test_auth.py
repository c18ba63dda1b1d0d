"""pbxcall.auth: Bearer parsing and a key check whose work does not depend on the key."""

import hmac

import pytest

from pbxcall import auth
from pbxcall.errors import Unauthorized
from pbxcall.settings import ApiKey

KEYS = [ApiKey("a", b"key-aaaaaaaaaaaa"), ApiKey("b", b"key-bbbbbbbbbbbb"), ApiKey("c", b"key-cccccccccccc")]


@pytest.mark.parametrize("header, token", [
    ("Bearer abc", b"abc"), ("bearer abc", b"abc"), ("BEARER   abc  ", b"abc"), ("Bearer", None),
    ("Bearer ", None), ("Basic abc", None), ("Bearer a b", None), ("Bearerabc", None), ("Bearer \u0100", None),
    ("Bearer \xe9", b"\xe9"),
])
def test_bearer_token(header, token):
    assert auth.bearer_token(header) == token


def test_header_from_redirect_variable():
    assert auth.authorization_header({"REDIRECT_HTTP_AUTHORIZATION": "Bearer x"}) == "Bearer x"
    assert auth.authorization_header({"HTTP_AUTHORIZATION": "Bearer y", "REDIRECT_HTTP_AUTHORIZATION": "x"}) \
        == "Bearer y"
    assert auth.authorization_header({}) is None


def test_the_primitive_is_hmac_compare_digest():
    """The constant-time compare behind hmac.compare_digest, without importing hashlib."""
    import _operator
    assert auth.compare_digest in (_operator._compare_digest, hmac.compare_digest)


@pytest.mark.parametrize("token", [b"key-aaaaaaaaaaaa", b"key-cccccccccccc", b"key-aaaaaaaaaaaX", b"k",
                                   b"key-bbbbbbbbbbbb" * 4])
def test_every_key_is_compared_whatever_matches(monkeypatch, token):
    """No early exit: the same compares, in the same order, for a match, a near miss or garbage."""
    calls = []

    def spy(a, b):
        calls.append(b)
        return hmac.compare_digest(a, b)
    monkeypatch.setattr(auth, "compare_digest", spy)
    try:
        found = auth.authenticate(KEYS, "Bearer " + token.decode()).name
    except Unauthorized:
        found = None
    assert calls == [key.secret for key in KEYS]
    assert found == {b"key-aaaaaaaaaaaa": "a", b"key-cccccccccccc": "c"}.get(token)


def test_unauthorized_details_never_carry_the_token():
    with pytest.raises(Unauthorized) as info:
        auth.authenticate(KEYS, "Bearer key-aaaaaaaaaaaX")
    assert "key-" not in str(info.value.detail) and info.value.message == "Unauthorized"


@pytest.mark.parametrize("header, reason", [(None, "no Bearer token"), ("Basic abc", "malformed Authorization header"),
                                            ("Bearer", "malformed Authorization header"),
                                            ("Bearer nope-nope", "wrong key")])
def test_the_reasons_for_401(header, reason):
    """The audit log's reason says which: absent, malformed, or a wrong key."""
    with pytest.raises(Unauthorized) as info:
        auth.authenticate(KEYS, header)
    assert info.value.detail == reason


def test_the_missing_header_hint_names_both_ways_to_pass_it():
    """Logged when no Authorization header reached pbxcall (README: Logging)."""
    assert auth.MISSING_HEADER_HINT == (
        'no Authorization header reached pbxcall: Apache must pass it to CGI scripts (CGIPassAuth On, '
        'or on Apache < 2.4.13: SetEnvIf Authorization "(.+)" HTTP_AUTHORIZATION=$1)')
