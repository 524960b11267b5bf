"""tests/needs.py itself: a missing tool skips with its reason, and fails (never skips) where $SQNXT_EDGE_REQUIRE
names it; both the call (`need`) and the mark (`mark`, checked by conftest's setup hook)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
pytest_plugins = ["pytester"]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import needs

def pytest_configure(config):
    needs.register(config)

def pytest_runtest_setup(item):
    needs.check_marks(item)
"""

TESTS = """
from needs import mark, need

def test_call_missing():
    need("ssh", False, "sshd is missing here")

def test_call_present():
    need("ssh", True, "never said")

@mark("qemu", False, "qemu is missing here")
def test_mark_missing():
    pass

@mark("tflite", False, "litert is missing here")
def test_other_tool():
    pass
"""


def _outcomes(pytester, monkeypatch, require: str | None) -> dict[str, tuple[str, str]]:
    """{test name: (outcome, its report lines)} of an in-process pytest run of TESTS under `require`."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tools=TESTS)
    monkeypatch.delenv("SQNXT_EDGE_REQUIRE", raising=False)
    if require is not None:
        monkeypatch.setenv("SQNXT_EDGE_REQUIRE", require)
    monkeypatch.setenv("COLUMNS", "400")  # the short summary keeps the whole message
    result = pytester.runpytest("-v", "-rA", "-p", "no:cacheprovider")
    lines = result.outlines
    found: dict[str, tuple[str, str]] = {}
    for line in lines:  # -v: "test_tools.py::test_x SKIPPED (reason)"; -rA: "FAILED test_tools.py::test_x - why"
        m = re.match(r"test_tools\.py::(\w+) (PASSED|FAILED|SKIPPED|ERROR)", line)
        if m:
            found[m.group(1)] = (m.group(2), " ".join(x for x in lines if f"::{m.group(1)} " in x))
    assert len(found) == 4, "\n".join(lines)
    return found


def test_missing_tools_skip_with_their_reason_locally(pytester, monkeypatch):
    got = _outcomes(pytester, monkeypatch, None)
    assert got["test_call_present"][0] == "PASSED"
    for name, reason in [
        ("test_call_missing", "sshd is missing here"),
        ("test_mark_missing", "qemu is missing here"),
        ("test_other_tool", "litert is missing here"),
    ]:
        assert got[name][0] == "SKIPPED" and reason in got[name][1], got[name]


@pytest.mark.parametrize("require", ["ssh,qemu", " qemu , ssh ", "all"])
def test_required_tools_fail_instead_of_skipping(pytester, monkeypatch, require):
    got = _outcomes(pytester, monkeypatch, require)
    assert got["test_call_present"][0] == "PASSED"
    assert got["test_call_missing"][0] == "FAILED" and "requires 'ssh'" in got["test_call_missing"][1]
    assert got["test_mark_missing"][0] == "ERROR" and "requires 'qemu'" in got["test_mark_missing"][1]  # at setup
    assert got["test_other_tool"][0] == ("ERROR" if require == "all" else "SKIPPED")  # only what is named


def test_ci_requires_every_tool():
    """.ci/run exports the variable with every name the suite uses, before the test command."""
    script = (HERE.parent / ".ci" / "run").read_text()
    m = re.search(r"^export SQNXT_EDGE_REQUIRE=(\S+)", script, re.M)
    assert m, "no `export SQNXT_EDGE_REQUIRE=...` line in .ci/run"
    assert set(m.group(1).split(",")) >= {"ssh", "qemu", "tflite", "openvino", "opencv"}
    assert m.start() < script.index('timeout 4800 bash -c "$cmd"')
