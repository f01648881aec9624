"""The app layer's import graph: no cycles, and the layers below never import it.

Only run-time imports count: an import under ``if TYPE_CHECKING:`` is for
annotations and never executes.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

import trio_ws
import trio_ws.app.testing
import trio_ws.testing
from trio_ws import CallError

PACKAGE = Path(trio_ws.__file__).parent


def runtime_imports(path: Path, package: str, *, type_checking: bool = False) -> set[str]:
    """The trio_ws modules that ``path`` (in ``package``) imports when it runs (``type_checking``: or to annotate)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and not type_checking:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                if module.startswith("trio_ws"):
                    found.add(module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("trio_ws"))
            for field in ("body", "orelse", "finalbody", "handlers"):
                child = getattr(node, field, None)
                if isinstance(child, list):
                    visit(
                        [c for c in child if isinstance(c, ast.stmt)]
                        + [s for h in child if isinstance(h, ast.ExceptHandler) for s in h.body]
                    )

    visit(tree.body)
    return found


def app_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted((PACKAGE / "app").glob("*.py")):
        name = "trio_ws.app" if path.stem == "__init__" else f"trio_ws.app.{path.stem}"
        graph[name] = {m for m in runtime_imports(path, "trio_ws.app") if m.startswith("trio_ws.app.")}
    return graph


def test_the_app_modules_import_each_other_without_cycles() -> None:
    graph = app_graph()
    done: set[str] = set()

    def walk(module: str, stack: list[str]) -> None:
        if module in stack:
            pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(module) :], module]))
        if module in done or module not in graph:
            return
        for target in graph[module]:
            walk(target, [*stack, module])
        done.add(module)

    for module in graph:
        walk(module, [])
    # The check sees the split modules (a wrong path would make it vacuous).
    assert "trio_ws.app.registry" in graph["trio_ws.app.session"]
    assert "trio_ws.app.session" in graph["trio_ws.app.app"]


def test_only_the_package_knows_the_app_class() -> None:
    # The session, the handlers and the jobs see the app through its
    # HandlerRegistry and SessionSettings, not through App (nor its privates).
    for path in sorted((PACKAGE / "app").glob("*.py")):
        if path.name in ("__init__.py", "app.py"):
            continue
        assert "trio_ws.app.app" not in runtime_imports(path, "trio_ws.app", type_checking=True), path.name


def test_the_core_modules_do_not_import_the_app_layer() -> None:
    # trio_ws/testing.py is the historical path of the app's test client: an alias module.
    aliases = {"__init__.py", "testing.py", "__main__.py"}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in aliases:
            continue
        imported = runtime_imports(path, "trio_ws.x")
        assert not {m for m in imported if m.startswith("trio_ws.app")}, path.name


def test_the_events_module_keeps_its_names() -> None:
    from trio_ws.app import events

    for name in events.__all__:
        assert getattr(events, name) is not None
    assert events.EventConnection is trio_ws.app.EventConnection
    assert events.hub_room("/chat", "a") != "a"


def test_trio_ws_testing_is_the_app_test_client() -> None:
    assert trio_ws.testing.TestClient is trio_ws.app.testing.TestClient
    assert trio_ws.testing.TestConnection is trio_ws.app.testing.TestConnection


def test_ack_error_is_a_deprecated_alias_of_call_error() -> None:
    with pytest.warns(DeprecationWarning, match=r"trio_ws\.testing\.AckError is deprecated; use trio_ws\.CallError"):
        from trio_ws.testing import AckError
    assert AckError is CallError
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            trio_ws.testing.Nope  # noqa: B018
