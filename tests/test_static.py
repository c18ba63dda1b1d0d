"""Static guarantees: runs on 3.6, type-checks, imports nothing outside the standard library."""

import ast
import glob
import os
import subprocess
import sys

from helpers import CGI_SCRIPT, ROOT

RUNTIME = sorted(glob.glob(os.path.join(ROOT, "pbxcall", "*.py"))) + [CGI_SCRIPT]
BIN = os.path.dirname(sys.executable)
# What a FreePBX 16 box (Python 3.6) has; anything else would be a runtime dependency.
STDLIB_36 = {
    "argparse", "ctypes", "errno", "fcntl", "hmac", "ipaddress", "io", "json", "os", "pwd", "re", "signal",
    "struct", "sys", "time", "traceback", "typing", "wsgiref", "_operator", "grp", "datetime", "calendar",
    "resource", "socket", "select", "string", "collections", "functools", "itertools", "tempfile", "shutil",
    "math", "secrets", "stat", "glob", "binascii", "_json", "posix", "threading", "socketserver", "subprocess",
    "hashlib", "http", "ssl",
}


def run(*command):
    return subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


def test_vermin_says_python_36_is_enough():
    proc = run(os.path.join(BIN, "vermin"), "--target=3.6-", "--violations", "--no-tips",
               "--eval-annotations", *RUNTIME)
    assert proc.returncode == 0, proc.stdout


def test_mypy():
    proc = run(os.path.join(BIN, "mypy"))
    assert proc.returncode == 0, proc.stdout


def imports(path):
    with open(path) as stream:
        tree = ast.parse(stream.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_standard_library_only():
    found = {name for path in RUNTIME for name in imports(path)} - {"pbxcall"}
    assert found <= STDLIB_36, found - STDLIB_36


def test_no_forbidden_constructs():
    for path in RUNTIME:
        with open(path) as stream:
            source = stream.read()
        tree = ast.parse(source, path)
        assert "cgi" not in set(imports(path)), path
        assert "dataclasses" not in set(imports(path)), path
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.ImportFrom) and node.module == "__future__"), path
            assert type(node).__name__ != "NamedExpr", path  # walrus
    assert not glob.glob(os.path.join(ROOT, "pbxcall", "cgi.py"))


def test_ruff():
    """pyflakes, pycodestyle and import order over the package, the tests and the bench."""
    proc = run(os.path.join(BIN, "ruff"), "check", "pbxcall", "tests", "bench", os.path.join("cgi-bin", "pbxcall"))
    assert proc.returncode == 0, proc.stdout
