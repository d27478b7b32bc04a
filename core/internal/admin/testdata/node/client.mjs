// A test client for the Admin UI test: connects to SERVER_URL with a JWT, joins the room
// ROOM, prints "id <socket id>" once joined, and "disconnect <reason>" when the server
// disconnects it, then exits.
import crypto from 'node:crypto';
import { io } from 'socket.io-client';

const { SERVER_URL, JWT_SECRET, ROOM } = process.env;
const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const head = b64url({ alg: 'HS256', typ: 'JWT' });
const payload = b64url({ userId: 'ui-watched', iat: now, exp: now + 3600 });
const sig = crypto.createHmac('sha256', JWT_SECRET).update(`${head}.${payload}`).digest('base64url');

const s = io(SERVER_URL, { auth: { token: `${head}.${payload}.${sig}` }, reconnection: false });
s.on('connect', () => s.emit('room:join', { room: ROOM }));
s.on('room:join:ack', () => console.log(`id ${s.id}`));
s.on('disconnect', (reason) => { console.log(`disconnect ${reason}`); process.exit(0); });
s.on('connect_error', (err) => { console.log(`error ${err.message}`); process.exit(1); });
setTimeout(() => { console.log('timeout'); process.exit(2); }, 120000);
