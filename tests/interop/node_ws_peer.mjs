// Out-of-process peer built on Node's `ws` package (v8), for the trio_ws interop tests.
//
// Usage:
//
//   node node_ws_peer.mjs server '<json options>'
//   node node_ws_peer.mjs client ws://127.0.0.1:PORT/path '<json options>'
//
// `ws` is loaded with require(), so NODE_PATH=<prefix>/node_modules finds it
// (ES module imports ignore NODE_PATH).
//
// Options (JSON object, all optional): `perMessageDeflate` (bool, default
// false), `subprotocols` (client: the list to offer; server: the supported
// list in preference order — without it ws picks the first one offered) and
// `maxPayload` (bytes).
//
// Everything the peer observes is written to stdout as one JSON object per line,
// like websockets_asyncio_peer.py:
//
// * {"event": "listening", "port": N}                  (server only, first line)
// * {"event": "open", "subprotocol", "extensions", "request_extensions",
//    "request_protocols", "response_extensions", "path"}
// * {"event": "message", "type": "text"|"binary", "length": N, "sha256": H}
// * {"event": "ping", "data": HEX}   a ping was received (ws answers it itself)
// * {"event": "pong", "data": HEX}   a ping this peer sent was answered
// * {"event": "closed", "code": N, "reason": TEXT, "initiated": BOOL}
//   code/reason are from the close frame ws *received* (1006: none received);
//   initiated says whether this peer sent its close frame first.
// * {"event": "error", "type": NAME, "message": TEXT}
//
// Every data message is echoed back unchanged, except text messages starting
// with "!", which are JSON commands:
//
// * !{"op": "ping", "data": HEX}: send a ping, wait for its pong, then reply
//   with the text message {"reply": "pong", "data": HEX}.
// * !{"op": "close", "code": N, "reason": TEXT}: start the closing handshake.
// * !{"op": "send", "hex": HEX, "repeat": N, "binary": BOOL, "compress": BOOL}:
//   send bytes.fromhex(HEX) * N as one message with ws's per-message
//   `compress` option.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const { WebSocketServer } = WebSocket;

const PONG_TIMEOUT_MS = 10000;

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

function emitError(err) {
  emit({ event: 'error', type: err?.constructor?.name ?? 'Error', message: String(err?.message ?? err) });
}

function runConnection(ws, info) {
  let initiated = false;

  emit({
    event: 'open',
    subprotocol: ws.protocol || null,
    extensions: ws.extensions || null,
    ...info,
  });

  ws.on('ping', (data) => emit({ event: 'ping', data: data.toString('hex') }));
  ws.on('error', emitError);
  ws.on('close', (code, reason) => {
    emit({ event: 'closed', code, reason: reason.toString('utf8'), initiated });
  });

  const runCommand = (command) => {
    if (command.op === 'ping') {
      const data = Buffer.from(command.data, 'hex');
      const timer = setTimeout(() => {
        ws.off('pong', onPong);
        emit({ event: 'error', type: 'PongTimeout', message: command.data });
      }, PONG_TIMEOUT_MS);
      const onPong = (pong) => {
        if (!pong.equals(data)) return;
        clearTimeout(timer);
        ws.off('pong', onPong);
        emit({ event: 'pong', data: command.data });
        ws.send(JSON.stringify({ reply: 'pong', data: command.data }));
      };
      ws.on('pong', onPong);
      ws.ping(data);
    } else if (command.op === 'close') {
      initiated = true;
      ws.close(command.code, command.reason ?? '');
    } else if (command.op === 'send') {
      const unit = Buffer.from(command.hex, 'hex');
      const payload = Buffer.concat(Array(command.repeat ?? 1).fill(unit));
      ws.send(payload, { binary: command.binary ?? true, compress: command.compress ?? true });
    } else {
      emit({ event: 'error', type: 'UnknownCommand', message: JSON.stringify(command) });
    }
  };

  ws.on('message', (data, isBinary) => {
    // Default binaryType 'nodebuffer': data is one Buffer, text included.
    if (!isBinary && data.length > 0 && data[0] === 0x21 /* ! */) {
      try {
        runCommand(JSON.parse(data.toString('utf8').slice(1)));
      } catch (err) {
        emitError(err);
      }
      return;
    }
    emit({
      event: 'message',
      type: isBinary ? 'binary' : 'text',
      length: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    ws.send(data, { binary: isBinary });
  });
}

function runServer(options) {
  const responseHeaders = new WeakMap();
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: options.perMessageDeflate ?? false,
    maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
    handleProtocols: options.subprotocols
      ? (offered) => options.subprotocols.find((p) => offered.has(p)) ?? false
      : null,
  });
  wss.on('listening', () => emit({ event: 'listening', port: wss.address().port }));
  wss.on('error', emitError);
  wss.on('headers', (headers, req) => {
    const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    responseHeaders.set(req, line ? line.slice(line.indexOf(':') + 1).trim() : null);
  });
  wss.on('connection', (ws, req) => {
    runConnection(ws, {
      request_extensions: req.headers['sec-websocket-extensions'] ?? null,
      request_protocols: req.headers['sec-websocket-protocol'] ?? null,
      response_extensions: responseHeaders.get(req) ?? null,
      path: req.url,
    });
  });
}

function runClient(url, options) {
  let response = null;
  const ws = new WebSocket(url, options.subprotocols ?? [], {
    perMessageDeflate: options.perMessageDeflate ?? false,
    maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
    handshakeTimeout: 10000,
  });
  let opened = false;
  ws.on('upgrade', (res) => {
    response = res;
  });
  ws.on('open', () => {
    opened = true;
    runConnection(ws, {
      request_extensions: null,
      request_protocols: null,
      response_extensions: response?.headers['sec-websocket-extensions'] ?? null,
      path: new URL(url).pathname,
    });
  });
  // Handshake failures (the connection's own handler is added on 'open').
  ws.on('error', (err) => {
    if (!opened) emitError(err);
  });
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'server') {
  runServer(JSON.parse(rest[0] ?? '{}'));
} else if (role === 'client') {
  runClient(rest[0], JSON.parse(rest[1] ?? '{}'));
} else {
  process.stderr.write('usage: node node_ws_peer.mjs server [json] | client URL [json]\n');
  process.exit(2);
}
