"""Helpers shared by several test modules, kept in one place.

- :mod:`support.rawframes`: RFC 6455 frames and handshakes written by hand, and
  a raw peer that speaks them over a Trio stream (independent of trio_ws).
- :mod:`support.rawhttp`: upgrade requests and 101 answers written by hand.
- :mod:`support.sockets`: Unix socket paths that fit, TCP stream pairs and
  resets, the leaves of an exception group.
- :mod:`support.pairs`: a trio_ws client and server connected in-process.
- :mod:`support.envelopes`: a client of the event envelope, in plain JSON.
- :mod:`support.interop`: the interop suites' peer processes, trio_ws server
  and message checks (websockets and Node's ws).
- :mod:`support.sio`: the Socket.IO peers (Node's official client,
  python-socketio's client) and raw Engine.IO connections.
- :mod:`support.node_ws`: Node with the ``ws`` package, and its fixtures.
- :mod:`support.proxies`: the HTTP and SOCKS proxies the proxy tests start.
- :mod:`support.processes`: child processes' output, and stopping them with Ctrl-C.

``tests/`` is on ``sys.path`` (pytest puts the directory of the root
``conftest.py`` there), so test modules at any depth import ``support.<module>``.
"""
