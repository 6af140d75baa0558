// The `ws` library (Node.js), a loop of send(): the fastest plain WebSocket server in the comparison.
//
// Same wire shape as TwinHub (subprotocol twinhub.v1.json; a client frame is one JSON object,
// every server message a JSON array of frames; loadtests/peers/shape.py is the Python twin of
// this file's answer()). No authentication, no persistence. A post's event is encoded once into
// a Buffer and sent to each subscriber of its channel in a loop — one WebSocket message per
// event per subscriber, as the `ws` README's broadcast example does.
//
//     node loadtests/peers/node_ws.js [--host 127.0.0.1] [--port 0]
//
// Prints "node ws listening on ws://HOST:PORT"; stops on SIGINT or SIGTERM.
'use strict';

const { WebSocketServer } = require('ws');

const SUBPROTOCOL = 'twinhub.v1.json';
const AUTHOR = { id: 1, name: 'Load publisher', school: 'Bench' };

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
}

const subscribers = new Map(); // channel -> Set of sockets
const heads = new Map(); // channel -> last seq
let lastId = 0;

function message(frame) {
  return '[' + JSON.stringify(frame) + ']';
}

function answer(ws, frame, joined) {
  const { type, ref } = frame;
  if (type === 'post') {
    const channel = frame.channel;
    const seq = (heads.get(channel) || 0) + 1;
    heads.set(channel, seq);
    const id = ++lastId;
    const event = {
      type: 'event', channel, seq, kind: 'message.posted',
      message: {
        id, seq, author: AUTHOR, text: frame.text, state: 'visible',
        created_at: new Date().toISOString(), edited_at: null, client_id: null,
      },
    };
    const data = Buffer.from(message(event)); // encoded once
    for (const other of subscribers.get(channel) || []) {
      if (other.readyState === other.OPEN) other.send(data, { binary: false });
    }
    return { type: 'ok', ref, channel, seq, id, duplicate: false };
  }
  if (type === 'subscribe') {
    const channel = frame.channel;
    if (!subscribers.has(channel)) subscribers.set(channel, new Set());
    subscribers.get(channel).add(ws);
    joined.add(channel);
    return { type: 'ok', ref, channel, head: heads.get(channel) || 0, replayed: 0 };
  }
  if (type === 'hello') {
    return { type: 'welcome', ref, user: { id: 0, name: 'anyone' }, spaces: [], limits: {} };
  }
  return { type: 'error', ref, code: 'unknown_type', message: `${JSON.stringify(type)} is not handled here` };
}

const host = option('--host', '127.0.0.1');
const server = new WebSocketServer({
  host, port: Number(option('--port', '0')), path: '/ws', backlog: 2048, maxPayload: 1 << 20,
  perMessageDeflate: false, clientTracking: false,
  handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

server.on('connection', (ws) => {
  const joined = new Set();
  ws.on('message', (data) => {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      ws.send(message({ type: 'error', ref: null, code: 'bad_frame', message: 'not JSON' }));
      return;
    }
    ws.send(message(answer(ws, frame, joined)));
  });
  ws.on('close', () => {
    for (const channel of joined) subscribers.get(channel).delete(ws);
  });
  ws.on('error', () => {}); // a reset peer: 'close' follows
});

server.on('listening', () => {
  const { address, port } = server.address();
  console.log(`node ws listening on ws://${address}:${port}`);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
