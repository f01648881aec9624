// trio_ws browser client: events, acknowledgements and server calls over the
// trio_ws event envelope (see docs/topics/envelope.rst), with reconnection.
// No dependencies; an ES module. Usage:
//
//   import { connect } from "/trio_ws.js";
//   const socket = connect("ws://localhost:8000/ws");
//   socket.on("chat", (data) => console.log(data));      // return value answers server calls
//   const reply = await socket.emit("join", { room: "lobby" }, { ack: true });
//   socket.on("joined", ({ room, recovered }) => { if (!recovered) reload(room); });
//
// Rooms with history (docs/topics/delivery.rst): the client remembers the
// last epoch and offset it saw in each such room and, when it reconnects,
// sends them in the trio_ws_resume query parameter; when the server joins it
// to the room again it first sends what was missed, then a "joined" envelope
// with recovered true or false.

const DEFAULT_NAMESPACE = "/";
const RESUME_PARAM = "trio_ws_resume";

export class CallError extends Error {
  constructor(type, message) {
    super(`${type}: ${message}`);
    this.type = type;
  }
}

export class Socket {
  constructor(url, options = {}) {
    this.url = url;
    this.namespace = options.namespace || DEFAULT_NAMESPACE;
    this.reconnect = options.reconnect !== false;
    this.minDelay = options.minDelay ?? 250;
    this.maxDelay = options.maxDelay ?? 10000;
    this.ackTimeout = options.ackTimeout ?? 10000;
    this.protocols = options.protocols;
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    this.resume = options.resume !== false;
    this.positions = new Map(); // namespace -> Map(room -> [epoch, offset])
    this.handlers = new Map();
    this.pending = new Map();
    this.nextId = 0;
    this.queue = [];
    this.attempt = 0;
    this.reconnectTimer = null;
    this.closedByUser = false;
    this.connected = false;
    this.ws = null;
    this.open();
  }

  // The URL of the next connection: with the rooms' positions when there are any.
  resumeUrl() {
    if (!this.resume || this.positions.size === 0) return this.url;
    const spaces = {};
    for (const [namespace, rooms] of this.positions) spaces[namespace] = Object.fromEntries(rooms);
    const separator = this.url.includes("?") ? "&" : "?";
    return `${this.url}${separator}${RESUME_PARAM}=${encodeURIComponent(JSON.stringify(spaces))}`;
  }

  remember(namespace, room, epoch, offset) {
    if (typeof room !== "string" || typeof epoch !== "string" || !Number.isInteger(offset)) return;
    if (!this.positions.has(namespace)) this.positions.set(namespace, new Map());
    this.positions.get(namespace).set(room, [epoch, offset]);
  }

