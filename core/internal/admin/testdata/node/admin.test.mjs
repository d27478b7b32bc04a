// The /admin namespace with the official socket.io-client v4, as the Admin UI uses it.
// Run by `go test ./core/internal/admin` (TestNodeAdminClient), which starts a server and
// passes SERVER_URL, JWT_SECRET, ADMIN_USER, ADMIN_PASSWORD and MODE (development,
// readonly or production).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { mint as mintToken, sockets, once, until, seen } from './helpers.mjs';

const URL = process.env.SERVER_URL;
const SECRET = process.env.JWT_SECRET;
const USER = process.env.ADMIN_USER;
const PASSWORD = process.env.ADMIN_PASSWORD;
const MODE = process.env.MODE;
assert.ok(URL && SECRET && USER && PASSWORD && MODE, 'SERVER_URL, JWT_SECRET, ADMIN_USER, ADMIN_PASSWORD and MODE must be set');

const mint = (userId) => mintToken(SECRET, userId);

function adminSocket(auth, opts = {}) {
  const s = io(URL + '/admin', { auth, reconnection: false, forceNew: true, ...opts });
  sockets.push(s);
  return s;
}

function clientSocket(userId) {
  const s = io(URL, { auth: { token: mint(userId) }, reconnection: false, forceNew: true });
  sockets.push(s);
  return s;
}

