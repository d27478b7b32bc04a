// A small command-line chat client for rtserver, with the official socket.io-client v4.
//
//   cd examples/client && npm install
//   TOKEN=$(../../bin/rtserver token --user alice) node client.mjs general
//
// It connects, registers, joins the room given as argument, then sends every line typed as
// a chat message (handled by the chat example plugin) and prints what the room says.
import readline from 'node:readline';
import { io } from 'socket.io-client';

const url = process.env.SERVER_URL || 'http://localhost:3000';
const token = process.env.TOKEN;
const room = process.argv[2] || 'general';
if (!token) {
  console.error('set TOKEN (bin/rtserver token --user NAME)');
  process.exit(2);
}
const userId = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).userId;

const socket = io(url, { auth: { token } });
socket.io.on('reconnect_attempt', (attempt) => { socket.auth.attempt = attempt; });

socket.on('connect_error', (err) => console.error('cannot connect:', err.message, err.data || ''));
socket.on('system:welcome', (w) => console.log(`connected as ${userId} (${w.socketId}), server ${w.serverInfo.version}`));
socket.on('system:state_recovered', () => console.log('(reconnected, nothing missed)'));
socket.on('system:state_recovery_failed', () => console.log('(reconnected as a new session)'));
socket.on('connect', () => {
  if (socket.recovered) return;
  socket.emit('register', { userId });
  socket.emit('room:join', { room });
});
let input;
socket.on('room:join:ack', (a) => {
  if (!a.success) return;
  console.log(`joined #${a.room}`);
  // Lines typed before the join is confirmed would be refused (NOT_IN_ROOM): read after it.
  input ??= readline.createInterface({ input: process.stdin })
    .on('line', (line) => {
      if (line.trim()) socket.emit('client:message', { content: line, type: 'chat', metadata: { room } });
    })
    .on('close', () => setTimeout(() => socket.close(), 500));
});
socket.on('error', (e) => console.error(`error on ${e.event}: ${e.message} (${e.code})`));
socket.on('chat:message', (m) => console.log(`[${m.room}] ${m.userId}: ${m.content}`));
socket.on('system:notification', (n) => console.log(`* ${n.type}: ${n.title}: ${n.message}`));
socket.on('message:ack', (a) => a.success || console.error(`not sent: ${a.error} (${a.code})`));
