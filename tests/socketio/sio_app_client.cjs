// The official socket.io-client against an App with Socket.IO enabled, run by
// tests/socketio/test_app_socketio.py. Usage: node sio_app_client.cjs URL SCENARIO [TRANSPORT]
// TRANSPORT is "websocket" (default), "polling" (long-polling only) or "default" (the
// client's own: polling, then upgrade).
// Prints one JSON object per line for the test to check, then exits.
"use strict";

const { io } = require("socket.io-client");

const [url, scenario, transport] = process.argv.slice(2);
const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const options = { reconnection: false, timeout: 5000 };
if (transport === "polling") options.transports = ["polling"];
else if (transport !== "default") options.transports = ["websocket"];
const hex = (buf) => Buffer.from(buf).toString("hex");
const call = (socket, ev, ...args) => new Promise((resolve) => socket.emit(ev, ...args, (...res) => resolve(res)));

setTimeout(() => {
  out({ event: "timeout" });
  process.exit(2);
}, 20000).unref();

function finish(sockets) {
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(0), 50);
}

if (scenario === "room") {
  // Joins "tea", then waits: what the room receives is printed.
  const socket = io(url, { ...options, auth: { name: "node" } });
  socket.on("connect_error", (err) => out({ event: "connect_error", message: err.message }));
  socket.on("said", async (data) => {
    out({ event: "said", data });
    const answer = await call(socket, "say", "from node");
    out({ event: "say-ack", answer });
  });
  socket.on("bin", (buf, label) => out({ event: "bin", hex: hex(buf), label }));
  socket.on("bye", (data) => {
    out({ event: "bye", data });
    finish([socket]);
  });
  socket.on("connect", async () => {
    const rooms = await call(socket, "join", { room: "tea" });
    out({ event: "joined", rooms, id: socket.id });
  });
} else if (scenario === "calls") {
  // The server calls the client from a handler; the client's callback answers.
  const socket = io(url, { ...options, auth: { name: "node" } });
  socket.on("question", (text, callback) => callback(text.toUpperCase(), 42));
  socket.on("connect", async () => {
    const answer = await call(socket, "ask", "why?");
    out({ event: "ask-ack", answer });
    const denied = await call(socket, "secret");
    out({ event: "secret-ack", answer: denied });
    const failed = await call(socket, "fail");
    out({ event: "fail-ack", answer: failed });
    finish([socket]);
  });
} else if (scenario === "kicked") {
  // The server disconnects the client from a handler: no reconnection follows.
  const socket = io(url, { ...options, reconnection: true, auth: { name: "node" } });
  socket.on("disconnect", (reason) => {
    out({ event: "disconnect", reason, active: socket.active });
    setTimeout(() => process.exit(0), 50);
  });
  socket.on("connect", () => socket.emit("kick-me"));
} else if (scenario === "recover") {
  // Connection-state recovery: joins "tea", prints every "news" (with the offset the
  // server appends) and each connect; the server drops the transport once.
  const socket = io(url, { ...options, reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 200 });
  let connects = 0;
  socket.on("news", (n, offset) => {
    out({ event: "news", n, offset_is_string: typeof offset === "string" });
    if (n === 1) socket.emit("got");
    if (n === "last") finish([socket]);
  });
  socket.on("disconnect", (reason) => out({ event: "disconnect", reason }));
  socket.on("connect", async () => {
    connects += 1;
    out({ event: "connect", id: socket.id, recovered: socket.recovered === true, connects });
    if (connects === 1) {
      const answer = await call(socket, "join", "tea");
      out({ event: "joined", answer });
      socket.emit("ready"); // the server emits only now: the ack and the event may share one poll
    } else {
      const answer = await call(socket, "whoami");
      out({ event: "whoami", answer });
      socket.emit("again");
    }
  });
} else if (scenario === "binary") {
  // Bytes up as an ArrayBuffer, a typed-array view and a Buffer (each answered reversed),
  // then bytes down in an event.
  const socket = io(url, options);
  const kind = (value) => (Buffer.isBuffer(value) ? "Buffer" : value.constructor.name);
  socket.on("blob", (label, buf) => {
    out({ event: "blob", label, hex: hex(buf), kind: kind(buf) });
    finish([socket]);
  });
  socket.on("connect", async () => {
    const bytes = new Uint8Array([1, 2, 3, 250]);
    for (const [sent, value] of [
      ["ArrayBuffer", bytes.buffer],
      ["Uint8Array view", bytes.subarray(1, 3)],
      ["Buffer", Buffer.from([9, 8])],
    ]) {
      const [answer] = await call(socket, "reverse", value);
      out({ event: "reverse-ack", sent, hex: hex(answer), kind: kind(answer) });
    }
    socket.emit("send-blob");
  });
} else {
  out({ event: "unknown scenario", scenario });
  process.exit(3);
}
