// The chat demo: plain browser JavaScript on the official socket.io client (served by the
// server at /socket.io/socket.io.js). It talks the server's protocol as documented in
// docs/API.md and the chat example plugin's events (examples/chat).
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let userId = "";
const rooms = new Set();
const seen = new Set(); // message ids shown, so a replayed one is not shown twice
const typers = new Map(); // userId -> timer that clears the indicator

function stamp() {
  return new Date().toLocaleTimeString();
}

function log(text, cls) {
  const li = document.createElement("li");
  li.textContent = stamp() + " " + text;
  if (cls) li.className = cls;
  $("log").prepend(li);
}

function setState(text, cls) {
  const s = $("state");
  s.textContent = text;
  s.className = "state " + cls;
}

function showRooms() {
  $("rooms").textContent = "Rooms: " + (rooms.size ? [...rooms].join(", ") : "none");
  $("send").disabled = rooms.size === 0;
}

function currentRoom() {
  return $("room").value.trim();
}

function addMessage(m) {
  if (m.id && seen.has(m.id)) return;
  if (m.id) seen.add(m.id);
  const li = document.createElement("li");
  li.dataset.id = m.id || "";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = m.userId + (m.room ? " @" + m.room : "");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.content;
  li.append(who, text);
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function showTyping() {
  const names = [...typers.keys()];
  $("typing").textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
}

async function login(ev) {
  ev.preventDefault();
  const id = $("user").value.trim();
  if (!id) return;
  $("login").disabled = true;
  let body;
  try {
    const res = await fetch("/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId: id }),
    });
    body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
  } catch (err) {
    log("login failed: " + err.message, "bad");
    $("login").disabled = false;
    return;
  }
  userId = body.userId;
  connect(body.token);
}

function connect(token) {
  if (socket) socket.disconnect();
  socket = io({ auth: { token }, reconnectionDelay: 500, reconnectionDelayMax: 2000 });
  window.demoSocket = socket; // for the browser console

  socket.on("connect", () => {
    setState("connected as " + userId, "on");
    $("join").disabled = false;
    log((socket.recovered ? "reconnected, state recovered" : "connected") + " (" + socket.id + ")", socket.recovered ? "good" : "");
    if (!socket.recovered) {
      // A fresh session: register, and join the rooms again (a recovered one keeps them).
      socket.emit("register", { userId });
      const again = [...rooms];
      rooms.clear();
      showRooms();
      again.forEach((room) => socket.emit("room:join", { room }));
    }
  });
  socket.on("connect_error", (err) => {
    setState("cannot connect", "off");
    log("connect error: " + err.message, "bad");
    $("login").disabled = false;
  });
  socket.on("disconnect", (reason) => {
    setState("disconnected: " + reason, "wait");
    log("disconnected: " + reason, "warn");
  });
  socket.io.on("reconnect_attempt", (n) => {
    setState("reconnecting (attempt " + n + ")", "wait");
    log("reconnecting, attempt " + n, "warn");
  });

  socket.on("system:welcome", (w) => log("welcome: " + w.message + " (server " + w.serverInfo.version + ", " + w.serverInfo.environment + ")"));
  socket.on("register:ack", (a) => log(a.success ? "registered as " + a.userId : "register failed: " + a.error, a.success ? "" : "bad"));
  socket.on("system:state_recovered", (d) => log("system:state_recovered for " + d.userId, "good"));
  socket.on("system:state_recovery_failed", (d) => log("system:state_recovery_failed: " + d.message, "bad"));
  socket.on("system:reconnect_status", (d) => log("reconnect status: attempt " + d.attempt, "warn"));
  socket.on("error", (e) => log("error " + (e.code || "") + ": " + (e.message || JSON.stringify(e)), "bad"));

  socket.on("room:join:ack", (a) => {
    if (a.success) {
      rooms.add(a.room);
      log("joined " + a.room);
      // Catch up with what the room said before we came.
      socket.emit("client:action", { action: "history", params: { room: a.room, limit: 50 } });
    } else {
      log("join failed: " + (a.error || a.room), "bad");
    }
    showRooms();
  });
  socket.on("room:leave:ack", (a) => {
    rooms.delete(a.room);
    showRooms();
  });
  socket.on("action:result", (r) => {
    if (r.success && r.result && Array.isArray(r.result.messages)) r.result.messages.forEach(addMessage);
    else if (!r.success) log("action failed: " + (r.error || JSON.stringify(r)), "bad");
  });
  socket.on("message:ack", (a) => {
    if (!a.success) log("message refused: " + (a.error || a.code), "bad");
  });

  socket.on("chat:message", (m) => {
    typers.delete(m.userId);
    showTyping();
    addMessage(m);
  });
  socket.on("chat:typing", (t) => {
    clearTimeout(typers.get(t.userId));
    if (t.typing) typers.set(t.userId, setTimeout(() => { typers.delete(t.userId); showTyping(); }, 3000));
    else typers.delete(t.userId);
    showTyping();
  });
  socket.on("system:notification", (n) => {
    const li = document.createElement("li");
    li.className = "notification " + (n.type || "info");
    li.textContent = stamp() + " [" + (n.type || "info") + "] " + n.title + ": " + n.message;
    $("notifications").prepend(li);
  });
}

function join(ev) {
  ev.preventDefault();
  const room = currentRoom();
  if (socket && room) socket.emit("room:join", { room });
}

let lastTyping = 0;
function typing() {
  const room = currentRoom();
  if (!socket || !socket.connected || !rooms.has(room)) return;
  const now = Date.now();
  if (now - lastTyping < 1000) return; // one indicator a second is plenty
  lastTyping = now;
  socket.emit("client:event", { type: "typing", data: { room, typing: true } });
}

function send(ev) {
  ev.preventDefault();
  const content = $("text").value.trim();
  const room = currentRoom();
  if (!socket || !content) return;
  const meta = rooms.has(room) ? { room } : {};
  socket.emit("client:message", { type: "chat", content, metadata: meta });
  $("text").value = "";
  lastTyping = 0;
}

$("login-form").addEventListener("submit", login);
$("room-form").addEventListener("submit", join);
$("send-form").addEventListener("submit", send);
$("text").addEventListener("input", typing);
showRooms();
