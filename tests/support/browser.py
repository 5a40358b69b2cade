"""Headless Chromium driven over the DevTools protocol: open a page, click, read what it shows.

Debian's ``chromium`` (``.ci/run`` installs it). Every host but 127.0.0.1 is unresolvable for
the browser, so a page that needs the internet fails here as it would offline. A click is a
real mouse press and release at the element's centre (``Input.dispatchMouseEvent``), not a
script calling ``.click()``.
"""

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from typing import Any

import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Browser:
    """One headless Chromium with one tab; ``async with Browser() as page: ...``."""

    def __init__(self, timeout: float = 60) -> None:
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._session: str | None = None

    async def __aenter__(self) -> "Browser":
        assert CHROMIUM, "Chromium is not installed"
        self._profile = tempfile.TemporaryDirectory(prefix="scout-chromium-")
        self._proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={self._profile.name}", "--remote-debugging-port=0", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        url = await asyncio.wait_for(self._devtools_url(), self.timeout)
        self._ws = await websockets.connect(url, max_size=None)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self._session = attached["sessionId"]
        await self.send("Page.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        if self._proc.returncode is None:
            self._proc.kill()
        await self._proc.wait()
        self._profile.cleanup()

    async def _devtools_url(self) -> str:
        assert self._proc.stderr is not None
        while True:
            line = (await self._proc.stderr.readline()).decode(errors="replace")
            if not line:
                raise RuntimeError("Chromium exited before its DevTools endpoint was up")
            found = LISTENING.search(line)
            if found:
                return found.group(1)

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            if "id" in message and message["id"] in self._pending:
                self._pending.pop(message["id"]).set_result(message)
            elif "method" in message:
                await self._events.put(message)

    async def send(self, method: str, params: dict | None = None, *, page: bool = True) -> dict:
        """One DevTools command (to the tab unless ``page=False``); its result, or it raises."""
        command: dict[str, Any] = {"id": next(self._ids), "method": method}
        command["params"] = params or {}
        if page:
            command["sessionId"] = self._session
        future = asyncio.get_running_loop().create_future()
        self._pending[command["id"]] = future
        await self._ws.send(json.dumps(command))
        answer = await asyncio.wait_for(future, self.timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def _loaded(self) -> None:
        while (await asyncio.wait_for(self._events.get(), self.timeout))[
            "method"
        ] != "Page.loadEventFired":
            pass

    async def goto(self, url: str) -> None:
        """Open ``url`` and wait until the page has loaded."""
        self._drain()
        navigated = await self.send("Page.navigate", {"url": url})
        assert "errorText" not in navigated, navigated
        await self._loaded()

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        return result["result"].get("value")

    async def text(self) -> str:
        """What the page shows (its body's rendered text)."""
        return await self.evaluate("document.body.innerText")

    async def click(self, selector: str) -> None:
        """Press and release the mouse on ``selector``'s centre; wait for the page it loads."""
        box = await self.evaluate(
            f"JSON.stringify(document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect())"
        )
        rect = json.loads(box)
        x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
        self._drain()
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )
        await self._loaded()

    def _drain(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()
