// End-to-end tests of the product with the official socket.io-client v4.
// Run by `go test ./core/server` (TestNodeClient), which starts a server and passes:
//   SERVER_URL, JWT_SECRET, API_KEY, and PLUGINS ("echo" when the echo plugin is loaded).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io } from 'socket.io-client';

const URL = process.env.SERVER_URL;
const SECRET = process.env.JWT_SECRET;
const API_KEY = process.env.API_KEY;
const HAS_ECHO = (process.env.PLUGINS || '').split(',').includes('echo');
assert.ok(URL && SECRET && API_KEY, 'SERVER_URL, JWT_SECRET and API_KEY must be set');

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function mint(claims, { alg = 'HS256', secret = SECRET } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iat: now, exp: now + 3600, ...claims };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const head = b64url({ alg, typ: 'JWT' });
  const payload = b64url(body);
  if (alg === 'none') return `${head}.${payload}.`;
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${sig}`;
}

const sockets = [];
after(() => { for (const s of sockets) s.disconnect(); });

function connect(token, opts = {}) {
  const s = io(URL, { auth: token === null ? undefined : { token }, reconnection: false, forceNew: true, ...opts });
  sockets.push(s);
  return s;
}

const once = (s, ev, ms = 5000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`timeout waiting for ${ev}`)), ms);
  s.once(ev, (...a) => { clearTimeout(t); resolve(a[0]); });
});

// connected returns once the socket is connected and its welcome arrived.
async function connected(userId, opts) {
  const s = connect(mint({ userId }), opts);
  const welcome = await once(s, 'system:welcome');
  return { s, welcome };
}

async function api(method, path, body) {
  const res = await fetch(URL + path, {
    method,
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']]) {
  const name = transports.join('+');
  describe(`over ${name}`, () => {
    test('welcome after an authenticated connect', async () => {
      const { s, welcome } = await connected('u-welcome', { transports });
      assert.equal(welcome.message, 'Welcome to the Socket.IO server');
      assert.equal(welcome.socketId, s.id);
      assert.match(welcome.timestamp, ISO);
      assert.equal(typeof welcome.serverInfo.version, 'string');
      assert.equal(typeof welcome.serverInfo.environment, 'string');
      s.disconnect();
    });

    test('register as the token user, and not as anyone else', async () => {
      const { s } = await connected('alice', { transports });
      s.emit('register', { userId: 'mallory' });
      let ack = await once(s, 'register:ack');
      assert.equal(ack.success, false);
      assert.equal(typeof ack.error, 'string');
      s.emit('register', {});
      ack = await once(s, 'register:ack');
      assert.equal(ack.success, false);
      s.emit('register', { userId: 'alice' });
      ack = await once(s, 'register:ack');
      assert.deepEqual(ack, { success: true, userId: 'alice' });
      s.disconnect();
    });

    test('rooms: join, leave, bad names', async () => {
      const { s } = await connected('u-rooms', { transports });
      s.emit('room:join', { room: 'lobby' });
      assert.deepEqual(await once(s, 'room:join:ack'), { success: true, room: 'lobby' });
      s.emit('room:leave', { room: 'lobby' });
      assert.deepEqual(await once(s, 'room:leave:ack'), { success: true, room: 'lobby' });
      for (const bad of [{ room: '' }, { room: 42 }, {}, 'lobby', null, [1, 2]]) {
        s.emit('room:join', bad);
        const err = await once(s, 'error');
        assert.equal(err.event, 'room:join');
        assert.equal(err.code, 'INVALID_ROOM');
        assert.equal(typeof err.message, 'string');
      }
      assert.ok(s.connected);
      s.disconnect();
    });

    test('ping answers its ack with no data', async () => {
      const { s } = await connected('u-ping', { transports });
      const args = await new Promise((resolve) => s.emit('ping', { timestamp: Date.now() }, (...a) => resolve(a)));
      assert.deepEqual(args, []);
      s.disconnect();
    });

    test('client:message without content is refused with INVALID_MESSAGE_DATA', async () => {
      const { s } = await connected('u-msg', { transports });
      s.emit('client:message', { type: 'chat' });
      const err = await once(s, 'error');
      assert.deepEqual(err, { event: 'client:message', message: 'Invalid message data. Missing content.', code: 'INVALID_MESSAGE_DATA' });
      s.disconnect();
    });

    test('client events reach a handler or get a coded error, never silence', async () => {
      const { s } = await connected('u-ev', { transports });
      s.emit('client:event', { type: 'hello', data: { a: 1 } });
      const res = await once(s, 'server:response');
      assert.equal(typeof res.requestId, 'string');
      if (HAS_ECHO) {
        assert.equal(res.success, true);
        assert.ok(res.data);
      } else {
        assert.equal(res.success, false);
        assert.equal(res.code, 'NO_HANDLER');
      }
      s.emit('client:message', { content: 'hi', type: 'text' });
      const ack = await once(s, 'message:ack');
      assert.equal(typeof ack.requestId, 'string');
      if (HAS_ECHO) {
        assert.equal(ack.success, true);
        assert.equal(typeof ack.messageId, 'string');
      }
      s.emit('client:action', { action: 'do', params: {} });
      const result = await once(s, 'action:result');
      assert.equal(typeof result.requestId, 'string');
      assert.equal(result.success, HAS_ECHO);
      s.disconnect();
    });

    test('wrongly typed payloads get an error event and the connection stays', async () => {
      const { s } = await connected('u-bad', { transports });
      for (const [ev, code] of [['client:event', 'INVALID_EVENT_DATA'], ['client:action', 'INVALID_ACTION_DATA'], ['client:message', 'INVALID_MESSAGE_DATA']]) {
        for (const bad of [null, 1, 'x', [1], { type: 5 }]) {
          s.emit(ev, bad);
          const err = await once(s, 'error');
          assert.equal(err.event, ev);
          assert.equal(err.code, code);
        }
      }
      let deep = {};
      for (let i = 0; i < 100; i++) deep = { d: deep };
      s.emit('client:event', { type: 't', data: deep });
      const err = await once(s, 'error');
      assert.equal(err.code, 'INVALID_PAYLOAD');
      s.emit('room:join', { room: 'still-alive' });
      assert.deepEqual(await once(s, 'room:join:ack'), { success: true, room: 'still-alive' });
      s.disconnect();
    });

    test('push reaches every registered socket of the user', async () => {
      const user = `pushee-${name}`;
      const a = await connected(user, { transports });
      const b = await connected(user, { transports });
      for (const c of [a.s, b.s]) {
        c.emit('register', { userId: user });
        assert.equal((await once(c, 'register:ack')).success, true);
      }
      const got = Promise.all([once(a.s, 'note'), once(b.s, 'note')]);
      const res = await api('POST', '/api/push', { userId: user, event: 'note', data: { n: 1 } });
      assert.equal(res.status, 200);
      assert.equal(res.body.success, true);
      assert.equal(res.body.delivered, true);
      assert.match(res.body.timestamp, ISO);
      assert.deepEqual(await got, [{ n: 1 }, { n: 1 }]);
      const none = await api('POST', '/api/push', { userId: 'nobody-here', event: 'note', data: {} });
      assert.equal(none.body.delivered, false);
      a.s.disconnect(); b.s.disconnect();
    });

    test('room message and broadcast count their recipients', async () => {
      const room = `r-${name}-${Date.now()}`;
      const a = await connected('r1', { transports });
      const b = await connected('r2', { transports });
      const c = await connected('r3', { transports });
      for (const x of [a.s, b.s]) {
        x.emit('room:join', { room });
        await once(x, 'room:join:ack');
      }
      const got = Promise.all([once(a.s, 'room:news'), once(b.s, 'room:news')]);
      let stray = false;
      c.s.on('room:news', () => { stray = true; });
      const res = await api('POST', '/api/room', { room, event: 'room:news', data: { x: 1 } });
      assert.equal(res.status, 200);
      assert.equal(res.body.recipients, 2);
      assert.deepEqual(await got, [{ x: 1 }, { x: 1 }]);
      const all = Promise.all([a.s, b.s, c.s].map((x) => once(x, 'everyone')));
      const bc = await api('POST', '/api/broadcast', { event: 'everyone', data: { y: 2 } });
      assert.equal(bc.status, 200);
      assert.ok(bc.body.recipients >= 3);
      assert.deepEqual(await all, [{ y: 2 }, { y: 2 }, { y: 2 }]);
      assert.equal(stray, false);
      for (const x of [a.s, b.s, c.s]) x.disconnect();
    });
  });
}

describe('refused tokens', () => {
  const cases = {
    missing: null,
    malformed: 'not-a-jwt',
    'wrong signature': mint({ userId: 'u' }, { secret: 'another-secret' }),
    expired: mint({ userId: 'u', iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }),
    'alg none': mint({ userId: 'u' }, { alg: 'none' }),
    'no userId': mint({ userId: undefined }),
  };
  for (const [what, token] of Object.entries(cases)) {
    test(what, async () => {
      const s = connect(token);
      const err = await once(s, 'connect_error');
      assert.equal(typeof err.message, 'string');
      assert.ok(err.data, 'connect_error carries data');
      assert.equal(typeof err.data.code, 'string');
      assert.equal(typeof err.data.message, 'string');
      assert.equal(s.connected, false);
    });
  }
});

test('HTTP API: key required, JSON errors, health and metrics', async () => {
  let res = await fetch(URL + '/api/status');
  assert.equal(res.status, 401);
  let body = await res.json();
  assert.equal(body.success, false);
  assert.equal(body.code, 'UNAUTHORIZED');
  assert.equal(typeof body.requestId, 'string');
  assert.equal(res.headers.get('x-request-id'), body.requestId);
  const st = await api('GET', '/api/status');
  assert.equal(st.status, 200);
  assert.equal(st.body.status, 'ok');
  for (const k of ['rss', 'heapTotal', 'heapUsed', 'external']) assert.equal(typeof st.body.memory[k], 'number');
  res = await fetch(URL + '/health');
  body = await res.json();
  assert.equal(body.status, 'ok');
  res = await fetch(URL + '/metrics');
  const text = await res.text();
  assert.match(text, /socket_server_active_connections/);
  assert.match(text, /socket_server_connections_total\{authenticated="true",transport="[a-z]+"\}/);
  const bad = await api('POST', '/api/push', { event: 'x' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'INVALID_REQUEST');
});
