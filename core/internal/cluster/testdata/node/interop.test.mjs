// Interop of rtserver's cluster adapter with the official Node.js packages: the
// @socket.io/redis-emitter, and a socket.io server using @socket.io/redis-adapter in one
// cluster with two rtserver nodes. Run by TestNodeInterop (core/internal/server), which
// starts the two nodes and passes NODE_A_URL, NODE_B_URL, REDIS_URL, KEY_PREFIX,
// JWT_SECRET and API_KEY; and by TestNodeInteropOnRedisCluster, which passes REDIS_CLUSTER
// (seed addresses, host:port, comma-separated) instead of REDIS_URL: the Node.js clients
// are then redis@4 cluster clients, as a Node.js deployment on Redis Cluster has them.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createServer } from 'node:http';
import { createClient, createCluster } from 'redis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Emitter } from '@socket.io/redis-emitter';
import { io as ioc } from 'socket.io-client';

const { NODE_A_URL, NODE_B_URL, REDIS_URL, REDIS_CLUSTER, KEY_PREFIX, JWT_SECRET, API_KEY } = process.env;
assert.ok(NODE_A_URL && NODE_B_URL && (REDIS_URL || REDIS_CLUSTER) && KEY_PREFIX && JWT_SECRET && API_KEY, 'environment incomplete');

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function mint(userId) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const payload = b64url({ userId, iat: now, exp: now + 3600 });
  const sig = crypto.createHmac('sha256', JWT_SECRET).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${sig}`;
}

const once = (s, ev, ms = 5000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`timeout waiting for ${ev}`)), ms);
  s.once(ev, (...a) => { clearTimeout(t); resolve(a[0]); });
});

// none resolves when ev does NOT arrive within ms.
const none = (s, ev, ms = 300) => new Promise((resolve, reject) => {
  const h = (...a) => reject(new Error(`unexpected ${ev} ${JSON.stringify(a)}`));
  s.once(ev, h);
  setTimeout(() => { s.off(ev, h); resolve(); }, ms);
});

const sockets = [];
async function ours(url, userId) {
  const s = ioc(url, { auth: { token: mint(userId) }, transports: ['websocket'], reconnection: false, forceNew: true });
  sockets.push(s);
  const welcome = await once(s, 'system:welcome');
  assert.equal(welcome.socketId, s.id);
  return s;
}

async function api(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const redisClients = [];
async function redis() {
  const c = REDIS_CLUSTER
    ? createCluster({ rootNodes: REDIS_CLUSTER.split(',').map((a) => ({ url: `redis://${a}` })) })
    : createClient({ url: REDIS_URL });
  c.on('error', () => {});
  await c.connect();
  redisClients.push(c);
  return c;
}

let emitter, nodeIO, httpServer, nodeURL;
before(async () => {
  emitter = new Emitter(await redis(), { key: KEY_PREFIX });
  const pub = await redis();
  const sub = await redis();
  httpServer = createServer();
  nodeIO = new Server(httpServer, { adapter: createAdapter(pub, sub, { key: KEY_PREFIX, requestsTimeout: 3000 }) });
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  nodeURL = `http://127.0.0.1:${httpServer.address().port}`;
  // Let the adapter's subscriptions settle.
  await new Promise((r) => setTimeout(r, 200));
});

after(async () => {
  for (const s of sockets) s.disconnect();
  nodeIO.close();
  for (const c of redisClients) await c.quit().catch(() => {});
});

