"""Check the Python snippets of the documentation against the real API.

Every ``.. code-block:: python`` block of ``docs/**/*.rst`` and every
```` ```python```` block of ``README.md`` is one test, named ``FILE:LINE``.
Each block must:

(a) compile (``await``, ``async for`` and ``async with`` are allowed at the
    top level, since short snippets show the body of a coroutine);
(b) use only ``trio_ws`` names that exist: every attribute chain rooted at
    ``trio_ws`` (or at a name bound by ``import trio_ws...``) and every name
    imported with ``from trio_ws... import ...``;
(c) pass only keyword arguments that the called trio_ws function or class
    accepts. Where a signature ends in ``**options`` typed with
    ``ConnectionOptionsDict``, a keyword must be a named parameter or one of
    the shared connection options. A name assigned once from a call of a
    trio_ws class (``app = App()``) is taken as an instance of it, so
    ``app.serve(...)`` is checked against ``App.serve``; so are the callables
    given to ``functools.partial``.

Snippets are not run: they talk to servers, files and browsers.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trio_ws.options import ConnectionOptionsDict

ROOT = Path(__file__).resolve().parent.parent
OPTION_NAMES = frozenset(ConnectionOptionsDict.__annotations__)
COMPILE_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?:code-block|code|sourcecode):: (?:python|python3|py)\s*$")
_FENCE_OPEN = re.compile(r"^(?P<indent>\s*)```(?:python|python3|py)\s*$")


@dataclass(frozen=True)
class Snippet:
    """One code block: where it is and its dedented source."""

    path: Path
    line: int  # 1-based line, in the file, of the snippet's first source line
    source: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def _rst_snippets(path: Path) -> Iterator[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        indent = len(match["indent"].expandtabs())
        # Directive options (":caption: x") come first, then the body.
        while index < len(lines) and lines[index].strip().startswith(":") and lines[index].strip():
            index += 1
        body: list[str] = []
        first = None
        while index < len(lines):
            text = lines[index]
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            if text.strip() and first is None:
                first = index + 1
            if first is not None:
                body.append(text)
            index += 1
        if first is not None:
            yield Snippet(path, first, textwrap.dedent("\n".join(body)).rstrip() + "\n")


def _markdown_snippets(path: Path) -> Iterator[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE_OPEN.match(lines[index])
        index += 1
        if match is None:
            continue
        first = index + 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        yield Snippet(path, first, textwrap.dedent("\n".join(body)).rstrip() + "\n")


def _all_snippets() -> list[Snippet]:
    snippets: list[Snippet] = []
    for path in sorted((ROOT / "docs").rglob("*.rst")):
        if "_build" in path.relative_to(ROOT / "docs").parts:
            continue
        snippets.extend(_rst_snippets(path))
    snippets.extend(_markdown_snippets(ROOT / "README.md"))
    return snippets


SNIPPETS = _all_snippets()


# -- resolving names ------------------------------------------------------------

_MISSING = object()


def _resolve(dotted: str) -> Any:
    """Return the object a dotted ``trio_ws...`` path names, or ``_MISSING``.

    Submodules are imported on the way, as ``import trio_ws.hub.redis`` would.
    """
    parts = dotted.split(".")
    try:
        obj: Any = importlib.import_module(parts[0])
    except ImportError:
        return _MISSING
    for position, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        if not inspect.ismodule(obj):
            return _MISSING
        try:
            obj = importlib.import_module(".".join(parts[: position + 1]))
        except ModuleNotFoundError:
            return _MISSING
    return obj


def _dotted(node: ast.expr) -> tuple[str, list[str]] | None:
    """``a.b.c`` as ``("a", ["b", "c"])``; None for anything but a pure chain."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, attributes[::-1]
    return None


