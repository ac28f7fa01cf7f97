#!/usr/bin/env python3
"""Soak client: N connections through wsgate each send sequence-numbered messages of random sizes and
check that every echo comes back, in order. A connection closed by a backend restart reconnects; its
unanswered messages do not count as lost. Loss on a connection that stayed open is a bug.
Usage: soak.py URL CONNECTIONS SECONDS; prints a JSON summary on the last line."""
import asyncio
import json
import os
import random
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

url, connections, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
stats = {"sent": 0, "echoed": 0, "lost_on_open_connections": 0, "out_of_order": 0,
         "reconnects": 0, "closed_by_peer": 0, "connect_failures": 0}
deadline = time.monotonic() + seconds


async def session(ident: int, rng: random.Random):
    seq = 0
    async with connect(url, subprotocols=["chat.v1"], ping_interval=None, max_size=2**22,
                       compression=None, open_timeout=10) as ws:
        expected = []
        while time.monotonic() < deadline:
            size = rng.choice((16, 200, 1000, 20_000, 100_000))
            header = f"{ident}:{seq}:".encode()
            payload = header + os.urandom(max(0, size - len(header)))
            await ws.send(payload if seq % 2 else payload.hex())
            expected.append((seq, payload))
            stats["sent"] += 1
            seq += 1
            # Read everything that has arrived, then pace at about one message per second.
            while expected:
                try:
                    got = await asyncio.wait_for(ws.recv(), timeout=1.0 if len(expected) > 3 else 0.05)
                except asyncio.TimeoutError:
                    break
                want_seq, want = expected.pop(0)
                got_bytes = bytes.fromhex(got) if isinstance(got, str) else got
                if got_bytes != want:
                    stats["out_of_order"] += 1
                stats["echoed"] += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5))
        # The run is over: every message still in flight must come back on this open connection.
        for _ in range(len(expected)):
            try:
                got = await asyncio.wait_for(ws.recv(), timeout=10)
                stats["echoed"] += 1
            except (asyncio.TimeoutError, ConnectionClosed):
                stats["lost_on_open_connections"] += len(expected)
                return
        await ws.close()


async def client(ident: int):
    rng = random.Random(ident)
    await asyncio.sleep(rng.uniform(0, 5))  # ramp up
    while time.monotonic() < deadline:
        try:
            await session(ident, rng)
            return
        except ConnectionClosed:
            stats["closed_by_peer"] += 1  # a backend restart: in-flight messages are not counted
        except (OSError, asyncio.TimeoutError, Exception):
            stats["connect_failures"] += 1
        stats["reconnects"] += 1
        await asyncio.sleep(rng.uniform(0.2, 1.0))


async def main():
    await asyncio.gather(*(client(i) for i in range(connections)))
    print(json.dumps(stats))


asyncio.run(main())
