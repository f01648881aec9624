"""A chat with rooms and presence, served with its browser page.

Run it and open the printed URL in two browser tabs::

    python examples/chat/app.py --port 8000

The app is the package's chat demo (``trio_ws/demos/chat.py``, also served by
``trio-ws serve chat``). Its page (``trio_ws/demos/static/chat/index.html``)
talks to the ``/ws`` event route through the browser client the package ships
at ``/trio_ws.js``. The events:

* ``join {"name", "room"}``: enter a room (leaving the previous one); the
  answer is ``{"room", "members"}``, and the others in the room get
  ``joined {"name", "members"}``;
* ``say "text"``: everyone in the room, the sender included, gets
  ``message {"name", "text"}``;
* ``leave``, or closing the connection: the room gets ``left {"name", "members"}``.

``members`` is the sorted list of the names in the room, so a page can show
who is present from any one of these events. A name is unique within a room
(case-insensitively): ``join`` with a taken name fails with ``NameTaken``.
"""

from __future__ import annotations

import argparse
import sys

import trio

from trio_ws.cli import run_main
from trio_ws.demos.chat import create_app


async def main(host: str, port: int) -> None:
    """Serve the chat until Ctrl-C."""
    app = create_app()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(app.serve, host, port)
        print(f"chat running at http://{host}:{server.port}/ (Ctrl-C to stop)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    sys.exit(run_main(main, args.host, args.port))  # Ctrl-C stops the server quietly
