// The WebSocket side of the page: one connection, requests with refs, subscriptions that resume
// from their last seq after any drop, and posts that survive a drop. Speaks docs/protocol.md
// only (it is a reference client for it), in JSON: the page needs no MessagePack decoder, and
// the server encodes each event once per format whatever the mix of clients.

const BACKOFF_MIN = 500; // ms, doubling to BACKOFF_MAX, plus up to as much again at random
const BACKOFF_MAX = 15000;
// A stopped server (or a dead path to it) closes nothing: the socket just goes quiet, and a
// browser cannot see the server's WebSocket pings. So the page asks (`ping`) once the socket has
// been quiet for QUIET ms, and gives the socket up — reconnect, resume, resend — when nothing at
// all came for GIVE_UP ms more: longer than any request may take while the database is away
// (docs/protocol.md, "Retrying").
const QUIET = 20000;
const GIVE_UP = 30000;

export class Live {
  constructor({ userId, onStatus, onEvent, onFrame, onWelcome, onSessionEnded }) {
    this.onStatus = onStatus;
    this.onEvent = onEvent;
    this.onFrame = onFrame;
    this.onWelcome = onWelcome;
    this.onSessionEnded = onSessionEnded;
    this.ws = null;
    this.nextRef = 1;
    this.replies = new Map(); // ref -> {resolve, reject}
    this.channels = new Map(); // channel -> {lastSeq, wanted}
    this.kept = new Set(); // channels never unsubscribed (keep())
    // Posts typed and sent but not yet acknowledged, this user's only (state.js userKey).
    this.pendingKey = `twinhub.pending.${userId}`;
    this.pending = new Map(JSON.parse(localStorage.getItem(this.pendingKey) || "[]")); // client_id -> post frame
    this.delay = BACKOFF_MIN;
    this.ready = false;
    this.stopped = false;
    this.heard = 0; // when the last frame (or the socket's opening) came
    this.pinging = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000);
  }

  connect() {
    this.onStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`, ["twinhub.v1.json"]);
    this.ws = ws;
    ws.onopen = () => {
      this.heard = Date.now();
      this.watch(ws);
      this.send({ type: "hello" }).then((welcome) => this.welcomed(welcome), () => {});
    };
    ws.onmessage = (msg) => {
      this.heard = Date.now();
      for (const frame of JSON.parse(msg.data)) this.receive(frame);
    };
    ws.onclose = (ev) => this.closed(ev);
  }

  watch(ws) {
    const timer = setInterval(() => {
      if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) {
        clearInterval(timer);
        return;
      }
      const quiet = Date.now() - this.heard;
      if (quiet > QUIET + GIVE_UP) {
        clearInterval(timer);
        ws.onclose = null; // the server will not answer the close either
        ws.onmessage = null;
        ws.close();
        this.closed({ code: 1006 });
      } else if (quiet > QUIET && !this.pinging) {
        this.pinging = true;
        this.send({ type: "ping" }).catch(() => {}).finally(() => { this.pinging = false; });
      }
    }, 5000);
  }

  async welcomed(welcome) {
    this.ready = true;
    this.delay = BACKOFF_MIN;
    this.onStatus("online");
    this.onWelcome(welcome);
    // Resume every channel from the last seq seen: nothing missed, nothing twice.
    for (const [channel, state] of this.channels) {
      if (state.wanted) this.subscribeFrame(channel, state.lastSeq).catch(() => {});
    }
    // Posts typed before the drop go out again with the same client_id: stored once.
    for (const frame of this.pending.values()) this.post(frame).catch(() => {});
  }

  closed(ev) {
    const wasReady = this.ready;
    this.ready = false;
    for (const { reject } of this.replies.values()) reject({ code: "network" });
    this.replies.clear();
    if (ev.code === 4001) {
      this.stopped = true;
      this.onSessionEnded();
      return;
    }
    if (this.stopped) return;
    this.onStatus("offline");
    const wait = this.delay + Math.random() * this.delay; // jitter: a class does not reconnect in lockstep
    this.delay = Math.min(this.delay * 2, BACKOFF_MAX);
    setTimeout(() => this.connect(), wasReady ? wait : wait);
  }

  receive(frame) {
    if (frame.ref !== undefined && this.replies.has(frame.ref)) {
      const { resolve, reject } = this.replies.get(frame.ref);
      this.replies.delete(frame.ref);
      (frame.type === "error" ? reject : resolve)(frame);
      return;
    }
    if (frame.type === "event") {
      const state = this.channels.get(frame.channel);
      if (state) {
        if (frame.seq <= state.lastSeq) return; // already shown
        state.lastSeq = frame.seq;
      }
      this.onEvent(frame);
      return;
    }
    if (frame.type === "welcome") {
      this.onWelcome(frame); // rights changed: a fresh welcome
      return;
    }
    this.onFrame(frame); // presence, typing, errors about channels
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject({ code: "network" });
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      this.replies.set(ref, { resolve, reject });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  request(frame) {
    return this.ready ? this.send(frame) : Promise.reject({ code: "network" });
  }

  subscribe(channel, since) {
    const state = this.channels.get(channel) || { lastSeq: since ?? 0, wanted: true };
    state.wanted = true;
    if (since !== undefined && since !== null) state.lastSeq = since;
    this.channels.set(channel, state);
    return this.ready ? this.subscribeFrame(channel, since === undefined ? undefined : state.lastSeq) : Promise.resolve(null);
  }

  subscribeFrame(channel, since) {
    const frame = { type: "subscribe", channel };
    if (since !== undefined && since !== null) frame.since = since;
    return this.send(frame).then((ok) => {
      const state = this.channels.get(channel);
      if (state && (since === undefined || since === null)) state.lastSeq = Math.max(state.lastSeq, ok.head);
      return ok;
    });
  }

  unsubscribe(channel) {
    const state = this.channels.get(channel);
    if (state) state.wanted = false;
    this.channels.delete(channel);
    if (this.kept.has(channel)) return Promise.resolve(); // the shell still follows it
    return this.request({ type: "unsubscribe", channel }).catch(() => {});
  }

  // A channel the shell follows for as long as the page is open (a project's feed, for the
  // unread counts): a screen that also subscribed to it does not end it when it closes.
  keep(channel) {
    this.kept.add(channel);
  }

  // A post kept until acknowledged (localStorage: a reload does not lose it either).
  post(frame) {
    this.pending.set(frame.client_id, frame);
    this.savePending();
    if (!this.ready) return Promise.reject({ code: "network", pending: true });
    return this.send(frame).then(
      (ok) => {
        this.pending.delete(frame.client_id);
        this.savePending();
        return ok;
      },
      (err) => {
        if (err.code !== "network" && err.code !== "unavailable") {
          this.pending.delete(frame.client_id); // refused for good: say so, do not retry
          this.savePending();
        }
        throw err;
      },
    );
  }

  pendingFor(channel) {
    return [...this.pending.values()].filter((f) => f.channel === channel);
  }

  savePending() {
    localStorage.setItem(this.pendingKey, JSON.stringify([...this.pending]));
  }

  // The session changed under this socket (a new password gives a new session cookie): a fresh
  // socket with it, resuming every channel; the old one goes without a word — its 4001 is not
  // this page's session ending.
  renew() {
    const old = this.ws;
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      old.close(1000);
    }
    for (const { reject } of this.replies.values()) reject({ code: "network" });
    this.replies.clear();
    this.ready = false;
    this.stopped = false;
    this.connect();
  }
}

export function clientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
