// End-to-end tests of core/socketio with the official socket.io-client v4.
// Run by TestNodeClient (node_test.go), which starts the Go server and sets SERVER_URL.
// The server side of each case is in node_test.go.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const URL = process.env.SERVER_URL;
const RECOVERY_URL = process.env.RECOVERY_URL;
if (!URL) throw new Error("SERVER_URL is not set: run through `go test -run TestNodeClient`");

const MODES = {
  websocket: { transports: ["websocket"], final: "websocket" },
  polling: { transports: ["polling"], final: "polling" },
  upgrade: { transports: ["polling", "websocket"], final: "websocket" },
};

function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function noEvent(emitter, event, ms = 300) {
  return new Promise((resolve, reject) => {
    const fn = (...args) => reject(new Error(`unexpected ${event}: ${JSON.stringify(args)}`));
    emitter.once(event, fn);
    setTimeout(() => {
      emitter.off(event, fn);
      resolve();
    }, ms);
  });
}

// ack emits and resolves with every argument of the acknowledgement (emitWithAck keeps
// only the first).
function ack(s, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${args[0]}`)), 5000);
    s.emit(...args, (...res) => {
      clearTimeout(timer);
      resolve(res);
    });
  });
}

const open = new Set();

function client(mode, opts = {}, url = URL) {
  const s = io(url, {
    transports: MODES[mode].transports,
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    ...opts,
  });
  open.add(s);
  return s;
}

async function connected(mode, opts, url) {
  const s = client(mode, opts, url);
  await once(s, "connect");
  if (MODES[mode].final === "websocket" && s.io.engine.transport.name !== "websocket") {
    await once(s.io.engine, "upgrade");
  }
  assert.equal(s.io.engine.transport.name, MODES[mode].final);
  return s;
}

after(() => {
  for (const s of open) s.disconnect();
});

for (const mode of Object.keys(MODES)) {
  describe(`socket.io-client over ${mode}`, () => {
    it("connects with auth and gets its id", async () => {
      const s = await connected(mode, { auth: { token: "good" } });
      const [me] = await ack(s, "whoami");
      assert.equal(me.id, s.id);
      assert.equal(me.token, "good");
      assert.equal(me.transport, MODES[mode].final);
      s.disconnect();
    });

    it("is refused with a data payload", async () => {
      const s = client(mode, { auth: { token: "bad" } });
      const [err] = await once(s, "connect_error");
      assert.equal(err.message, "unauthorized");
      assert.deepEqual(err.data, { code: "UNAUTHORIZED" });
      assert.equal(s.connected, false);
      s.disconnect();
    });

    it("emits events both ways", async () => {
      const s = await connected(mode);
      const reply = once(s, "echo:reply");
      s.emit("echo", "hé\"llo", 42, { nested: [true, null] }, [1.5]);
      assert.deepEqual(await reply, ["hé\"llo", 42, { nested: [true, null] }, [1.5]]);
      s.disconnect();
    });

    it("emits right after connect without loss", async () => {
      const s = client(mode);
      const replies = [];
      s.on("echo:reply", (n) => replies.push(n));
      s.on("connect", () => {
        for (let i = 0; i < 20; i++) s.emit("echo", i);
      });
      // also buffered before connect
      s.emit("echo", -1);
      const deadline = Date.now() + 5000;
      while (replies.length < 21 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(replies, [-1, ...Array.from({ length: 20 }, (_, i) => i)]);
      s.disconnect();
    });

    it("acks client emits, with and without data", async () => {
      const s = await connected(mode);
      assert.deepEqual(await ack(s, "ack", "a", { b: 1 }), ["a", { b: 1 }]);
      const noData = await new Promise((resolve) => s.emit("emptyack", (...args) => resolve(args)));
      assert.deepEqual(noData, []);
      s.disconnect();
    });

    it("acks server emits, with and without data", async () => {
      const s = await connected(mode);
      s.on("question", (q, cb) => {
        if (q === "empty") cb();
        else cb("answer to " + q, 7);
      });
      const answer = once(s, "answer");
      s.emit("ask", "q1");
      assert.deepEqual((await answer)[0], { args: ["answer to q1", 7] });
      const empty = once(s, "answer");
      s.emit("ask", "empty");
      assert.deepEqual((await empty)[0], { args: [] });
      s.disconnect();
    });

    it("carries binary attachments both ways", async () => {
      const s = await connected(mode);
      const [res] = await ack(s, "binary", Buffer.from([1, 2, 3]), { inner: Buffer.from([4]) });
      assert.deepEqual(res.sizes, [3, 1]);
      assert.deepEqual([...res.first], [1, 2, 3]);
      const reply = once(s, "binary:reply");
      s.emit("sendbinary");
      const [obj, top] = await reply;
      assert.deepEqual([...obj.buf], [9, 8, 7]);
      assert.deepEqual([...obj.list[1]], [6]);
      assert.equal(obj.list[0], "x");
      assert.deepEqual([...top], [5]);
      s.disconnect();
    });

    it("joins rooms and receives room, broadcast and except emits", async () => {
      const [a, b, c] = await Promise.all([connected(mode), connected(mode), connected(mode)]);
      const room = "room-" + mode;
      await ack(a, "join", room);
      await ack(b, "join", room);
      const got = [];
      for (const [name, s] of [["a", a], ["b", b], ["c", c]]) s.on("news", (v) => got.push(name + ":" + v));
      const settle = () => new Promise((r) => setTimeout(r, 200));

      assert.deepEqual(await ack(a, "toRoom", room, [], "r1"), [2]);
      await settle();
      assert.deepEqual(got.sort(), ["a:r1", "b:r1"]);
      got.length = 0;

      assert.deepEqual(await ack(a, "toRoom", room, [a.id], "r2"), [1]);
      await settle();
      assert.deepEqual(got.sort(), ["b:r2"]);
      got.length = 0;

      assert.deepEqual(await ack(c, "toRoom", "", [room], "r3"), [1]);
      await settle();
      assert.deepEqual(got.sort(), ["c:r3"]);
      got.length = 0;

      await ack(b, "leave", room);
      assert.deepEqual(await ack(a, "toRoom", room, [], "r4"), [1]);
      await settle();
      assert.deepEqual(got.sort(), ["a:r4"]);
      for (const s of [a, b, c]) s.disconnect();
    });

    it("reconnects after the server drops the transport", async () => {
      const s = await connected(mode);
      const firstId = s.id;
      const disc = once(s, "disconnect");
      s.emit("drop");
      const [reason] = await disc;
      assert.equal(reason, "transport close");
      await once(s, "connect", 10000);
      assert.notEqual(s.id, firstId);
      assert.ok(!s.recovered);
      s.disconnect();
    });

    it("stays away after a server disconnect", async () => {
      const s = await connected(mode);
      const disc = once(s, "disconnect");
      s.emit("kick");
      const [reason] = await disc;
      assert.equal(reason, "io server disconnect");
      await noEvent(s, "connect", 500);
      assert.equal(s.connected, false);
    });

    it("recovers id, rooms, data and missed events after a drop", async () => {
      const s = await connected(mode, {}, RECOVERY_URL);
      const firstId = s.id;
      const welcome = once(s, "welcome");
      s.emit("hello");
      const [w, offset] = await welcome;
      assert.equal(w, "w");
      assert.equal(typeof offset, "string"); // the official offset convention
      const missed = [];
      s.on("missed", (v) => missed.push(v));
      const disc = once(s, "disconnect");
      s.emit("dropAndQueue");
      assert.equal((await disc)[0], "transport close");
      await once(s, "connect", 10000);
      assert.equal(s.recovered, true);
      assert.equal(s.id, firstId);
      const deadline = Date.now() + 5000;
      while (missed.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(missed, ["m1", "m2", "m3"]);
      const [state] = await ack(s, "state");
      assert.equal(state.recovered, true);
      assert.equal(state.first, firstId);
      assert.ok(state.rooms.includes("rec-room"));
      s.disconnect();
    });
  });
}
