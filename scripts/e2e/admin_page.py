#!/usr/bin/env python3
"""Drives wsgate's live admin page in a headless Chromium over the Chrome DevTools Protocol: waits
until the page's table lists the tunnel of a client (matched by the client's local port in the client
column), clicks that row's Close button, and waits for the page's status line to tell the result.

usage: admin_page.py PROFILE_DIR PAGE_URL CLIENT_PORT [--want REGEX]

Chromium runs with --remote-debugging-port=0 --user-data-dir=PROFILE_DIR, so it writes the port it
chose to PROFILE_DIR/DevToolsActivePort. Prints one line per step; exits 1 when a step times out or
the status line does not match REGEX (default: the tunnel's close succeeded)."""
import argparse
import asyncio
import itertools
import json
import pathlib
import re
import sys
import time
import urllib.request

from websockets.asyncio.client import connect

STEP_TIMEOUT = 15.0  # seconds for each wait: Chromium up, the row listed, the close answered


class Failed(Exception):
    pass


async def until(what, probe):
    """Calls probe() every 100 ms until it returns something truthy, at most STEP_TIMEOUT."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise Failed(f"timed out after {STEP_TIMEOUT:.0f} s waiting for {what}")


def devtools_port(profile):
    try:
        return int((profile / "DevToolsActivePort").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # not written yet


def page_target(port, url):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as answer:
            targets = json.load(answer)
    except OSError:
        return None
    return next((t["webSocketDebuggerUrl"] for t in targets
                 if t.get("type") == "page" and t.get("url", "").startswith(url)), None)


class Page:
    """One CDP session on a page target: Runtime.evaluate and its answer, by message id."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def evaluate(self, expression):
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": "Runtime.evaluate",
                                       "params": {"expression": expression, "returnByValue": True}}))
        while True:  # events (none are enabled) and stale answers are skipped
            message = json.loads(await self.ws.recv())
            if message.get("id") == msg_id:
                break
        if "error" in message:
            raise Failed(f"CDP error: {message['error']}")
        result = message["result"]
        if "exceptionDetails" in result:
            raise Failed(f"page exception: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")


async def main(args):
    profile = pathlib.Path(args.profile)

    async def port_written():
        return devtools_port(profile)
    port = await until("Chromium's DevToolsActivePort", port_written)

    async def target_listed():
        return await asyncio.to_thread(page_target, port, args.url)
    ws_url = await until(f"a page target at {args.url}", target_listed)

    async with connect(ws_url, max_size=None, ping_interval=None) as ws:
        page = Page(ws)
        suffix = json.dumps(f":{args.client_port}")
        find_row = (f"(Array.from(document.querySelectorAll('#tunnels tr[data-id]'))"
                    f".find(tr => tr.querySelector('td[data-col=client]').textContent.endsWith({suffix}))"
                    f" || {{dataset: {{}}}}).dataset.id || null")

        async def row_listed():
            return await page.evaluate(find_row)
        try:
            tunnel = await until(f"a row for client port {args.client_port}", row_listed)
        except Failed as failure:  # the page's own lines tell why (a refresh error, no tunnels)
            shown = await page.evaluate("['status', 'summary'].map(id => "
                                        "document.getElementById(id)?.textContent || '-').join(' | ')")
            raise Failed(f"{failure}; the page shows: {shown}") from None
        print(f"admin page: tunnel {tunnel} listed for client port {args.client_port}")

        clicked = await page.evaluate(
            f"(b => b ? (b.click(), true) : false)"
            f"(document.querySelector('button.close[data-id=\"{int(tunnel)}\"]'))")
        if not clicked:
            raise Failed(f"no close button for tunnel {tunnel}")
        print(f"admin page: clicked close of tunnel {tunnel}")

        async def answered():  # the status line says "closing ..." until the POST is answered
            status = await page.evaluate("document.getElementById('status').textContent")
            return status if status and not status.startswith("closing") else None
        status = await until("the close's result in #status", answered)
        print(f"admin page: status: {status}")
        if not re.search(args.want, status):
            raise Failed(f"status {status!r} does not match {args.want!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", help="Chromium's --user-data-dir")
    parser.add_argument("url", help="the admin page's URL, as Chromium was given it")
    parser.add_argument("client_port", type=int, help="the WebSocket client's local port")
    parser.add_argument("--want", default=r"^tunnel \d+ (closed|closing)\b",
                        help="regex the status line must match after the close")
    try:
        asyncio.run(main(parser.parse_args()))
    except Failed as failure:
        print(f"FAIL: admin page: {failure}")
        sys.exit(1)
