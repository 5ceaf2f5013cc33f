"""A real headless Chromium for the tests, driven over the DevTools protocol (aiohttp's websocket client; no
browser-automation package needed): open a page from disk, collect its console errors and exceptions, evaluate
a script in it. The browser listens on loopback only and is always stopped."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


async def _session(url: str, script: str, timeout: float) -> dict[str, Any]:
    import aiohttp

    binary = find_browser()
    assert binary, "no Chromium on PATH"
    profile = tempfile.mkdtemp(prefix="lawsweep-chromium-")
    proc = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise TimeoutError("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                page = next(t for t in await r.json() if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                return await _drive(ws, url, script, deadline)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


async def _drive(ws: Any, url: str, script: str, deadline: float) -> dict[str, Any]:
    next_id, errors = 0, []

    async def call(method: str, **params: Any) -> dict[str, Any]:
        nonlocal next_id
        next_id += 1
        my_id = next_id
        await ws.send_json({"id": my_id, "method": method, "params": params})
        while True:
            msg = json.loads((await asyncio.wait_for(ws.receive(), deadline - time.monotonic())).data)
            if _collect(msg, errors) == "loaded":
                state["loaded"] = True
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    state = {"loaded": False}
    for domain in ("Runtime", "Log", "Page"):
        await call(f"{domain}.enable")
    await call("Page.navigate", url=url)
    while not state["loaded"]:
        msg = json.loads((await asyncio.wait_for(ws.receive(), deadline - time.monotonic())).data)
        if _collect(msg, errors) == "loaded":
            state["loaded"] = True
    res = await call("Runtime.evaluate", expression=script, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in res:
        raise RuntimeError(f"the script failed in the page: {res['exceptionDetails']}")
    await asyncio.sleep(0.2)  # late console messages
    return {"value": res["result"].get("value"), "errors": errors}


def _collect(msg: dict[str, Any], errors: list[str]) -> str:
    method, p = msg.get("method"), msg.get("params", {})
    if method == "Runtime.exceptionThrown":
        errors.append(str(p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"]))
    elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
    elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
        errors.append(p["entry"].get("text", ""))
    elif method == "Page.loadEventFired":
        return "loaded"
    return ""


def open_page(path: Path, script: str, timeout: float = 60.0) -> dict[str, Any]:
    """Open ``path`` (a file on disk) in headless Chromium, run ``script`` (a JS expression; its value comes back
    as JSON) once the page has loaded. Returns {"value": ..., "errors": [console errors and exceptions]}."""
    return asyncio.run(_session(path.resolve().as_uri(), script, timeout))
