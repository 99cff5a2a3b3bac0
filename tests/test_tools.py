"""The rule for tests that need a system tool: skip with the reason, or fail in CI."""

from __future__ import annotations

import pytest

from tests.conftest import REQUIRE_TOOLS_VAR, require_tool

MISSING = "hpoptim-no-such-tool"


def test_a_missing_tool_skips_the_test_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRE_TOOLS_VAR, raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=f"{MISSING} is not on PATH .*apt-get install hpoptim-tool"
    ):
        require_tool(MISSING, package="hpoptim-tool", purpose="a test needs it")


def test_a_missing_tool_fails_the_test_where_tools_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_TOOLS_VAR}=1 but {MISSING}"):
        require_tool(MISSING, package="hpoptim-tool", purpose="a test needs it")


def test_a_present_tool_is_found_by_any_of_its_names() -> None:
    assert require_tool(MISSING, "sh", package="hpoptim-tool", purpose="a test needs it").endswith(
        "/sh"
    )
