"""tests/run.py, the test command: which Pythons it runs the core, app and CLI tests on."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trio_ws_test_command", ROOT / "tests" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_this_python_is_found_and_an_absent_one_is_not() -> None:
    run = _load_run()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = run.find_interpreter(version)
    assert found is not None
    assert run.find_interpreter("3.99") is None


@pytest.mark.parametrize(("ci", "fails"), [("true", True), ("", False)])
def test_a_missing_python_fails_only_in_ci(
    ci: str, fails: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _load_run()
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(run, "SUPPORTED", ("3.99",))
    failed = run.run_other_pythons({})  # no environment is built for a Python that is not there
    assert failed == (["Python 3.99 missing"] if fails else [])
    out = capsys.readouterr().out
    assert "Python 3.99 not found" in out
    assert ("skipped" in out) is not fails


def test_other_pythons_run_core_app_and_cli_modules_without_tools_they_do_not_need() -> None:
    run = _load_run()
    suites = run.other_python_suites()
    assert "tests/app" in suites
    for module in ("tests/test_connection.py", "tests/test_cli.py", "tests/test_examples.py", "tests/test_hub.py"):
        assert module in suites
    assert not [path for path in suites if path.startswith(("tests/test_docs", "tests/test_benchmark"))]
    names = {requirement.split(">")[0].split("=")[0] for requirement in run._test_requirements()}
    assert {"pytest", "pytest-trio"} <= names
    assert not names & run.NOT_FOR_OTHER_PYTHONS


def test_the_test_command_runs_the_tests_marked_slow() -> None:
    """README: ``-m "not slow"`` leaves the slow tests out while iterating; the test command runs them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest brings the backport
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as file:
        options = tomllib.load(file)["tool"]["pytest"]["ini_options"]
    assert any(marker.startswith("slow:") for marker in options["markers"])
    assert "-m" not in options["addopts"].split()  # no marker expression by default

    # The marked tests: the 10,000-member hub test, the benchmark report module, the docs build,
    # the run of trio-websocket's own suite. The report module is read, not imported: it needs
    # matplotlib, which the other Pythons' environments (core, app, CLI only) do not install.
    import test_docs_build
    import test_hub
    import test_trio_websocket_suite

    for marked in (
        test_hub.test_ten_thousand_members_in_one_room_each_get_the_message_once,
        test_docs_build.test_docs_build_with_only_the_docs_extra,
        test_trio_websocket_suite.test_suite_collects_every_test,
        test_trio_websocket_suite.test_public_behaviour_tests_pass,
        test_trio_websocket_suite.test_deviations_still_deviate,
    ):
        assert [mark.name for mark in marked.pytestmark] == ["slow"]
    report_tests = ast.parse((ROOT / "tests" / "test_benchmark_report.py").read_text(encoding="utf-8"))
    module_marks = [
        ast.unparse(node.value)
        for node in report_tests.body
        if isinstance(node, ast.Assign) and [ast.unparse(target) for target in node.targets] == ["pytestmark"]
    ]
    assert module_marks == ["pytest.mark.slow"]
    # The test command gives pytest only the arguments it was given (none by default).
    run = _load_run()
    assert '("pytest", [python, "-m", "pytest", *args])' in inspect.getsource(run.main)
