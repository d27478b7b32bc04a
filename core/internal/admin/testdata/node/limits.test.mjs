// Failed admin logins are limited per IP, and an IP past the limit is refused even with
// the right password until its refusal ends. Run by TestNodeAdminClient on a server of
// its own (the refusal would stop the other tests' logins).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

const URL = process.env.SERVER_URL;
const USER = process.env.ADMIN_USER;
const PASSWORD = process.env.ADMIN_PASSWORD;

const sockets = [];
after(() => { for (const s of sockets) s.disconnect(); });

async function attempt(password) {
  const s = io(URL + '/admin', { auth: { username: USER, password }, reconnection: false, forceNew: true });
  sockets.push(s);
  return new Promise((resolve) => {
    s.once('connect', () => resolve('connected'));
    s.once('connect_error', (err) => resolve(err.message));
  });
}

test('wrong passwords past the limit are refused, then the right one too', async () => {
  const seen = [];
  // The allowance refills one failure per 6 s while attempts run: on a slow machine it takes
  // more than 10 of them to get past.
  for (let i = 0; i < 40; i++) {
    const r = await attempt('wrong-' + i);
    seen.push(r);
    if (r !== 'invalid credentials') break;
  }
  const last = seen.at(-1);
  assert.equal(last, 'too many failed attempts, try again later', JSON.stringify(seen));
  assert.ok(seen.length >= 5, `refused after ${seen.length - 1} failures`);
  assert.equal(await attempt(PASSWORD), 'too many failed attempts, try again later');
});