def _rebound_names(tree: ast.AST) -> dict[str, int]:
    """How many times each name is bound by something other than an import."""
    counts: dict[str, int] = {}

    def bump(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bump(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bump(node.name)
        elif isinstance(node, ast.arg):
            bump(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bump(node.name)
    return counts


class _Checker:
    """Walks one snippet's tree and collects problems as ``(line, message)``."""

    def __init__(self, tree: ast.AST) -> None:
        self.tree = tree
        self.problems: list[tuple[int, str]] = []
        # Local name -> dotted trio_ws path it stands for.
        self.aliases: dict[str, str] = {"trio_ws": "trio_ws"}
        # Local name -> the trio_ws class it holds an instance of.
        self.instances: dict[str, type] = {}
        self.rebound = _rebound_names(tree)

    def run(self) -> list[tuple[int, str]]:
        self._collect_imports()
        self._collect_instances()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                self._check_chain(node)
            elif isinstance(node, ast.Call):
                self._check_call(node)
        return sorted(set(self.problems))

    # (b) names -------------------------------------------------------------------
    def _collect_imports(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] != "trio_ws":
                        continue
                    if _resolve(alias.name) is _MISSING:
                        self.problems.append((node.lineno, f"import {alias.name}: no such module"))
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != "trio_ws":
                    continue
                module = _resolve(node.module)
                if module is _MISSING:
                    self.problems.append((node.lineno, f"from {node.module} import ...: no such module"))
                    continue
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if alias.name == "*":
                        continue
                    if _resolve(target) is _MISSING:
                        self.problems.append((node.lineno, f"from {node.module} import {alias.name}: no such name"))
                    elif self.rebound.get(alias.asname or alias.name, 0) == 0:
                        self.aliases[alias.asname or alias.name] = target
        # A name bound by the snippet itself no longer means the import.
        for name in list(self.aliases):
            if name != "trio_ws" and self.rebound.get(name, 0):
                del self.aliases[name]
        if self.rebound.get("trio_ws", 0):
            del self.aliases["trio_ws"]

    def _collect_instances(self) -> None:
        bindings: list[tuple[ast.expr, ast.expr, bool]] = []  # (target, value, via "with ... as")
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                bindings.append((node.targets[0], node.value, False))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                bindings.extend(
                    (item.optional_vars, item.context_expr, True) for item in node.items if item.optional_vars
                )
        for target, value, entered in bindings:
            if not (isinstance(target, ast.Name) and isinstance(value, ast.Call)):
                continue
            if self.rebound.get(target.id) != 1:
                continue
            cls = self._callee(value.func)
            if not (inspect.isclass(cls) and cls.__module__.split(".")[0] == "trio_ws"):
                continue
            if entered and not _enters_itself(cls):
                continue
            self.instances[target.id] = cls

    def _path_of(self, node: ast.expr) -> str | None:
        chain = _dotted(node)
        if chain is None or chain[0] not in self.aliases:
            return None
        return ".".join([self.aliases[chain[0]], *chain[1]])

    def _check_chain(self, node: ast.Attribute) -> None:
        path = self._path_of(node)
        if path is not None and _resolve(path) is _MISSING:
            self.problems.append((node.lineno, f"{ast.unparse(node)}: {path} does not exist"))
            return
        chain = _dotted(node)
        if chain is not None and chain[0] in self.instances and chain[1]:
            cls = self.instances[chain[0]]
            if not hasattr(cls, chain[1][0]) and chain[1][0] not in _instance_attributes(cls):
                self.problems.append((node.lineno, f"{ast.unparse(node)}: {cls.__name__} has no {chain[1][0]!r}"))

    # (c) keywords ----------------------------------------------------------------
    def _callee(self, func: ast.expr) -> Any:
        path = self._path_of(func)
        if path is not None:
            obj = _resolve(path)
            return None if obj is _MISSING else obj
        chain = _dotted(func)
        if chain is not None and chain[0] in self.instances and len(chain[1]) == 1:
            return getattr(self.instances[chain[0]], chain[1][0], None)
        return None

    def _check_call(self, node: ast.Call) -> None:
        self._check_start(node)
        callee = self._callee(node.func)
        keywords = [kw.arg for kw in node.keywords if kw.arg is not None]
        if _is_partial(node.func) and node.args:
            callee = self._callee(node.args[0])
        if callee is None or not keywords or not callable(callee):
            return
        module = getattr(callee, "__module__", "") or ""
        if module.split(".")[0] != "trio_ws":
            return
        problem = _keyword_problem(callee, keywords)
        if problem:
            shown = ast.unparse(node.func)
            if _is_partial(node.func):
                shown = f"{shown}({ast.unparse(node.args[0])}, ...)"
            self.problems.append((node.lineno, f"{shown}(...): {problem}"))

    def _check_start(self, node: ast.Call) -> None:
        """``nursery.start(f, ..., key=...)`` passes no keyword to ``f``: Trio raises TypeError."""
        if not (isinstance(node.func, ast.Attribute) and node.func.attr in ("start", "start_soon") and node.args):
            return
        if self._callee(node.args[0]) is None:
            return
        keywords = [kw.arg for kw in node.keywords if kw.arg not in ("name", None)]
        if keywords:
            self.problems.append(
                (
                    node.lineno,
                    f"{ast.unparse(node.func)}({ast.unparse(node.args[0])}, ..., {keywords[0]}=...): "
                    "Trio's start() and start_soon() pass no keyword arguments; use functools.partial",
                )
            )


def _enters_itself(cls: type) -> bool:
    """Whether ``async with cls(...) as x`` (or ``with``) binds the instance itself."""
    for name in ("__aenter__", "__enter__"):
        method = getattr(cls, name, None)
        if method is not None:
            returns = inspect.signature(method).return_annotation
            return returns is cls or returns in (cls.__name__, "Self", "typing.Self", "typing_extensions.Self")
    return False


def _is_partial(func: ast.expr) -> bool:
    chain = _dotted(func)
    return chain is not None and (chain == ("partial", []) or chain == ("functools", ["partial"]))


def _instance_attributes(cls: type) -> set[str]:
    """Attributes an instance gets in ``__init__`` or from annotations."""
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(getattr(klass, "__annotations__", {}))
        names.update(getattr(klass, "__slots__", ()))
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(init))
        except (OSError, TypeError):
            continue
        for sub in ast.walk(ast.parse(source)):
            if (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == "self"
                and isinstance(sub.ctx, ast.Store)
            ):
                names.add(sub.attr)
    return names


def _takes_connection_options(parameter: inspect.Parameter) -> bool:
    annotation = parameter.annotation
    if isinstance(annotation, str):
        return "ConnectionOptionsDict" in annotation
    return "ConnectionOptionsDict" in repr(annotation) or ConnectionOptionsDict in typing.get_args(annotation)


def _keyword_problem(callee: Any, keywords: list[str]) -> str | None:
    try:
        signature = inspect.signature(callee)
    except (TypeError, ValueError):
        return None
    parameters = signature.parameters.values()
    var_keyword = next((p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    if var_keyword is not None:
        if not _takes_connection_options(var_keyword):
            return None  # **kwargs of any name: nothing to check
        named = {p.name for p in parameters if p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        unknown = [kw for kw in keywords if kw not in named and kw not in OPTION_NAMES]
        if unknown:
            return f"unknown keyword(s) {', '.join(unknown)} (neither a parameter nor a connection option)"
        return None
    try:
        signature.bind_partial(**dict.fromkeys(keywords))
    except TypeError as error:
        return str(error)
    return None


# -- the tests -----------------------------------------------------------------------


def test_snippets_were_found() -> None:
    """The extraction works at all: the README and the docs have Python blocks."""
    assert any(s.path.name == "README.md" for s in SNIPPETS)
    assert sum(s.path.suffix == ".rst" for s in SNIPPETS) > 20


# Each of these has exactly one mistake, on its last line; the checker must see it.
_BAD = {
    "unknown attribute": "import trio_ws\ntrio_ws.open_websocket_urll",
    "unknown module": "import trio_ws.hub.nowhere",
    "unknown import": "from trio_ws.app import App, Nowhere",
    "alias": "import trio_ws as tw\ntw.hub.Hubb",
    "option typo": "from trio_ws import open_websocket_url as o\nasync with o('ws://h/', ping_intervall=3): ...",
    "parameter typo": "from trio_ws import serve_websocket\nawait serve_websocket(h, 'h', 1, None, handler_nurseryy=n)",
    "plain signature": "from trio_ws.app import App\nApp(hubb=None)",
    "partial": "from functools import partial\nfrom trio_ws import heartbeat\npartial(heartbeat, ws, intervall=5)",
    "method of an instance": "from trio_ws.app import App\napp = App()\nawait app.serve('h', 1, bogus=2)",
    "keyword through nursery.start": (
        "from trio_ws import serve_websocket\nawait nursery.start(serve_websocket, h, 'h', 1, None, origins=[])"
    ),
    "attribute of an instance": "from trio_ws.app import App\napp = App()\napp.nothing",
    "entered instance": (
        "from trio_ws.testing import TestClient\nasync with TestClient(app) as client:\n    client.conect('/ws')"
    ),
}


@pytest.mark.parametrize("source", _BAD.values(), ids=list(_BAD))
def test_checker_finds_mistakes(source: str) -> None:
    tree = compile(source, "<bad>", "exec", flags=COMPILE_FLAGS)
    problems = _Checker(tree).run()
    assert [line for line, _ in problems] == [source.count("\n") + 1], problems


def test_checker_accepts_correct_calls() -> None:
    source = textwrap.dedent(
        """
        from functools import partial
        import trio_ws
        from trio_ws import heartbeat, serve_websocket
        from trio_ws.app import App
        from trio_ws.testing import TestClient

        app = App(max_concurrency=2)
        await app.serve("h", 1, ssl_context=None, ping_interval=5, max_message_size=2**16)
        partial(heartbeat, ws, interval=5, timeout=5, mode="pong")
        await serve_websocket(h, "h", 1, None, origins=[None], process_request=f, ping_timeout=None)
        trio_ws.hub.Hub(queue_size=8)
        app.hub
        async with TestClient(app, compression=None) as client:
            client.connect("/ws", headers={})
        """
    )
    assert _Checker(compile(source, "<good>", "exec", flags=COMPILE_FLAGS)).run() == []


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.where for s in SNIPPETS])
def test_snippet(snippet: Snippet) -> None:
    try:
        tree = compile(snippet.source, snippet.where, "exec", flags=COMPILE_FLAGS)
    except SyntaxError as error:
        line = snippet.line + (error.lineno or 1) - 1
        pytest.fail(f"{snippet.path.relative_to(ROOT).as_posix()}:{line}: does not compile: {error.msg}")
    problems = _Checker(tree).run()
    if problems:
        where = snippet.path.relative_to(ROOT).as_posix()
        report = "\n".join(f"{where}:{snippet.line + line - 1}: {message}" for line, message in problems)
        pytest.fail(f"snippet at {snippet.where}:\n{report}", pytrace=False)
