"""pbxcall.policy: who may call what, and from where."""

import subprocess

import pytest

from pbxcall.errors import Forbidden
from pbxcall.policy import AddressList, Policy, Rule, asterisk_to_regex

from conftest import AUTH, SEED_QUERY
from helpers import ROOT, SYSTEM_PYTHON


@pytest.mark.parametrize("pattern, regex", [
    ("_00.", "^00.+$"), ("_NXXNXXXXXX", "^[2-9][0-9][0-9][2-9][0-9][0-9][0-9][0-9][0-9][0-9]$"),
    ("_8809XXXXXXX", "^8809[0-9][0-9][0-9][0-9][0-9][0-9][0-9]$"), ("_1[2-5]X!", "^1[2-5][0-9].*$"),
    ("_+7.", "^\\+7.+$"), ("_zx", "^[1-9][0-9]$"),
])
def test_asterisk_patterns(pattern, regex):
    assert asterisk_to_regex(pattern) == regex


@pytest.mark.parametrize("source, prefix, yes, no", [
    ("101", False, ["101"], ["1010", "10", "2101"]),
    ("00", True, ["00", "0049301234"], ["8001", "+00"]),
    ("_1XX", False, ["100", "199"], ["10", "1000", "200"]),
    ("_00.", True, ["001"], ["00", "800"]),
    ("^10[1-3]$", False, ["101", "103"], ["104", "1010"]),
    ("+", True, ["+79998887766"], ["89998887766"]),
])
def test_rule_meaning(source, prefix, yes, no):
    rule = Rule(source, prefix)
    assert all(rule(value) for value in yes) and not any(rule(value) for value in no)


@pytest.mark.parametrize("bad", ["", "_1[2-", "_1[a]", "^(", 5])
def test_bad_rules(bad):
    with pytest.raises(ValueError):
        Rule(bad, True)


def test_policy_checks_each_list():
    policy = Policy(allowed_from=["101", "_2XX"], allowed_to=["8", "+7"], denied_to=["8809", "_810."])
    policy.check("101", "89998887766", "k")
    policy.check("250", "+79998887766", "k")
    for from_, to, text in [("102", "89998887766", "Extension not allowed"),
                            ("101", "0049301234", "Destination not allowed"),
                            ("101", "88091234567", "Destination not allowed"),
                            ("101", "810491234", "Destination not allowed")]:
        with pytest.raises(Forbidden) as info:
            policy.check(from_, to, "k")
        assert info.value.message == text and (info.value.status, info.value.code) == (403, "forbidden")


def test_empty_policy_allows_everything():
    Policy().check("101", "0049301234", "k")


def test_empty_list_allows_nothing():
    with pytest.raises(Forbidden):
        Policy(allowed_to=[]).check("101", "123", "k")


@pytest.mark.parametrize("address, allowed", [
    ("127.0.0.1", True), ("192.0.2.77", True), ("192.0.3.1", False), ("2001:db8::5", True),
    ("2001:db9::5", False), ("::ffff:192.0.2.9", True), ("::ffff:10.0.0.1", False), ("", False), (None, False),
    ("garbage", False), ("fe80::1%eth0", False),
])
def test_address_list(address, allowed):
    assert AddressList(["127.0.0.1", "192.0.2.0/24", "2001:db8::/32"]).allows(address) is allowed


@pytest.mark.parametrize("bad", [["10.0.0.0/33"], ["nope"], "10.0.0.0/8", [10]])
def test_bad_address_lists(bad):
    with pytest.raises(ValueError):
        AddressList(bad)


# -- through the app ----------------------------------------------------------

KEYS = [{"name": "agent101", "key": "k1-aaaaaaaa", "allowed_from": ["101"]},
        {"name": "crm", "key": "k2-bbbbbbbb", "denied_to": ["_8809XXXXXXX"], "allowed_to": ["8", "+7"]}]


@pytest.mark.parametrize("key, query, status, message", [
    ("k1-aaaaaaaa", "from=101&to=89998887766", 200, None),
    ("k1-aaaaaaaa", "from=102&to=89998887766", 403, "Extension not allowed"),
    ("k2-bbbbbbbb", "from=102&to=%2B79998887766", 200, None),
    ("k2-bbbbbbbb", "from=102&to=88091234567", 403, "Destination not allowed"),
    ("k2-bbbbbbbb", "from=102&to=0049301234", 403, "Destination not allowed"),
    ("k1-aaaaaaaa", "from=101&to=0049301234", 403, "Destination not allowed"),  # global denied_to
    ("k1-aaaaaaaa", "from=101&to=8" + "1" * 10, 200, None),
])
def test_key_and_global_policy(app_factory, spool, key, query, status, message):
    app = app_factory(api_key=Ellipsis, api_keys=KEYS, denied_to=["00", "810"])
    response = app.get("/api/make_call.php?" + query, headers={"Authorization": "Bearer " + key}, status=status)
    if status == 403:
        assert response.json == {"status": "ERROR", "error": message, "code": "forbidden"}
        assert spool.calls() == []
        assert "outcome=forbidden" in app.log.getvalue()
    else:
        assert len(spool.calls()) == 1


