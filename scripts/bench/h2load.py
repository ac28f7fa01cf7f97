#!/usr/bin/env python3
"""Plain HTTP request rate for scripts/bench.sh: runs h2load (nghttp2-client) and prints its result as
one JSON line in the load tool's style ("mode":"requests").

    scripts/bench/h2load.py --url https://localhost:8443/static -n 200000 -c 8 -m 16
    scripts/bench/h2load.py --url https://localhost:8443/static -n 200000 -c 128 -m 1 --h1

The run fails (exit 1) when h2load fails, when it negotiated another protocol than asked for (a
proxy that fell back to HTTP/1.1 would otherwise be measured as HTTP/2), or when any request did not
get a 2xx: a static GET through a proxy has no reason to fail, so a failure is a broken setup (an
nginx closing connections after `keepalive_requests`, which h2load does not reopen), and its rate
would be the rate of failing. h2load does not verify the certificate; the proxies all serve the
run's own.
"""

import argparse
import json
import re
import subprocess
import sys


def parse(out):
    """The numbers of an h2load report (nghttp2 1.52's wording)."""
    def find(pattern, cast=float, default=None):
        m = re.search(pattern, out, re.M)
        return cast(m.group(1)) if m else default

    finished = re.search(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", out, re.M)
    if not finished:
        raise ValueError("no 'finished in' line")
    value, unit, per_s = finished.groups()
    seconds = float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", out, re.M)
    if not counts:
        raise ValueError("no 'requests:' line")
    total, _, done, succeeded, failed, errored, timeout = map(int, counts.groups())
    return {
        "protocol": find(r"^Application protocol: (\S+)", str),
        "tls": find(r"^TLS Protocol: (\S+)", str),
        "cipher": find(r"^Cipher: (\S+)", str),
        "seconds": round(seconds, 3),
        "requests": total,
        "done": done,
        "succeeded": succeeded,
        "failed": failed,
        "errored": errored,
        "timeout": timeout,
        "status_2xx": find(r"^status codes: (\d+) 2xx", int, 0),
        "per_s": round(float(per_s)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, required=True, help="requests in all")
    parser.add_argument("-c", type=int, required=True, help="connections")
    parser.add_argument("-m", type=int, required=True, help="requests in flight per connection")
    parser.add_argument("--h1", action="store_true", help="HTTP/1.1 (ALPN http/1.1) instead of h2")
    args = parser.parse_args()

    command = ["h2load", "-n", str(args.n), "-c", str(args.c), "-m", str(args.m)]
    command += ["--h1"] if args.h1 else []
    run = subprocess.run(command + [args.url], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"h2load exited {run.returncode}: {run.stderr.strip() or run.stdout.strip()[-300:]}")
    try:
        result = parse(run.stdout)
    except ValueError as e:
        sys.exit(f"h2load output: {e}: {run.stdout.strip()[-300:]}")
    want = "http/1.1" if args.h1 else "h2"
    if result["protocol"] != want:
        sys.exit(f"h2load negotiated {result['protocol']!r}, not {want}")
    line = {"mode": "requests", "url": args.url, "connections": args.c, "inflight": args.m, **result}
    line = json.dumps(line, separators=(",", ":"))
    if result["status_2xx"] != result["requests"]:
        sys.exit(f"{result['requests'] - result['status_2xx']} of {result['requests']} requests got no 2xx: {line}")
    print(line)


if __name__ == "__main__":
    main()
