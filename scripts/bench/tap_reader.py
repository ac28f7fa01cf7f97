#!/usr/bin/env python3
"""A tap's slow reader for scripts/bench.sh: GET http://ADMIN/tunnels/ID/tap read at most RATE lines a
second over a small receive buffer, as an operator's terminal over a slow link would, so that a
flooding tunnel outruns it and wsgate must drop lines (the tunnel never waits for a tap). On SIGTERM
it reads the rest at full speed to the stream's end, so every line wsgate sent or dropped is counted.
Writes READY once the first line is in; prints {"frames":N,"dropped":D,"end":{...},"read_rate":RATE}
at the end.

  tap_reader.py ADMIN ID RATE READY
"""
import http.client
import json
import signal
import socket
import sys
import time

admin, tunnel, rate, ready = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
fast = False


def drain(*_):
    global fast
    fast = True


signal.signal(signal.SIGTERM, drain)


class SmallBuffer(http.client.HTTPConnection):
    """A receive buffer of a few KiB, set before connecting so the window stays small: the kernel
    then holds little of what the reader has not read, and wsgate's tap falls behind instead."""

    def connect(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.settimeout(60)
        self.sock.connect((self.host, self.port))


host, port = admin.rsplit(":", 1)
conn = SmallBuffer(host, int(port))
conn.request("GET", f"/tunnels/{tunnel}/tap")
response = conn.getresponse()
if response.status != 200:
    sys.exit(f"tap_reader: GET /tunnels/{tunnel}/tap: {response.status} {response.read()[:200]!r}")
frames = dropped = 0
end = None
start = time.monotonic()
read = 0
while line := response.readline():
    read += 1
    if read == 1:
        with open(ready, "w") as f:
            f.write("attached\n")
    item = json.loads(line)
    if "dropped" in item:
        dropped += item["dropped"]
    elif "end" in item:
        end = item
    else:
        frames += 1
    ahead = read / rate - (time.monotonic() - start)
    if not fast and ahead > 0:
        time.sleep(ahead)
print(json.dumps({"frames": frames, "dropped": dropped, "end": end, "read_rate": rate}, separators=(",", ":")))
