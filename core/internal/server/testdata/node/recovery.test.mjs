// Connection state recovery and the reconnection events, with the official client.
// Run by `go test ./core/server` (TestNodeClient) with SERVER_URL, JWT_SECRET, API_KEY.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io } from 'socket.io-client';

const URL = process.env.SERVER_URL;
const SECRET = process.env.JWT_SECRET;
const API_KEY = process.env.API_KEY;

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function mint(userId) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const body = b64url({ userId, iat: now, exp: now + 3600 });
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const sockets = [];
after(() => { for (const s of sockets) s.disconnect(); });

// Generous: under a loaded -race run the old transport's close and the reconnection can
// take seconds; a real failure shows as a wrong value, not as a slow one.
const once = (s, ev, ms = 15000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`timeout waiting for ${ev}`)), ms);
  s.once(ev, (a) => { clearTimeout(t); resolve(a); });
});

async function api(path, body) {
  const res = await fetch(URL + path, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.json();
}

for (const transports of [['websocket'], ['polling']]) {
  test(`a dropped transport comes back whole over ${transports}`, async () => {
    const user = `rec-${transports}`;
    const room = `rec-room-${transports}`;
    const s = io(URL, { auth: { token: mint(user) }, transports, forceNew: true, reconnectionDelay: 300, reconnectionDelayMax: 300 });
    sockets.push(s);
    // The client reports its reconnection attempt; the server echoes it in system:reconnect_status.
    s.io.on('reconnect_attempt', (n) => { s.auth.attempt = n; s.auth.delay = 300; });
    await once(s, 'system:welcome');
    s.emit('register', { userId: user });
    assert.equal((await once(s, 'register:ack')).success, true);
    s.emit('room:join', { room });
    await once(s, 'room:join:ack');
    const id = s.id;

    const got = [];
    s.on('missed', (d) => got.push(d.n));
    const disconnected = once(s, 'disconnect');
    s.io.engine.close();
    await disconnected;
    // While it is away: room messages and pushes.
    await api('/api/room', { room, event: 'missed', data: { n: 1 } });
    await api('/api/push', { userId: user, event: 'missed', data: { n: 2 } });
    await api('/api/room', { room, event: 'missed', data: { n: 3 } });

    const recoveredEv = once(s, 'system:state_recovered');
    const status = once(s, 'system:reconnect_status');
    await once(s, 'connect');
    assert.equal(s.recovered, true, 'socket.recovered');
    assert.equal(s.id, id, 'same socket id');
    const r = await recoveredEv;
    assert.equal(r.userId, user);
    assert.match(r.timestamp, /Z$/);
    const st = await status;
    assert.equal(st.attempt, 1);
    assert.equal(st.delay, 300);
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(got, [1, 2, 3], 'missed messages, in order, once');

    // Rooms and registration are intact.
    const roomRes = await api('/api/room', { room, event: 'after', data: {} });
    assert.equal(roomRes.recipients, 1);
    const push = await api('/api/push', { userId: user, event: 'after', data: {} });
    assert.equal(push.delivered, true);
    s.disconnect();
  });
}

test('a session id the server never issued: system:state_recovery_failed', async () => {
  const s = io(URL, { auth: { token: mint('stranger'), pid: 'never-issued', offset: 'nope' }, forceNew: true, reconnection: false });
  sockets.push(s);
  const failed = await once(s, 'system:state_recovery_failed');
  assert.equal(failed.message, 'Failed to recover connection state');
  assert.match(failed.timestamp, /Z$/);
  assert.equal(s.recovered, false);
  s.disconnect();
});

test('a fresh connection gets neither recovery event', async () => {
  const s = io(URL, { auth: { token: mint('fresh') }, forceNew: true, reconnection: false });
  sockets.push(s);
  let seen = false;
  s.on('system:state_recovered', () => { seen = true; });
  s.on('system:state_recovery_failed', () => { seen = true; });
  s.on('system:reconnect_status', () => { seen = true; });
  await once(s, 'system:welcome');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(seen, false);
  s.disconnect();
});
