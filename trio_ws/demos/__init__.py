"""Demo applications served by ``trio-ws serve`` (see :mod:`trio_ws.cli`).

* :mod:`trio_ws.demos.chat`: a chat with rooms and presence, with its
  browser page (``static/chat/index.html``, which uses ``/trio_ws.js``);
* :mod:`trio_ws.demos.broadcast`: a tick every second to every connection,
  and messages broadcast to everyone.

Each module's ``create_app(hub=None)`` returns a fresh :class:`~trio_ws.app.App`;
give it a hub with a Redis backend to share it between processes.
"""