  open() {
    const url = this.resumeUrl();
    const ws = this.protocols ? new this.WebSocketImpl(url, this.protocols) : new this.WebSocketImpl(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.connected = true;
      if (this.namespace !== DEFAULT_NAMESPACE) {
        this.sendRaw({ type: "connect", namespace: this.namespace });
      }
      const waiting = this.queue;
      this.queue = [];
      for (const text of waiting) ws.send(text);
      for (const call of this.pending.values()) if (call.socket === null) call.socket = ws;
      this.fire("connect", undefined);
    };
    ws.onmessage = (message) => this.receive(message.data);
    ws.onclose = (event) => {
      const wasConnected = this.connected;
      this.connected = false;
      // Only calls that went out on this connection are lost; calls queued
      // while disconnected stay pending and go out after the reconnect.
      this.failPending(new Error(`connection closed (${event.code})`), ws);
      if (wasConnected) this.fire("disconnect", { code: event.code, reason: event.reason });
      if (this.reconnect && !this.closedByUser) {
        const delay = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt) * (0.5 + Math.random() / 2);
        this.attempt += 1;
        this.reconnectTimer = setTimeout(() => {
          this.reconnectTimer = null;
          if (!this.closedByUser) this.open();
        }, delay);
      }
    };
    ws.onerror = () => {};
  }

  on(event, handler) {
    this.handlers.set(event, handler);
    return this;
  }

  off(event) {
    this.handlers.delete(event);
    return this;
  }

  emit(event, data = null, options = {}) {
    const envelope = { type: "event", event, namespace: options.namespace || this.namespace, data };
    if (!options.ack) {
      this.sendRaw(envelope);
      return Promise.resolve();
    }
    this.nextId += 1;
    const id = this.nextId;
    envelope.id = id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${event} within ${this.ackTimeout} ms`));
      }, options.timeout ?? this.ackTimeout);
      const call = { resolve, reject, timer, socket: null };
      this.pending.set(id, call);
      call.socket = this.sendRaw(envelope);
    });
  }

  close(code = 1000, reason = "") {
    this.closedByUser = true;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    if (this.ws) this.ws.close(code, reason);
  }

  // Send now if connected (returns the socket used), else queue (returns null).
  sendRaw(envelope) {
    const text = JSON.stringify(envelope);
    if (this.ws && this.connected && this.ws.readyState === 1) {
      this.ws.send(text);
      return this.ws;
    }
    this.queue.push(text);
    return null;
  }

  async receive(text) {
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch (error) {
      this.fire("error", { type: "BadEnvelope", message: String(error) });
      return;
    }
    if (envelope.type === "ack") {
      const call = this.pending.get(envelope.id);
      if (!call) return;
      this.pending.delete(envelope.id);
      clearTimeout(call.timer);
      if (envelope.error) call.reject(new CallError(envelope.error.type, envelope.error.message));
      else call.resolve(envelope.data);
    } else if (envelope.type === "event") {
      if (envelope.offset !== undefined) {
        this.remember(envelope.namespace || DEFAULT_NAMESPACE, envelope.room, envelope.epoch, envelope.offset);
      }
      const handler = this.handlers.get(envelope.event);
      if (envelope.id === undefined || envelope.id === null) {
        if (!handler) return;
        try {
          await handler(envelope.data);
        } catch (error) {
          this.fire("error", { type: error.name || "Error", message: String(error.message || error) });
        }
        return;
      }
      if (!handler) {
        this.sendRaw({ type: "ack", id: envelope.id, error: { type: "UnknownEvent", message: envelope.event } });
        return;
      }
      try {
        const result = await handler(envelope.data);
        this.sendRaw({ type: "ack", id: envelope.id, data: result === undefined ? null : result });
      } catch (error) {
        this.sendRaw({ type: "ack", id: envelope.id, error: { type: error.name || "Error", message: String(error.message || error) } });
      }
    } else if (envelope.type === "error" || envelope.type === "connect_error") {
      this.fire("error", envelope.error);
    } else if (envelope.type === "joined") {
      const namespace = envelope.namespace || DEFAULT_NAMESPACE;
      this.remember(namespace, envelope.room, envelope.epoch, envelope.offset);
      this.fire("joined", {
        namespace,
        room: envelope.room,
        recovered: envelope.recovered === true,
        reason: envelope.reason ?? null,
        epoch: envelope.epoch,
        offset: envelope.offset,
      });
    } else if (envelope.type === "connected") {
      this.fire("namespace", envelope.namespace);
    } else if (envelope.type === "disconnect") {
      // The server took this socket out of a namespace; the connection stays open.
      this.fire("namespace_disconnect", envelope.namespace || DEFAULT_NAMESPACE);
    }
  }

  fire(name, value) {
    const handler = this.handlers.get(name);
    if (handler) {
      try {
        handler(value);
      } catch (error) {
        console.error(error);
      }
    }
  }

  failPending(error, socket) {
    for (const [id, call] of this.pending) {
      if (call.socket !== socket) continue;
      clearTimeout(call.timer);
      call.reject(error);
      this.pending.delete(id);
    }
  }
}

export function connect(url, options = {}) {
  return new Socket(url, options);
}
