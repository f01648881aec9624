"""The quick-start demo: ``python3 examples/demo.py [--port 8000]``.

Sets up ``.venv`` on first use (a virtual environment with trio_ws
installed), then serves the chat example — rooms and presence on the
in-memory hub, its browser page and the shipped JavaScript client — and
prints the URL to open in two browser tabs. Ctrl-C stops it.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    _bootstrap = runpy.run_path(str(ROOT / ".ci" / "bootstrap.py"))
    if not _bootstrap["in_environment"]():
        _bootstrap["reexec"]("", Path(__file__), sys.argv[1:])

import argparse  # noqa: E402

import trio  # noqa: E402

from trio_ws.cli import run_main  # noqa: E402
from trio_ws.demos.chat import create_app  # noqa: E402


async def serve(host: str, port: int) -> int:
    """Serve the chat app until cancelled; return 1 if the port cannot be used."""
    app = create_app()
    async with trio.open_nursery() as nursery:
        try:
            server = await nursery.start(app.serve, host, port)
        except OSError as err:
            print(
                f"demo: cannot listen on {host}:{port} ({err.strerror}); choose another port with --port",
                file=sys.stderr,
            )
            return 1
        url = f"http://{host}:{server.port}/"
        print(f"trio_ws chat demo running: open {url} in two browser tabs (Ctrl-C to stop)", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The trio_ws chat demo.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    sys.exit(run_main(serve, args.host, args.port))  # Ctrl-C stops the server quietly
