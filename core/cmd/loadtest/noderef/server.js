// The Node reference of the load tool's cluster-node scenario: a socket.io 4.8.4 server with
// the classic @socket.io/redis-adapter 8.3.0, speaking the few events the scenario uses so
// that the same clients and the same HTTP calls load it as they load rtserver.
//
// Environment: PORT, REDIS_URL, API_KEY. It answers GET /health, POST /api/room
// ({room, event, data} -> io.to(room).emit(event, data)), and to a socket: system:welcome
// after the connect, room:join -> room:join:ack. Tokens are not checked: authentication is
// not what the scenario compares.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const port = Number(process.env.PORT);
const apiKey = process.env.API_KEY || "";

function reply(res, code, body) {
  const data = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

async function main() {
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  pub.on("error", (err) => console.error("redis pub:", err.message));
  sub.on("error", (err) => console.error("redis sub:", err.message));
  await Promise.all([pub.connect(), sub.connect()]);

  let io;
  const httpServer = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/health") {
      return reply(res, 200, { status: "ok" });
    }
    if (req.method === "POST" && req.url === "/api/room") {
      if (req.headers["x-api-key"] !== apiKey) {
        return reply(res, 401, { success: false, error: "bad API key" });
      }
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        let msg;
        try {
          msg = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch (err) {
          return reply(res, 400, { success: false, error: "bad JSON" });
        }
        io.to(msg.room).emit(msg.event, msg.data);
        // The adapter does not count remote recipients without a round trip to every
        // node; the scenario counts deliveries at the clients instead.
        reply(res, 200, { success: true, recipients: -1, delivered: true });
      });
      return;
    }
    reply(res, 404, { success: false, error: "not found" });
  });

  io = new Server(httpServer, {
    transports: ["websocket"],
    adapter: createAdapter(pub, sub),
  });
  io.on("connection", (socket) => {
    socket.emit("system:welcome", { id: socket.id });
    socket.on("room:join", (arg) => {
      const room = arg && typeof arg.room === "string" ? arg.room : "";
      if (!room) {
        socket.emit("room:join:ack", { success: false, error: "room required" });
        return;
      }
      socket.join(room);
      socket.emit("room:join:ack", { success: true, room });
    });
  });

  httpServer.listen(port, "127.0.0.1");
  const stop = () => {
    io.close(() => {
      Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
