// The /admin namespace on a cluster of two nodes, with the official socket.io-client v4 as
// the Admin UI uses it. Run by `go test ./core/internal/admin` (TestNodeAdminCluster), which
// starts two nodes on one Redis and passes NODE_A_URL, NODE_B_URL, JWT_SECRET, ADMIN_USER,
// ADMIN_PASSWORD and MODE (development or production).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { mint as mintToken, sockets, once, until } from './helpers.mjs';

const A = process.env.NODE_A_URL;
const B = process.env.NODE_B_URL;
const SECRET = process.env.JWT_SECRET;
const USER = process.env.ADMIN_USER;
const PASSWORD = process.env.ADMIN_PASSWORD;
const PRODUCTION = process.env.MODE === 'production';
assert.ok(A && B && SECRET && USER && PASSWORD, 'NODE_A_URL, NODE_B_URL, JWT_SECRET, ADMIN_USER and ADMIN_PASSWORD must be set');

const mint = (userId) => mintToken(SECRET, userId);

function connect(url, opts) {
  const s = io(url, { reconnection: false, forceNew: true, ...opts });
  sockets.push(s);
  return s;
}

// login connects to /admin of url and returns the socket, the session id (a login by
// password), the all_sockets list and the first server_stats.
async function login(url, auth) {
  const s = connect(url + '/admin', { auth });
  const sessionP = auth.password ? once(s, 'session') : Promise.resolve([undefined]);
  const allP = PRODUCTION ? Promise.resolve([null]) : once(s, 'all_sockets');
  const statsP = once(s, 'server_stats');
  await once(s, 'connect');
  const [sessionId] = await sessionP;
  const [all] = await allP;
  const [stats] = await statsP;
  return { s, sessionId, all, stats };
}

async function client(url, userId, room) {
  const c = connect(url, { auth: { token: mint(userId) } });
  await once(c, 'connect');
  if (room) {
    c.emit('room:join', { room });
    const [ack] = await once(c, 'room:join:ack');
    assert.equal(ack.success, true);
  }
  return c;
}

test('a session id handed out by one node logs in on the other', async () => {
  const { s, sessionId } = await login(A, { username: USER, password: PASSWORD });
  assert.match(sessionId, /^[0-9a-f]{32}$/);
  const { s: s2 } = await login(B, { sessionId });
  s.disconnect();
  s2.disconnect();
});

test('production: one admin sees both nodes\' figures and no socket events', { skip: !PRODUCTION }, async () => {
  const { s, stats: own } = await login(A, { username: USER, password: PASSWORD });
  let verbose = 0;
  for (const ev of ['all_sockets', 'socket_connected', 'socket_disconnected', 'room_joined', 'event_received', 'event_sent']) {
    s.on(ev, () => { verbose++; });
  }
  const [other] = await until(s, 'server_stats', (st) => st.serverId !== own.serverId);
  const c = await client(B, 'on-b-quiet', 'blue');
  await until(s, 'server_stats', (st) => st.serverId === other.serverId && st.clientsCount >= 1 &&
    st.aggregatedEvents.some((e) => e.type === 'rawConnection'));
  assert.equal(verbose, 0);
  c.disconnect();
  s.disconnect();
});

test('one admin sees both nodes, the sockets of the other node and acts on them', { skip: PRODUCTION }, async () => {
  const { s, stats: own } = await login(A, { username: USER, password: PASSWORD });
  // B reports to A's admins as a server of its own.
  const [other] = await until(s, 'server_stats', (st) => st.serverId !== own.serverId);
  assert.equal(typeof other.pid, 'number');
  assert.ok(Array.isArray(other.namespaces));

  // A socket connecting to B, and its room, are seen through A.
  const connected = until(s, 'socket_connected', (sock) => sock.nsp === '/');
  const c = await client(B, 'on-b', 'blue');
  const [sock] = await connected;
  assert.equal(sock.id, c.id);
  await until(s, 'server_stats', (st) => st.serverId === other.serverId && st.clientsCount >= 1);

  // A later login on A lists it with its rooms.
  const { s: s2, all } = await login(A, { username: USER, password: PASSWORD });
  const listed = all.find((x) => x.id === c.id);
  assert.ok(listed, 'the socket of node B is in all_sockets on node A');
  assert.ok(listed.rooms.includes('blue'), JSON.stringify(listed.rooms));
  s2.disconnect();

  // join by socket id through A acts on B: the UI is told, and an emit to the room reaches it.
  const joined = until(s, 'room_joined', (nsp, room, id) => room === 'ops' && id === c.id);
  assert.deepEqual(await s.timeout(15000).emitWithAck('join', '/', 'ops', c.id), { ok: true });
  await joined;
  const got = once(c, 'notice');
  assert.deepEqual(await s.timeout(15000).emitWithAck('emit', '/', 'ops', 'notice', { from: 'admin on A' }), { ok: true });
  assert.deepEqual((await got)[0], { from: 'admin on A' });

  // join with a room as the filter: the room's members on B join.
  const green = until(s, 'room_joined', (nsp, room, id) => room === 'green' && id === c.id);
  assert.deepEqual(await s.timeout(15000).emitWithAck('join', '/', 'green', 'blue'), { ok: true });
  await green;

  // leave with a room as the filter.
  const left = until(s, 'room_left', (nsp, room, id) => room === 'green' && id === c.id);
  assert.deepEqual(await s.timeout(15000).emitWithAck('leave', '/', 'green', 'blue'), { ok: true });
  await left;

  // A socket of A may not join the own room of the socket on B.
  const d = await client(A, 'on-a');
  assert.deepEqual(await s.timeout(15000).emitWithAck('join', '/', c.id, d.id), { error: "room is another socket's own room" });
  d.disconnect();

  // _disconnect through A closes the socket on B (the client forgets its id).
  const id = c.id;
  const reason = once(c, 'disconnect');
  const gone = until(s, 'socket_disconnected', (nsp, x) => x === id);
  s.emit('_disconnect', '/', false, c.id);
  assert.equal((await reason)[0], 'io server disconnect');
  await gone;
  s.disconnect();
});

// Last: it leaves this IP refused on both nodes.
test('failed logins are counted across the nodes', async () => {
  const attempt = (url, password) => {
    const s = connect(url + '/admin', { auth: { username: USER, password } });
    return new Promise((resolve) => {
      s.once('connect', () => resolve('connected'));
      s.once('connect_error', (err) => resolve(err.message));
    });
  };
  const TOO_MANY = 'too many failed attempts, try again later';
  const urls = [A, B];
  const seen = [];
  // Each node alone allows 10 failures a minute: alternating, 20 would pass before a
  // refusal if each counted only its own.
  for (let i = 0; i < 40; i++) {
    const r = await attempt(urls[i % 2], 'wrong-' + i);
    seen.push(r);
    if (r !== 'invalid credentials') break;
  }
  assert.equal(seen.at(-1), TOO_MANY, JSON.stringify(seen));
  assert.ok(seen.length <= 18, `refused only after ${seen.length - 1} failures on two nodes`);
  // The other node refuses a failure too (the shared allowance refills one failure per
  // 6 s, so on a slow machine one more may pass), and then the right password.
  const other = urls[seen.length % 2];
  const more = [];
  for (let i = 0; i < 3; i++) {
    more.push(await attempt(other, 'wrong-again-' + i));
    if (more.at(-1) !== 'invalid credentials') break;
  }
  assert.equal(more.at(-1), TOO_MANY, JSON.stringify(more));
  assert.equal(await attempt(other, PASSWORD), TOO_MANY);
});
