"""Static files for an :class:`~trio_ws.app.App`: mounted directories and the bundled browser client.

The app answers plain-HTTP GETs (and HEADs) during the handshake with these
files (:meth:`App.process_request`); this module only finds a file for a
path and tells its content type. A path never leaves a mounted directory:
``..`` segments and symbolic links that resolve outside it find nothing.
"""

from __future__ import annotations

import mimetypes
import os
from importlib import resources
from pathlib import Path

__all__ = ["CLIENT_SCRIPT", "StaticFiles", "client_script"]

#: The bundled browser client's file name (served at ``/trio_ws.js`` by default).
CLIENT_SCRIPT = "trio_ws.js"


def client_script() -> tuple[bytes, str]:
    """The bundled browser client and its content type."""
    script = resources.files("trio_ws").joinpath("static").joinpath(CLIENT_SCRIPT).read_bytes()
    return script, "text/javascript; charset=utf-8"


class StaticFiles:
    """Directories mounted at URL prefixes, looked up by request path."""

    def __init__(self) -> None:
        self._mounts: list[tuple[str, Path]] = []

    def mount(self, prefix: str, directory: str | os.PathLike[str]) -> None:
        """Serve the files under ``directory`` at ``prefix``.

        Raises:
            ValueError: when ``directory`` is not a directory.
        """
        root = Path(directory).resolve()
        if not root.is_dir():
            raise ValueError(f"not a directory: {directory}")
        self._mounts.append(("/" + prefix.strip("/"), root))

    def find(self, path: str) -> tuple[bytes, str] | None:
        """The body and content type of the file at ``path``, or None.

        ``/`` (a directory) maps to its ``index.html``; mounts are tried in
        the order they were added.
        """
        for prefix, root in self._mounts:
            if path != prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            relative = path[len(prefix) :].lstrip("/") or "index.html"
            candidate = (root / relative).resolve()
            if root not in candidate.parents and candidate != root:
                continue
            if candidate.is_dir():
                candidate = candidate / "index.html"
            if candidate.is_file():
                kind = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind == "application/javascript":
                    kind += "; charset=utf-8"
                return candidate.read_bytes(), kind
        return None