// login connects to /admin with the password and returns the socket, the session id and
// the config, registering the listeners before the first packet can arrive.
async function login() {
  const s = adminSocket({ username: USER, password: PASSWORD });
  const sessionP = once(s, 'session');
  const configP = once(s, 'config');
  const allP = MODE === 'production' ? null : once(s, 'all_sockets');
  await once(s, 'connect');
  const [sessionId] = await sessionP;
  const [config] = await configP;
  const all = allP ? (await allP)[0] : null;
  return { s, sessionId, config, all };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('a wrong password, an unknown user or a client JWT is refused "invalid credentials"', async () => {
  for (const auth of [
    { username: USER, password: 'wrong' },
    { username: 'root', password: PASSWORD },
    { token: mint('u1') },
    { sessionId: 'deadbeefdeadbeefdeadbeefdeadbeef' },
    undefined,
  ]) {
    const s = adminSocket(auth);
    const [err] = await once(s, 'connect_error');
    assert.equal(err.message, 'invalid credentials', JSON.stringify(auth));
  }
});

test('the password logs in; the session id handed out logs in again', async () => {
  const { s, sessionId, config } = await login();
  assert.match(sessionId, /^[0-9a-f]{32}$/);
  assert.ok(config.supportedFeatures.includes('AGGREGATED_EVENTS'));
  const s2 = adminSocket({ sessionId });
  const cfg2 = once(s2, 'config');
  await once(s2, 'connect');
  assert.deepEqual((await cfg2)[0], config);
  s.disconnect();
  s2.disconnect();
});

test('config lists the features of the mode', async () => {
  const { s, config } = await login();
  const f = config.supportedFeatures;
  if (MODE === 'readonly') {
    for (const x of ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT']) assert.ok(!f.includes(x), x);
  } else {
    for (const x of ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT']) assert.ok(f.includes(x), x);
  }
  assert.equal(f.includes('ALL_EVENTS'), MODE !== 'production');
  s.disconnect();
});

test('server_stats arrive every 2 s with the figures the UI charts', async () => {
  const { s } = await login();
  const c = clientSocket('stats-user');
  await once(c, 'connect');
  // The first stats come at login; wait for one with the client counted.
  const [st] = await until(s, 'server_stats', (x) => x.clientsCount >= 1 && x.aggregatedEvents.some((e) => e.type === 'rawConnection'));
  for (const k of ['serverId', 'hostname']) assert.equal(typeof st[k], 'string', k);
  for (const k of ['pid', 'uptime', 'clientsCount', 'pollingClientsCount']) assert.equal(typeof st[k], 'number', k);
  assert.ok(Array.isArray(st.aggregatedEvents));
  const e = st.aggregatedEvents.find((x) => x.type === 'rawConnection');
  assert.ok(e.count >= 1 && e.timestamp % 1000 === 0);
  assert.deepEqual(st.namespaces.map((n) => n.name).sort(), ['/', '/admin']);
  // And they keep coming.
  await once(s, 'server_stats');
  c.disconnect();
  s.disconnect();
});

if (MODE === 'development') {
  test('development: sockets, rooms and events of the main namespace as they happen', async () => {
    const { s, all } = await login();
    assert.ok(Array.isArray(all));
    // Listen before anything is awaited: the client's connect, and the UI's socket_updated
    // for the upgrade, can come before socket_connected is handled (a read can carry
    // several packets, all emitted before an await resumes).
    const updates = [];
    s.on('socket_updated', (u) => updates.push(u));
    const c = clientSocket('dev-user');
    const connected = once(c, 'connect');
    const [sock, when] = await once(s, 'socket_connected');
    // The client starts on polling and upgrades: the UI is told.
    const upgraded = sock.transport === 'polling'
      ? seen(() => updates.some((u) => u.id === sock.id && u.nsp === '/' && u.transport === 'websocket'), 'socket_updated')
      : Promise.resolve();
    assert.equal(sock.nsp, '/');
    assert.equal(typeof sock.id, 'string');
    assert.equal(typeof sock.clientId, 'string');
    assert.ok(['polling', 'websocket'].includes(sock.transport));
    assert.ok(Array.isArray(sock.rooms) && sock.rooms.includes(sock.id));
    assert.ok(!sock.rooms.some((r) => r.startsWith('\u0000')), 'internal rooms hidden');
    assert.equal(typeof sock.handshake.address, 'string');
    assert.equal(typeof sock.handshake.headers, 'object');
    // What the session kept of its handshake request (a polling GET), rebuilt for the UI.
    assert.equal(sock.handshake.address, '127.0.0.1');
    assert.equal(sock.handshake.headers.host, new globalThis.URL(URL).host);
    assert.equal(sock.handshake.query.EIO, '4');
    assert.equal(sock.handshake.query.transport, 'polling');
    assert.ok(sock.handshake.url.startsWith('/socket.io/?EIO=4&transport=polling'), sock.handshake.url);
    assert.equal(sock.handshake.secure, false);
    assert.match(when, ISO);
    await connected;
    await upgraded;

    const joined = until(s, 'room_joined', (nsp, room, id) => room === 'lobby' && id === sock.id);
    const received = until(s, 'event_received', (nsp, id, args) => id === sock.id && args[0] === 'room:join');
    const sent = until(s, 'event_sent', (nsp, id, args) => id === sock.id && args[0] === 'room:join:ack');
    c.emit('room:join', { room: 'lobby' });
    const [nsp] = await joined;
    assert.equal(nsp, '/');
    assert.deepEqual((await received)[2], ['room:join', { room: 'lobby' }]);
    assert.deepEqual((await sent)[2][1], { success: true, room: 'lobby' });

    const left = until(s, 'room_left', (nsp, room, id) => room === 'lobby' && id === sock.id);
    c.emit('room:leave', { room: 'lobby' });
    await left;

    const gone = until(s, 'socket_disconnected', (nsp, id) => id === sock.id);
    c.disconnect();
    const [, , reason, at] = await gone;
    assert.equal(reason, 'client namespace disconnect');
    assert.match(at, ISO);

    // A socket connected before the login is in all_sockets.
    const c2 = clientSocket('early-user');
    await once(c2, 'connect');
    const { s: s2, all: all2 } = await login();
    assert.ok(all2.some((x) => x.id === c2.id && x.nsp === '/'));
    c2.disconnect();
    s.disconnect();
    s2.disconnect();
  });
}

if (MODE !== 'readonly') {
  test('join, emit, leave and _disconnect act on a connected client', async () => {
    const { s } = await login();
    const c = clientSocket('acted-on');
    await once(c, 'connect');

    // join (nsp, room, filter=socket id), then emit (nsp, filter=room, event, arg).
    s.emit('join', '/', 'ops', c.id);
    const got = once(c, 'notice');
    // The join is asynchronous: repeat the emit until the client has it.
    const tick = setInterval(() => s.emit('emit', '/', 'ops', 'notice', { from: 'admin' }), 100);
    try {
      assert.deepEqual((await got)[0], { from: 'admin' });
    } finally {
      clearInterval(tick);
    }

    // The filter may be a room: every member leaves.
    const r = await s.timeout(15000).emitWithAck('leave', '/', 'ops', 'ops');
    assert.deepEqual(r, { ok: true });

    const reason = once(c, 'disconnect');
    s.emit('_disconnect', '/', false, c.id);
    assert.equal((await reason)[0], 'io server disconnect');

    // Bad actions are refused, not acted on.
    assert.ok((await s.timeout(15000).emitWithAck('join', '/other', 'x', null)).error);
    assert.ok((await s.timeout(15000).emitWithAck('join', '/', '', null)).error);
    assert.ok((await s.timeout(15000).emitWithAck('emit', '/', null, 42)).error);
    s.disconnect();
  });
}

if (MODE === 'readonly') {
  test('read-only: actions are refused and nothing happens to the client', async () => {
    const { s } = await login();
    const c = clientSocket('untouched');
    await once(c, 'connect');
    const r = await s.timeout(15000).emitWithAck('_disconnect', '/', false, c.id);
    assert.match(r.error, /read-only/);
    const r2 = await s.timeout(15000).emitWithAck('join', '/', 'x', c.id);
    assert.match(r2.error, /read-only/);
    assert.ok(c.connected);
    c.disconnect();
    s.disconnect();
  });
}

if (MODE === 'production') {
  test('production: aggregated figures only, no per-socket events', async () => {
    const { s } = await login();
    let verbose = 0;
    for (const ev of ['all_sockets', 'socket_connected', 'socket_disconnected', 'room_joined', 'event_received', 'event_sent']) {
      s.on(ev, () => { verbose++; });
    }
    const c = clientSocket('quiet');
    await once(c, 'connect');
    c.emit('room:join', { room: 'lobby' });
    await once(c, 'room:join:ack');
    const [st] = await until(s, 'server_stats', (x) => x.aggregatedEvents.some((e) => e.type === 'packetsIn'));
    assert.ok(st.clientsCount >= 1);
    // Bytes are counted with the packets: the event's name and arguments at least.
    const bytesIn = st.aggregatedEvents.find((e) => e.type === 'bytesIn');
    assert.ok(bytesIn && bytesIn.count >= 'room:join'.length + '{"room":"lobby"}'.length, JSON.stringify(st.aggregatedEvents));
    assert.equal(verbose, 0);
    c.disconnect();
    s.disconnect();
  });
}