test('the emitter emits to a room and to all, joins, leaves and disconnects our sockets', async () => {
  const a = await ours(NODE_A_URL, 'em-a');
  const b = await ours(NODE_B_URL, 'em-b');

  emitter.in(a.id).socketsJoin('em-room');
  await new Promise((r) => setTimeout(r, 200));
  let got = once(a, 'em-event');
  let not = none(b, 'em-event');
  emitter.to('em-room').emit('em-event', { n: 1, s: 'é' });
  assert.deepEqual(await got, { n: 1, s: 'é' });
  await not;

  const all = [once(a, 'em-all'), once(b, 'em-all')];
  emitter.emit('em-all', [1, 2]);
  assert.deepEqual(await Promise.all(all), [[1, 2], [1, 2]]);

  emitter.in(a.id).socketsLeave('em-room');
  await new Promise((r) => setTimeout(r, 200));
  not = none(a, 'em-event');
  emitter.to('em-room').emit('em-event', 2);
  await not;

  const gone = once(b, 'disconnect');
  emitter.in(b.id).disconnectSockets(true);
  assert.equal(await gone, 'io server disconnect');
  const closed = once(a, 'disconnect');
  a.disconnect();
  await closed;
  await new Promise((r) => setTimeout(r, 100));
});

test('a Node.js socket.io server and our nodes share broadcasts, fetchSockets and serverSideEmit', async () => {
  const a = await ours(NODE_A_URL, 'mx-a');
  const b = await ours(NODE_B_URL, 'mx-b');
  const n = ioc(nodeURL, { transports: ['websocket'], reconnection: false, forceNew: true });
  sockets.push(n);
  await once(n, 'connect');

  // Node -> ours.
  const fromNode = [once(a, 'from-node'), once(b, 'from-node')];
  nodeIO.emit('from-node', { x: 1 });
  assert.deepEqual(await Promise.all(fromNode), [{ x: 1 }, { x: 1 }]);

  // Ours -> Node: a plain broadcast to its client. The Node.js node does not answer the
  // count, so the count is our two sockets and says partial.
  const fromGo = once(n, 'from-go');
  const r = await api(NODE_A_URL, 'POST', '/api/broadcast', { event: 'from-go', data: { y: 2 } });
  assert.deepEqual(await fromGo, { y: 2 });
  assert.equal(r.status, 200);
  assert.equal(r.body.recipients, 2);
  assert.equal(r.body.partial, true);

  // fetchSockets on the Node.js server sees our sockets, with their rooms.
  const all = await nodeIO.fetchSockets();
  const ids = all.map((s) => s.id);
  assert.ok(ids.includes(a.id) && ids.includes(b.id) && ids.includes(n.id), `fetchSockets: ${ids}`);
  const remoteA = all.find((s) => s.id === a.id);
  assert.ok(remoteA.rooms.has(a.id));

  // A RemoteSocket of ours joins a room, then a Node.js emit to that room reaches it.
  remoteA.join('node-room');
  await new Promise((r) => setTimeout(r, 200));
  const inRoom = once(a, 'nr');
  const notB = none(b, 'nr');
  nodeIO.to('node-room').emit('nr', 'hi');
  assert.equal(await inRoom, 'hi');
  await notB;
  // ... and a room message through our API reaches it too.
  const again = once(a, 'nr2');
  const rr = await api(NODE_B_URL, 'POST', '/api/room', { room: 'node-room', event: 'nr2', data: 3 });
  assert.equal(await again, 3);
  assert.equal(rr.body.recipients, 1);

  // An emit with acknowledgements from the Node.js server (a BROADCAST request) reaches
  // our sockets, and their acknowledgements come back to it.
  for (const [s, k] of [[a, 'a'], [b, 'b'], [n, 'n']]) s.on('ask', (x, cb) => cb(`${k}${x}`));
  const acks = await nodeIO.timeout(3000).emitWithAck('ask', 1);
  assert.deepEqual([...acks].sort(), ['a1', 'b1', 'n1']);

  // serverSideEmit with an acknowledgement: each of our nodes acknowledges with null.
  const replies = await nodeIO.serverSideEmitWithAck('hello', 1);
  assert.deepEqual(replies, [null, null]);

  // Our status counts the Node.js node among the nodes.
  const st = await api(NODE_A_URL, 'GET', '/api/status');
  assert.equal(st.body.cluster.nodes, 3);
  assert.ok(st.body.cluster.connections >= 3, JSON.stringify(st.body.cluster));
});
