// What the /admin suites share: client tokens, socket bookkeeping and waiting for events.
import { after } from 'node:test';
import crypto from 'node:crypto';

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

// mint signs an HS256 client token for userId, valid for an hour.
export function mint(secret, userId) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const payload = b64url({ userId, iat: now, exp: now + 3600 });
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${sig}`;
}

// Every socket a suite opens, disconnected when it ends.
export const sockets = [];
after(() => { for (const s of sockets) s.disconnect(); });

// once waits for the next ev and resolves with its arguments.
export const once = (s, ev, ms = 20000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`timeout waiting for ${ev}`)), ms);
  s.once(ev, (...a) => { clearTimeout(t); resolve(a); });
});

// until waits for an event whose arguments pass pred, ignoring the others.
export const until = (s, ev, pred, ms = 20000) => new Promise((resolve, reject) => {
  const fn = (...a) => { if (pred(...a)) { clearTimeout(t); s.off(ev, fn); resolve(a); } };
  const t = setTimeout(() => { s.off(ev, fn); reject(new Error(`timeout waiting for ${ev}`)); }, ms);
  s.on(ev, fn);
});

// seen waits until pred() holds, checking every 20 ms: for what handlers have collected.
export const seen = (pred, what, ms = 20000) => new Promise((resolve, reject) => {
  const t0 = Date.now();
  const tick = setInterval(() => {
    if (pred()) { clearInterval(tick); resolve(); } else if (Date.now() - t0 > ms) { clearInterval(tick); reject(new Error(`timeout waiting for ${what}`)); }
  }, 20);
});