def test_allowed_ips_refuses_before_the_key_is_looked_at(app_factory, spool):
    app = app_factory(allowed_ips=["192.0.2.0/24"])
    response = app.get("/api/make_call.php?" + SEED_QUERY, headers={}, status=403)
    assert response.json == {"status": "ERROR", "error": "Address not allowed", "code": "forbidden"}
    app.get("/api/make_call.php?" + SEED_QUERY, headers=AUTH, extra_environ={"REMOTE_ADDR": "192.0.2.10"})
    assert len(spool.calls()) == 1


def test_invalid_rules_are_config_errors(settings_factory):
    from pbxcall.errors import ConfigError
    for overrides in [{"denied_to": "00"}, {"allowed_ips": ["300.1.1.1"]},
                      {"api_key": Ellipsis,
                       "api_keys": [{"name": "a", "key": "k1-aaaaaaaa", "allowed_from": ["_1["]}]}]:
        with pytest.raises(ConfigError) as info:
            settings_factory(**overrides)
        assert "allowed" in info.value.detail or "denied_to" in info.value.detail


def test_unknown_key_fields_are_warnings(settings_factory):
    settings = settings_factory(api_key=Ellipsis, api_keys=[{"name": "a", "key": "k1-aaaaaaaa", "colour": 1}])
    assert any("'colour' in api_keys[0]" in warning for warning in settings.warnings)


def test_ipaddress_is_imported_only_when_allowed_ips_is_set(spool, write_config):
    code = ("import sys, io; sys.path.insert(0, %r)\n"
            "from pbxcall.app import make_app\n"
            "from pbxcall.settings import Settings\n"
            "app = make_app(Settings.from_file(sys.argv[1]), io.StringIO())\n"
            "env = {'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '/api/make_call.php', 'QUERY_STRING': %r,\n"
            "       'HTTP_AUTHORIZATION': 'Bearer crm-test-key-5f2a9c0e1b', 'REMOTE_ADDR': '127.0.0.1'}\n"
            "status = []\n"
            "app(env, lambda s, h: status.append(s))\n"
            "print(status[0], 'ipaddress' in sys.modules)\n" % (ROOT, SEED_QUERY))
    plain = write_config("plain.json")
    listed = write_config("listed.json", allowed_ips=["127.0.0.0/8"])
    outputs = [subprocess.run([SYSTEM_PYTHON, "-IS", "-c", code, path], stdout=subprocess.PIPE, check=True,
                              universal_newlines=True).stdout.split() for path in (plain, listed)]
    assert outputs == [["200", "OK", "False"], ["200", "OK", "True"]]


def test_allowed_from_is_an_exact_extension_not_a_prefix():
    """Issue 13 item 20: "10" compiled as a prefix would admit 101 unnoticed."""
    policy = Policy(allowed_from=["10"], allowed_to=["8"], denied_to=["88"])
    policy.check("10", "89998887766", "k")
    for from_ in ("101", "1", "210"):
        with pytest.raises(Forbidden):
            policy.check(from_, "89998887766", "k")
    with pytest.raises(Forbidden):  # denied_to and allowed_to are prefixes
        policy.check("10", "88001234", "k")
    with pytest.raises(Forbidden):
        policy.check("10", "79998887766", "k")


def test_rule_edges_found_by_mutation_testing():
    assert Rule("_1", False)("1") and not Rule("_1", False)("_1")  # "_" and one character is a pattern
    assert Rule("_", True)("_1")  # a lone "_" is a literal
    for bad, message in (("_1[2-", "^unclosed \\[ in '_1\\[2-'$"),
                         ("_1[a]", "^only digits and ranges inside \\[\\] in '_1\\[a\\]'$"),
                         ("", "^a rule is a non-empty string$")):
        with pytest.raises(ValueError, match=message):
            Rule(bad, True)
    with pytest.raises(ValueError, match="^must be a list of rules$"):
        Policy(allowed_to="8")
    assert asterisk_to_regex("_X.!") == "^[0-9].+.*$" and asterisk_to_regex("_x!") == "^[0-9].*$"


def test_forbidden_details_say_which_rule_for_the_log():
    policy = Policy(allowed_from=["101"], allowed_to=["8"], denied_to=["_88X."])
    cases = [("102", "8", "k: from 102 is not in allowed_from"), ("101", "7", "k: to 7 is not in allowed_to"),
             ("101", "8801", "k: to 8801 matches denied_to '_88X.'")]
    for from_, to, detail in cases:
        with pytest.raises(Forbidden) as info:
            policy.check(from_, to, "k")
        assert info.value.detail == detail


def test_address_list_edges():
    addresses = AddressList(["192.0.2.1/24", "fe80::/10"])  # host bits set: taken as the network
    assert addresses.allows("192.0.2.7") and addresses.allows("fe80::1%eth0") and not addresses.allows(None)
    with pytest.raises(Forbidden) as info:
        addresses.check("198.51.100.1")
    assert info.value.detail == "client 198.51.100.1 is not in allowed_ips"
    with pytest.raises(ValueError, match='^must be a list of networks such as "192.0.2.0/24"$'):
        AddressList("192.0.2.0/24")
