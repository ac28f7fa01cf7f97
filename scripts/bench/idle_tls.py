#!/usr/bin/env python3
"""Idle tunnels over ws:// or wss://: opens N WebSocket connections through a proxy (one echo each),
holds them, and prints the proxy's RSS before and after as one JSON line (KiB per tunnel).

    scripts/bench/idle_tls.py --url wss://127.0.0.1:8443/ --pid 1234 --connections 2000

wss:// does not verify the certificate (a bench against a test certificate). The proxy's RSS is
read from /proc/PID/status (VmRSS) once every tunnel has echoed and the proxy has been quiet for
`--settle` seconds.
"""

import argparse
import base64
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse

# A masked text frame "idle" (RFC 6455 section 5.3), and what the echo sends back (unmasked).
MASK = b"\x37\xfa\x21\x3d"
PAYLOAD = b"idle"
FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + MASK + bytes(
    b ^ MASK[i % 4] for i, b in enumerate(PAYLOAD)
)
ECHO = bytes([0x81, len(PAYLOAD)]) + PAYLOAD


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def read_until(sock, marker, limit=16384):
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
        if len(data) > limit:
            raise ConnectionError("response head too large")
    return data


def read_exact(sock, n, already=b""):
    data = already
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed mid-frame")
        data += chunk
    return data


def open_tunnel(url, context):
    host, port = url.hostname, url.port or (443 if url.scheme == "wss" else 80)
    sock = socket.create_connection((host, port), timeout=10)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {url.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = read_until(sock, b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"no 101: {head[:80]!r}")
    rest = head.split(b"\r\n\r\n", 1)[1]
    sock.sendall(FRAME)
    echo = read_exact(sock, len(ECHO), rest)
    if echo != ECHO:
        raise ConnectionError(f"bad echo {echo!r}")
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="ws://host:port/ or wss://host:port/")
    parser.add_argument("--pid", type=int, required=True, help="the proxy's process id")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to hold after reading")
    args = parser.parse_args()

    url = urllib.parse.urlparse(args.url)
    context = None
    if url.scheme == "wss":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    time.sleep(args.settle)
    before = rss_kib(args.pid)
    tunnels = []
    failed = 0
    for _ in range(args.connections):
        try:
            tunnels.append(open_tunnel(url, context))
        except (OSError, ConnectionError) as error:
            failed += 1
            print(f"connect failed: {error}", file=sys.stderr)
    time.sleep(args.settle)
    after = rss_kib(args.pid)
    per = (after - before) / len(tunnels) if tunnels else 0.0
    print(
        json.dumps(
            {
                "mode": "idle",
                "scheme": url.scheme,
                "open": len(tunnels),
                "failed": failed,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "kib_per_tunnel": round(per, 2),
            }
        ),
        flush=True,
    )
    time.sleep(args.hold)
    for sock in tunnels:
        sock.close()


if __name__ == "__main__":
    main()
