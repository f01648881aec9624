// Drives the bundled browser client (trio_ws/static/trio_ws.js) under Node, for
// tests/app_js/test_js_client.py.
//
// Usage:
//
//   node js_client_driver.mjs CLIENT_MODULE_PATH '[step, ...]'   (further steps: JSON lines on stdin)
//
// CLIENT_MODULE_PATH is the real file of the client module; it is imported by
// its file URL. Node 20 has no global WebSocket, so the `ws` package (v8) is
// loaded with createRequire from $TRIO_WS_NODE_WS_DIR (the npm --prefix
// directory) and handed to the client as `options.WebSocket`, wrapped in a
// subclass that reports every connection attempt.
//
// Steps (JSON objects; run in order; argv steps first, then stdin lines):
//
// * {"op": "connect", "url": URL, "options": {...}, "listen": [EVENT, ...],
//    "answers": {EVENT: {"return": VALUE} | {"throw": {"name": N, "message": M}}}}
//   create the Socket; `listen` events are reported when the server emits
//   them, `answers` answer server calls (events with an id).
// * {"op": "emit", "tag": T, "event": E, "data": D, "ack": BOOL, "timeout": MS,
//    "namespace": NS}  emit; reports the promise's outcome (without waiting for it).
// * {"op": "close", "code": N, "reason": TEXT}
// * {"op": "state", "tag": T}  report connected / queued / pending counts.
// * {"op": "exit"}
//
// Output, one JSON object per line on stdout:
//
// * {"kind": "ready"}                          the module and ws are loaded
// * {"kind": "attempt", "n": N, "url": URL, "t": MS}  a WebSocket was constructed (t: a monotonic clock)
// * {"kind": "fire", "name": "connect"|"disconnect"|"namespace"|"namespace_disconnect"|"error"|"joined", "value": V}
// * {"kind": "event", "event": E, "data": D}   a listened event arrived
// * {"kind": "call", "event": E, "data": D}    a server call reached its answer handler
// * {"kind": "result", "tag": T, "ok": true, "value": V}
// * {"kind": "result", "tag": T, "ok": false, "error": {"name", "message", "type", "isCallError"}}
// * {"kind": "state", "tag": T, ...}
// * {"kind": "done", "step": INDEX}            a step was carried out
// * {"kind": "failure", "message": M}          the driver itself failed (a bug in a step)
// * {"kind": "unhandledRejection", "message": M}

import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function report(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

process.on('unhandledRejection', (reason) => {
  report({ kind: 'unhandledRejection', message: String(reason && reason.message ? reason.message : reason) });
});

const [clientPath, argvSteps = '[]'] = process.argv.slice(2);
const wsDir = process.env.TRIO_WS_NODE_WS_DIR;
const require = createRequire(wsDir ? join(wsDir, 'package.json') : import.meta.url);
const WebSocketBase = require('ws');
const client = await import(pathToFileURL(clientPath).href);

let attempts = 0;
class TrackingWebSocket extends WebSocketBase {
  constructor(url, protocols) {
    super(url, protocols);
    attempts += 1;
    report({ kind: 'attempt', n: attempts, url: String(url), t: performance.now() });
  }
}

let socket = null;

function describeError(error) {
  return {
    name: error && error.name,
    message: String(error && error.message !== undefined ? error.message : error),
    type: error && error.type,
    isCallError: error instanceof client.CallError,
  };
}

function answerHandler(event, answer) {
  return async (data) => {
    report({ kind: 'call', event, data: data === undefined ? null : data });
    if (answer.throw) {
      const error = new Error(answer.throw.message);
      if (answer.throw.name) error.name = answer.throw.name;
      throw error;
    }
    return answer.return;
  };
}

function run(step) {
  switch (step.op) {
    case 'connect': {
      const options = { ...(step.options || {}), WebSocket: TrackingWebSocket };
      socket = client.connect(step.url, options);
      for (const name of ['connect', 'disconnect', 'namespace', 'namespace_disconnect', 'error', 'joined']) {
        socket.on(name, (value) => report({ kind: 'fire', name, value: value === undefined ? null : value }));
      }
      for (const event of step.listen || []) {
        socket.on(event, (data) => {
          report({ kind: 'event', event, data: data === undefined ? null : data });
        });
      }
      for (const [event, answer] of Object.entries(step.answers || {})) {
        socket.on(event, answerHandler(event, answer));
      }
      break;
    }
    case 'emit': {
      const options = { ack: Boolean(step.ack) };
      if (step.timeout !== undefined) options.timeout = step.timeout;
      if (step.namespace !== undefined) options.namespace = step.namespace;
      const promise = socket.emit(step.event, step.data === undefined ? null : step.data, options);
      promise.then(
        (value) => report({ kind: 'result', tag: step.tag, ok: true, value: value === undefined ? null : value }),
        (error) => report({ kind: 'result', tag: step.tag, ok: false, error: describeError(error) }),
      );
      break;
    }
    case 'close':
      socket.close(step.code, step.reason);
      break;
    case 'state':
      report({
        kind: 'state',
        tag: step.tag,
        connected: socket.connected,
        queued: socket.queue.length,
        pending: socket.pending.size,
        attempts,
      });
      break;
    case 'exit':
      process.exit(0);
      break;
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
}

let index = 0;
function runReported(step) {
  try {
    run(step);
    report({ kind: 'done', step: index });
  } catch (error) {
    report({ kind: 'failure', message: String(error && error.stack ? error.stack : error) });
  }
  index += 1;
}

report({ kind: 'ready' });
for (const step of JSON.parse(argvSteps)) runReported(step);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim()) runReported(JSON.parse(line));
});
lines.on('close', () => process.exit(0));
