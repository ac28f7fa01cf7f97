// A Socket.IO server for scripts/e2e-socketio.sh: `node socketio-server.js PORT NAME`. Acks every
// "echo" with its name and the transport, and logs one line per engine.io HTTP request and upgrade
// (with the session id) and every engine.io connection error ("Session ID unknown" among them).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const [port, name] = process.argv.slice(2);
const log = (...parts) => console.log(new Date().toISOString(), name, ...parts);
const sid = (url) => new URL(url, "http://x").searchParams.get("sid") || "-";

const server = http.createServer();
const io = new Server(server, { transports: ["polling", "websocket"] });
// Listeners of our own ahead of socket.io's (which replaces earlier "request" listeners): they only log.
const cookie = (req) => "cookie=" + (req.headers.cookie || "-");
server.prependListener("request", (req) => log("request", req.method, "sid=" + sid(req.url), cookie(req)));
server.prependListener("upgrade", (req) => log("upgrade", "sid=" + sid(req.url), cookie(req)));
io.engine.on("connection_error", (err) => log("connection_error", err.code, err.message));
io.on("connection", (socket) => {
  const engine = socket.conn;
  log("connection", "sid=" + engine.id, "transport=" + engine.transport.name);
  engine.on("upgrade", (transport) => log("upgraded", "sid=" + engine.id, "transport=" + transport.name));
  socket.on("echo", (message, ack) => ack({ backend: name, transport: engine.transport.name, message }));
});
server.listen(Number(port), "127.0.0.1", () => log("listening", port));
