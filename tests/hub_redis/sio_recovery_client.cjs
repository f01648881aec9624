// Two official socket.io-client sockets against two App processes over one Redis
// (run by test_socketio_recovery_processes.py).
// Usage: node sio_recovery_client.cjs URL_A URL_B
// "alice" starts on A with the client's default transports (long-polling, then the
// upgrade); "bob" is on B over WebSocket. A drops alice's transport; bob speaks; alice
// reconnects to B (as a load balancer would send her there) when the test writes a
// line on stdin (once it saw her state parked in Redis, or expired).
// Prints one JSON object per line, then exits.
"use strict";

const { io } = require("socket.io-client");

const [urlA, urlB] = process.argv.slice(2);
const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const call = (socket, ev, ...args) => new Promise((resolve) => socket.emit(ev, ...args, (...res) => resolve(res)));

setTimeout(() => {
  out({ event: "timeout" });
  process.exit(2);
}, 20000).unref();

const alice = io(urlA, { reconnection: false, timeout: 5000 });
const bob = io(urlB, { transports: ["websocket"], reconnection: false, timeout: 5000 });

const waiters = { alice: {}, bob: {} };
const expect = (who, text) => new Promise((resolve) => (waiters[who][text] = resolve));
for (const [who, socket] of [["alice", alice], ["bob", bob]]) {
  socket.on("news", (text, offset) => {
    out({ who, event: "news", text, offset_is_string: typeof offset === "string" });
    const resolve = waiters[who][text];
    if (resolve) resolve();
  });
  socket.on("add", (a, b, callback) => callback(a + b));
}
alice.on("disconnect", async (reason) => {
  out({ who: "alice", event: "disconnect", reason });
  if (reason !== "transport close") return;
  alice.io.uri = urlB; // the next connection goes to B
  // Missed by alice while away.
  await call(bob, "say", "b2");
  await call(bob, "say", "b3");
  out({ who: "bob", event: "said while away" });
  process.stdin.once("data", () => alice.connect()); // with her pid and last offset
});
// Logged from a listener, as the client dispatches it: not after an `await`, whose
// continuation runs only once the client has also dispatched the packets that came in
// the same read (on a recovered connection, the CONNECT answer and the missed events
// often do). socket.io-client dispatches events received before a CONNECT ahead of
// "connect", so a server writing one first still shows here as a misordered event.
let firstSid = null;
alice.on("connect", () => {
  const record = { who: "alice", event: "connect", recovered: alice.recovered };
  if (firstSid === null) firstSid = alice.id;
  else record.same_sid = alice.id === firstSid;
  out(record);
});
const connected = (socket) => new Promise((resolve) => socket.once("connect", resolve));

(async () => {
  await Promise.all([connected(alice), connected(bob)]);
  out({ who: "alice", event: "joined", on: await call(alice, "join", "tea") });
  out({ who: "bob", event: "joined", on: await call(bob, "join", "tea") });
  let got = expect("bob", "a1");
  out({ who: "alice", event: "said", on: await call(alice, "say", "a1") });
  await got;
  got = expect("alice", "b1");
  out({ who: "bob", event: "said", on: await call(bob, "say", "b1") });
  await got;
  out({ who: "alice", event: "asked", answer: await call(alice, "ask") });
  await new Promise((resolve) => (alice.io.engine.transport.name === "websocket" ? resolve() : alice.io.engine.once("upgrade", resolve)));
  out({ who: "alice", event: "transport", name: alice.io.engine.transport.name });
  const back = connected(alice);
  alice.emit("drop-me");
  await back;
  out({ who: "alice", event: "whoami", answer: await call(alice, "whoami") });
  if (alice.recovered) {
    got = expect("alice", "b4"); // still in "tea"
    out({ who: "bob", event: "said", on: await call(bob, "say", "b4") });
    await got;
  }
  alice.disconnect();
  bob.disconnect();
  setTimeout(() => process.exit(0), 50);
})();
