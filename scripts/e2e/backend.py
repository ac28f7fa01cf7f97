#!/usr/bin/env python3
"""A backend behind wsgate for the end-to-end client checks, written with Python's `websockets`:
WebSocket echo on any path (choosing subprotocol chat.v1 when offered), the browser test page at
*/page, and */verdict?run=...&result=...&protocol=... which the page calls with its verdict and the
protocol it was loaded over (written to VERDICT_DIR/<run> as "<result> page=<protocol>"); */hello and
*/big (256 KiB, more than an HTTP/2 stream's default window) as plain resources for curl."""
import asyncio
import http
import os
import pathlib
import sys
import urllib.parse

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

PAGE = (pathlib.Path(__file__).parent / "browser.html").read_bytes()
HELLO = b"hello through wsgate\n"
BIG = bytes(range(256)) * 1024
VERDICTS = pathlib.Path(os.environ["VERDICT_DIR"])


def respond(status, body, content_type):
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])
    return Response(status.value, status.phrase, headers, body)


def process_request(connection, request):
    url = urllib.parse.urlsplit(request.path)
    if url.path.endswith("/page"):
        return respond(http.HTTPStatus.OK, PAGE, "text/html; charset=utf-8")
    if url.path.endswith("/hello"):
        return respond(http.HTTPStatus.OK, HELLO, "text/plain")
    if url.path.endswith("/big"):
        return respond(http.HTTPStatus.OK, BIG, "application/octet-stream")
    if url.path.endswith("/verdict"):
        query = urllib.parse.parse_qs(url.query)
        run = query.get("run", ["unnamed"])[0]
        if not run.replace("-", "").replace("_", "").isalnum():  # a file name, never a path
            return respond(http.HTTPStatus.BAD_REQUEST, b"bad run name", "text/plain")
        verdict = f'{query.get("result", ["none"])[0]} page={query.get("protocol", ["?"])[0]}'
        (VERDICTS / run).write_text(verdict)
        return respond(http.HTTPStatus.OK, b"thanks", "text/plain")
    return None  # a WebSocket upgrade


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port):
    async with serve(echo, "127.0.0.1", port, subprotocols=["chat.v1"],
                     process_request=process_request, ping_interval=None):
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1])))
