// A Socket.IO client run by tests/socketio/: the official socket.io-client.
// Usage: node sio_client.cjs URL SCENARIO [TRANSPORTS]
// TRANSPORTS is "websocket" (the default), "polling", or "default" (the client's
// own default: long-polling first, then the upgrade to WebSocket).
// Prints one JSON object per line for the test to check, then exits.
"use strict";

const { io } = require("socket.io-client");

const [url, scenario, transports = "websocket"] = process.argv.slice(2);
const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const options = { reconnection: false, timeout: 5000 };
if (transports !== "default") options.transports = [transports];
const hex = (buf) => Buffer.from(buf).toString("hex");
// Emit with a callback; resolves with every argument the server acknowledged with.
const call = (socket, ev, ...args) => new Promise((resolve) => socket.emit(ev, ...args, (...res) => resolve(res)));

setTimeout(() => {
  out({ event: "timeout" });
  process.exit(2);
}, 10000).unref();

function finish(sockets) {
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(0), 50);
}

if (scenario === "full") {
  const socket = io(url, { ...options, auth: { token: "abc" } });
  socket.on("connect_error", (err) => out({ event: "connect_error", message: err.message }));
  socket.on("add", (a, b, callback) => callback(a + b, "sum"));
  socket.on("bytes", (label, buf, nested) =>
    out({ event: "bytes", label, hex: hex(buf), nested: hex(nested.inner[1]) }),
  );
  socket.on("done", (value) => {
    out({ event: "done", value });
    out({ event: "transport", name: socket.io.engine.transport.name });
    finish([socket]);
  });
  socket.on("connect", async () => {
    out({ event: "connect", id: socket.id });
    const echoed = await call(socket, "echo", "hi", { n: 1 }, [true, null]);
    out({ event: "echo-ack", echoed });
    const reversed = await call(socket, "reverse", Buffer.from([1, 2, 3, 250]), { keep: "text" });
    out({ event: "reverse-ack", hex: hex(reversed[0]), rest: reversed[1] });
    const empty = await call(socket, "nothing");
    out({ event: "nothing-ack", count: empty.length });
    socket.emit("no-ack", "fire and forget");
    socket.emit("trigger", 2, 3);
  });
} else if (scenario === "namespaces") {
  const main = io(url, options);
  const refused = io(url + "private", { ...options, auth: { token: "wrong" } });
  const unknown = io(url + "nowhere", options);
  const chat = io(url + "chat", options);
  let pending = 4;
  const done = () => {
    if (--pending === 0) finish([main, refused, unknown, chat]);
  };
  refused.on("connect_error", (err) => {
    out({ event: "refused", message: err.message, data: err.data });
    done();
  });
  unknown.on("connect_error", (err) => {
    out({ event: "unknown", message: err.message });
    done();
  });
  main.on("connect", () => done());
  chat.on("connect", async () => {
    const answer = await call(chat, "where");
    out({ event: "chat-where", answer, same_manager: chat.io === main.io });
    done();
  });
} else {
  out({ event: "unknown scenario", scenario });
  process.exit(3);
}
