"""The suite's own helpers: a missing optional extra skips locally and fails in CI."""

import pytest

from conftest import optional_import


def test_a_present_extra_is_imported():
    assert optional_import("json", "none").dumps([1]) == "[1]"


def test_a_missing_extra_skips_locally(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"tether\[beam\]"):
        optional_import("no_such_module_for_tether_tests", "beam")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_extra_fails_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true: optional dependency"):
        optional_import("no_such_module_for_tether_tests", "beam")
