// Socket.IO clients for scripts/e2e-socketio.sh: `node socketio-client.js URL CLIENTS`. Each starts on
// HTTP long-polling, sends messages at once (over polling, unless the upgrade was quicker), waits for
// the upgrade to WebSocket, sends more, and checks every ack came from one backend. Prints one line per client and exits 1 if any failed.
"use strict";
const { io } = require("socket.io-client");

const [url, count] = process.argv.slice(2);
const POLLING_MESSAGES = 3;
const WEBSOCKET_MESSAGES = 10;

function client(i) {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ["polling", "websocket"],
      upgrade: true,
      rememberUpgrade: false,
      // Node's engine.io client keeps cookies (our affinity cookie) only with this.
      withCredentials: true,
      reconnection: false,
      forceNew: true,
      timeout: 5000,
    });
    // The engine and its first transport exist as soon as io() returns.
    const started = socket.io.engine.transport.name;
    const acks = [];
    let finished = false;
    const done = (error) => {
      // close() below fires "disconnect", which calls done again.
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      const backends = [...new Set(acks.map((a) => a.backend))];
      const transports = acks.map((a) => a.transport);
      // The first messages go in a polling POST, unless the upgrade won the race (the server's
      // log shows every session's polling requests); then only websocket, the last batch included.
      const switched = transports.indexOf("websocket");
      const ok = !error && started === "polling" && backends.length === 1
        && acks.length === POLLING_MESSAGES + WEBSOCKET_MESSAGES
        && switched >= 0 && switched <= POLLING_MESSAGES
        && transports.slice(switched).every((t) => t === "websocket");
      const polled = switched < 0 ? acks.length : switched;
      resolve({ client: i, ok, error: error || null, started, backends, polled, acks: acks.length });
    };
    const timer = setTimeout(() => done("timed out"), 20000);
    const echo = (message) => new Promise((res, rej) => {
      socket.timeout(5000).emit("echo", message, (err, ack) => (err ? rej(err) : res(ack)));
    });
    socket.on("connect_error", (err) => done("connect_error: " + err.message));
    socket.on("disconnect", (reason) => {
      if (acks.length < POLLING_MESSAGES + WEBSOCKET_MESSAGES) done("disconnect: " + reason);
    });
    socket.on("connect", async () => {
      const engine = socket.io.engine;
      try {
        // Sent at once, before the upgrade is likely to finish: over long-polling, mostly.
        const polled = await Promise.all(
          Array.from({ length: POLLING_MESSAGES }, (_, k) => echo(`c${i} polling ${k}`)));
        acks.push(...polled);
        if (engine.transport.name !== "websocket") {
          await new Promise((res) => engine.once("upgrade", res));
        }
        for (let k = 0; k < WEBSOCKET_MESSAGES; k++) acks.push(await echo(`c${i} ws ${k}`));
        done(null);
      } catch (err) {
        done(String(err && err.message || err));
      }
    });
  });
}

(async () => {
  const results = await Promise.all(Array.from({ length: Number(count) }, (_, i) => client(i)));
  for (const r of results) console.log(JSON.stringify(r));
  const failed = results.filter((r) => !r.ok).length;
  const polled = results.reduce((n, r) => n + r.polled, 0);
  console.log(`socket.io clients: ${results.length - failed} of ${results.length} ok;`
    + ` ${polled} messages acked over polling, the rest over websocket`);
  process.exit(failed ? 1 : 0);
})();
