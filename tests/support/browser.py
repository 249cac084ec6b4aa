"""Load a page in a real headless browser (Debian's chromium-headless-shell) and report what it logged.

The DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out, NUL-separated JSON): stdlib
only, no websocket client, no driver. `load(path)` navigates to the file, waits for the load event, and
returns every console message, uncaught exception and browser log entry (a blocked fetch, a CSP
violation), every request that was not the file itself or a data: URL, a few facts read from the DOM,
and optionally a PNG screenshot of the whole page.

`make test` installs the browser (Makefile TEST_DEPS); `BROWSER` is the binary it looks for.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BROWSER = "chromium-headless-shell"
TIMEOUT_S = 60.0  # a loaded 2-core machine: generous, and never a measured quantity
FACTS = """JSON.stringify({
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
  svgs: document.querySelectorAll('svg').length,
  scripts: document.querySelectorAll('script').length,
  text: document.body.innerText,
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
})"""


@dataclass
class PageLoad:
    console: list[str] = field(default_factory=list)  # "<level>: <text>" of console calls and log entries
    errors: list[str] = field(default_factory=list)  # error-level messages and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # URLs other than file: and data:
    facts: dict = field(default_factory=dict)  # FACTS, read from the DOM after the load event


def browser() -> str:
    found = shutil.which(BROWSER)
    if found is None:
        raise AssertionError(
            f"{BROWSER} is not installed: `make test` installs it (apt-get install {BROWSER})"
        )
    return found


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.w, self.r, self.buf, self.next_id = write_fd, read_fd, b"", 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise AssertionError(f"{BROWSER} did not answer within {TIMEOUT_S:g} s")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise AssertionError(f"{BROWSER} closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        want = self.send(method, params, session)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            msg = self.read(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def until(self, method: str) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            msg = self.read(deadline)
            self.events.append(msg)
            if msg.get("method") == method:
                return


def _collect(events: list[dict], page: PageLoad) -> None:
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            page.console.append(f"{p.get('type')}: {text}")
            if p.get("type") in ("error", "assert"):
                page.errors.append(text)
        elif method == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            page.errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded":
            entry = p.get("entry", {})
            page.console.append(f"{entry.get('level')}: {entry.get('text')}")
            if entry.get("level") == "error":
                page.errors.append(f"{entry.get('text')} ({entry.get('url', '')})")
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:")):
                page.requests.append(url)


def load(path: Path, screenshot: Path | None = None, width: int = 1100) -> PageLoad:
    """Open `path` in the headless browser; the page's console, errors, foreign requests and DOM facts."""
    to_browser, from_us = os.pipe()
    from_browser, to_us = os.pipe()

    def fds() -> None:  # the child's fd 3 reads our commands, its fd 4 writes the answers
        high_in, high_out = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10), fcntl.fcntl(to_us, fcntl.F_DUPFD, 10)
        os.dup2(high_in, 3)
        os.dup2(high_out, 4)

    args = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
            "--no-first-run", "--disable-background-networking", "--disable-extensions",
            "about:blank"]  # fmt: skip
    proc = subprocess.Popen(
        args, pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    os.close(to_browser)
    os.close(to_us)
    pipe = _Pipe(from_us, from_browser)
    page = PageLoad()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            pipe.call(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        pipe.call("Emulation.setDeviceMetricsOverride", metrics, session)
        pipe.call("Page.navigate", {"url": Path(path).resolve().as_uri()}, session)
        pipe.until("Page.loadEventFired")
        value = pipe.call("Runtime.evaluate", {"expression": FACTS, "returnByValue": True}, session)
        page.facts = json.loads(value["result"]["value"])
        if screenshot is not None:
            options = {"format": "png", "captureBeyondViewport": True}
            shot = pipe.call("Page.captureScreenshot", options, session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        pipe.call("Runtime.evaluate", {"expression": "1"}, session)  # flush events logged after the load
        _collect(pipe.events, page)
    finally:
        os.close(from_us)
        os.close(from_browser)
        proc.kill()
        proc.wait()
    return page


def assert_report_page(build_dir: Path, sections: set[str], screenshot: Path | None = None) -> PageLoad:
    """report.html of `build_dir` loads in the browser with no console error, no request leaving the file,
    no script, and holds `sections` (section ids) among its own; the page as loaded."""
    page = load(Path(build_dir) / "report.html", screenshot)
    assert page.errors == [], page.errors
    assert page.requests == [], page.requests
    assert page.facts["scripts"] == 0 and page.facts["svgs"] >= 1, page.facts
    assert sections <= set(page.facts["sections"]), (sections, page.facts["sections"])
    return page


if __name__ == "__main__":  # the docs' screenshot: python -m tests.support.browser BUILD/report.html OUT.png
    import sys

    shot = Path(sys.argv[2])
    loaded = load(Path(sys.argv[1]), shot, width=int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
    print(f"{shot}: {shot.stat().st_size:,} bytes; errors {loaded.errors}, requests {loaded.requests}")
