// socket.io 4 (Node.js, its default in-memory adapter): a room per channel.
//
// Speaks socket.io, not TwinHub's subprotocol: every frame travels as the argument of an event
// named "m" — the client emits ["m", {frame}], the server emits ["m", [frames]], the same JSON
// array a TwinHub message holds (loadtests/sio_client.py unwraps it). A post is fanned out with
// one io.to(channel).emit("m", [event]): the adapter encodes the packet once and writes it to
// every socket of the room. WebSocket transport only (no long-polling). No authentication, no
// persistence (answer() is the twin of loadtests/peers/shape.py's).
//
//     node loadtests/peers/node_socketio.js [--host 127.0.0.1] [--port 0]
//
// Prints "node socket.io listening on ws://HOST:PORT"; stops on SIGINT or SIGTERM.
'use strict';

const http = require('http');
const { Server } = require('socket.io');

const AUTHOR = { id: 1, name: 'Load publisher', school: 'Bench' };

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
}

const heads = new Map(); // channel -> last seq
let lastId = 0;

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 1 << 20,
  pingInterval: 20000, pingTimeout: 20000,
});

function answer(socket, frame) {
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
    io.to(channel).emit('m', [event]);
    return { type: 'ok', ref, channel, seq, id, duplicate: false };
  }
  if (type === 'subscribe') {
    socket.join(frame.channel);
    return { type: 'ok', ref, channel: frame.channel, head: heads.get(frame.channel) || 0, replayed: 0 };
  }
  if (type === 'hello') {
    return { type: 'welcome', ref, user: { id: 0, name: 'anyone' }, spaces: [], limits: {} };
  }
  return { type: 'error', ref, code: 'unknown_type', message: `${JSON.stringify(type)} is not handled here` };
}

io.on('connection', (socket) => {
  socket.on('m', (frame) => socket.emit('m', [answer(socket, frame)]));
});

const host = option('--host', '127.0.0.1');
httpServer.listen({ host, port: Number(option('--port', '0')), backlog: 2048 }, () => {
  const { address, port } = httpServer.address();
  console.log(`node socket.io listening on ws://${address}:${port}`);
});

function stop() {
  io.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
