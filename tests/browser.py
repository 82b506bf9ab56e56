"""Opens a local HTML file in real headless Chromium, offline, and reports what the page did.

The tests of the HTML reports use it to check that a report fetches nothing, reports no error and
renders, and where its parts lie on the page; ``python tests/browser.py REPORT.html OUT.png`` takes the
README's screenshot the same way.
Standard library only: the browser is driven by the Chrome DevTools Protocol over
``--remote-debugging-pipe`` (NUL-terminated JSON, commands on the browser's fd 3, replies on its fd 4).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import math
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEIGHT = 800  # the viewport's height in CSS pixels
FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # besides the offline emulation: no host name resolves,
    "--proxy-server=http://127.0.0.1:9",  # and what needs none goes to a closed port
    "--remote-debugging-pipe",
)
OUTER_HTML = "document.documentElement.outerHTML"
TOPS = (
    "JSON.stringify(Object.fromEntries(%s.map(s => [s, [...document.querySelectorAll(s)]"
    ".map(e => e.getBoundingClientRect().top + window.scrollY)])))"
)
SETTLE = "document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 100))))"


@dataclass(frozen=True)
class Page:
    """What a page did when opened.

    Attributes:
        dom: The serialized DOM after load (``document.documentElement.outerHTML``).
        screenshot: A full-page PNG screenshot.
        requests: Every URL the page tried to fetch, other than the file itself and ``data:`` URLs, in order,
            without repeats (those off the machine all failed; files beside the report may have loaded).
        console_errors: Console errors, JavaScript exceptions and failed loads, as text.
        tops: For each CSS selector asked for (``measure``), the top of every element it matches, in document
            order: CSS pixels from the top of the page, as laid out at the page's width.
    """

    dom: str
    screenshot: Path
    requests: tuple[str, ...]
    console_errors: tuple[str, ...]
    tops: dict[str, tuple[float, ...]] = field(default_factory=dict)


def chromium() -> str | None:
    """The browser's path: ``$REPROKIT_CHROMIUM``, else chromium, chromium-browser or google-chrome on PATH."""
    names = (os.environ.get("REPROKIT_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome")
    return next((path for name in names if name and (path := shutil.which(name))), None)


def require_chromium() -> str:
    """The browser's path for a test: skips the test without one, fails instead if REPROKIT_REQUIRE_BROWSER=1."""
    import pytest

    browser = chromium()
    if browser is None:
        message = "no chromium: install Debian's chromium: apt-get install chromium"
        if os.environ.get("REPROKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"REPROKIT_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)
    return browser


class _Pipe:
    """The DevTools connection; it attaches to the page's iframes and workers as they start."""

    def __init__(self, out: int, into: int, deadline: float) -> None:
        self.out, self.into, self.deadline = out, into, deadline
        self.buffer, self.last_id = b"", 0
        self.replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    def receive(self, until: float | None = None) -> bool:
        """Reads one message; False if none came by ``until``. Raises TimeoutError past the deadline."""
        until = min(until or self.deadline, self.deadline)
        while b"\0" not in self.buffer:
            left = until - time.monotonic()
            if left <= 0 and until == self.deadline:
                raise TimeoutError("the browser did not finish in time")
            if left <= 0:
                return False
            if select.select([self.into], [], [], left)[0]:
                chunk = os.read(self.into, 1 << 20)
                if not chunk:
                    raise ConnectionError("the browser closed the DevTools pipe")
                self.buffer += chunk
        data, self.buffer = self.buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(data)
        if "id" in message:
            self.replies[message["id"]] = message
        else:
            self.events.append(message)
            if message["method"] == "Target.attachedToTarget":  # an iframe or worker, paused until set up
                self.instrument(message["params"]["sessionId"], child=True)
        return True

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Sends a command and returns its result, keeping the events that arrive meanwhile."""
        self.last_id += 1
        number = self.last_id
        message = {"id": number, "method": method, "params": params, **({"sessionId": session} if session else {})}
        try:
            os.write(self.out, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:  # it quit before reading: the same failure as a pipe closed while reading
            raise ConnectionError("the browser closed the DevTools pipe") from None
        while number not in self.replies:
            self.receive()
        reply = self.replies.pop(number)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply["result"]
        return result

    def instrument(self, session: str, child: bool = False) -> None:
        """Records a target's requests and errors, its network offline (a worker's is its page's: not supported)."""
        offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        attach = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
        params: dict[str, dict[str, Any]] = {
            "Network.emulateNetworkConditions": offline,
            "Target.setAutoAttach": attach,
        }
        methods = ["Network.enable", "Runtime.enable", "Log.enable", *params]
        for method in methods + ["Runtime.runIfWaitingForDebugger"] * child:
            try:
                self.send(method, session, **params.get(method, {}))
            except RuntimeError:
                if not child:
                    raise

    def wait_for(self, method: str, **params: Any) -> None:
        """Reads messages until an event ``method`` comes with (at least) ``params``."""
        while not any(e["method"] == method and params.items() <= e.get("params", {}).items() for e in self.events):
            self.receive()


def _error(event: dict[str, Any]) -> str | None:
    """The text of the error that ``event`` reports, None if it reports none."""
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
        return " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return str(details.get("exception", {}).get("description") or details["text"])
    if method == "Log.entryAdded" and params["entry"]["level"] == "error" and params["entry"]["source"] != "worker":
        entry = params["entry"]
        return f"{entry['text']} ({entry['url']})" if entry.get("url") else str(entry["text"])
    return None


def open_report(
    html: Path, screenshot: Path, width: int = 1280, *, timeout: float = 60.0, measure: Sequence[str] = ()
) -> Page:
    """Opens ``html`` in headless Chromium with the network off and records what the page did.

    Args:
        html: The page to open.
        screenshot: Where to write a full-page PNG screenshot.
        width: The viewport's width in CSS pixels (its height is 800, its device scale factor 1).
        timeout: Seconds for everything, from starting the browser to its last answer.
        measure: CSS selectors whose elements' positions to report (``Page.tops``).

    Returns:
        The DOM after load, the screenshot, the URLs the page tried to fetch, the errors it reported and
        the positions measured.

    Raises:
        FileNotFoundError: No ``html``, or no browser.
        RuntimeError: The browser refused a command.
        TimeoutError: The page did not load, or the browser did not answer, in ``timeout`` seconds.
    """
    browser = chromium()
    if browser is None or not html.is_file():
        raise FileNotFoundError(html if browser else "no chromium: install Debian's chromium: apt-get install chromium")
    url = html.resolve().as_uri()
    profile = Path(tempfile.mkdtemp(prefix="reprokit-chromium-"))
    out, into, pid, closed = -1, -1, 0, False
    try:
        out, into, pid = _launch(browser, width, profile)
        pipe = _Pipe(out, into, time.monotonic() + timeout)
        target = pipe.send("Target.createTarget", url="about:blank")["targetId"]
        session = pipe.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        pipe.send("Page.enable", session)
        pipe.send("Page.setLifecycleEventsEnabled", session, enabled=True)
        pipe.instrument(session)
        metrics = {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}
        pipe.send("Emulation.setDeviceMetricsOverride", session, **metrics)
        pipe.events.clear()
        navigation = pipe.send("Page.navigate", session, url=url)
        if "errorText" in navigation:
            raise RuntimeError(f"could not open {url}: {navigation['errorText']}")
        pipe.wait_for("Page.lifecycleEvent", name="load", loaderId=navigation["loaderId"])
        pipe.send("Runtime.evaluate", session, expression=SETTLE, awaitPromise=True)
        settled = time.monotonic() + 1
        while pipe.receive(until=min(settled, time.monotonic() + 0.1)):  # what is still under way, up to 1 s
            pass
        tops = {}
        if measure:
            expression = TOPS % json.dumps(list(measure))
            found = pipe.send("Runtime.evaluate", session, expression=expression, returnByValue=True)["result"]
            tops = {selector: tuple(float(y) for y in ys) for selector, ys in json.loads(found["value"]).items()}
        size = pipe.send("Page.getLayoutMetrics", session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": width, "height": max(HEIGHT, math.ceil(size["height"])), "scale": 1}
        png = pipe.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True, clip=clip)
        screenshot.write_bytes(base64.b64decode(png["data"]))
        dom = pipe.send("Runtime.evaluate", session, expression=OUTER_HTML, returnByValue=True)["result"]["value"]
        with contextlib.suppress(ConnectionError):  # it may close the pipe before it answers
            pipe.send("Browser.close")
        closed = True
    except ConnectionError as error:  # the browser quit: say what it wrote
        output = (profile / "output.txt").read_text(errors="replace")[-2000:]
        raise ConnectionError(f"{error}; its output ended with:\n{output}") from error
    finally:
        if pid:
            _stop(pid, grace=5 if closed else 0)
        for fd in (out, into):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(profile, ignore_errors=True)
    urls = [e["params"]["request"]["url"] for e in pipe.events if e["method"] == "Network.requestWillBeSent"]
    urls += [e["params"]["url"] for e in pipe.events if e["method"] == "Network.webSocketCreated"]
    requests = tuple(dict.fromkeys(u for u in urls if u.split("#")[0] != url and not u.startswith("data:")))
    errors = tuple(text for event in pipe.events if (text := _error(event)) is not None)
    return Page(dom, screenshot, requests, errors, tops)


def _launch(browser: str, width: int, profile: Path) -> tuple[int, int, int]:
    """Starts the browser in a process group of its own; returns our ends of its pipes and its pid."""
    commands, out = os.pipe()
    into, replies = os.pipe()
    log = os.open(profile / "output.txt", os.O_WRONLY | os.O_CREAT, 0o600)
    # numbered 5 and up, so that the dup2s onto 3 and 4 cannot overwrite one another
    theirs = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5) for fd in (commands, replies)]
    actions: list[tuple[Any, ...]] = [(os.POSIX_SPAWN_DUP2, theirs[0], 3), (os.POSIX_SPAWN_DUP2, theirs[1], 4)]
    actions += [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    actions += [(os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
    argv = [browser, *FLAGS, f"--window-size={width},{HEIGHT}", f"--user-data-dir={profile}", "about:blank"]
    try:
        pid = os.posix_spawn(browser, argv, os.environ, file_actions=actions, setsid=True, setsigdef=[signal.SIGPIPE])
    except OSError:
        os.close(out)
        os.close(into)
        raise
    finally:
        for fd in (commands, replies, *theirs, log):  # the browser's ends: it holds them now
            os.close(fd)
    return out, into, pid


def _stop(pid: int, grace: float) -> None:
    """Gives the browser ``grace`` seconds to exit, then kills its process group and reaps the browser."""
    deadline = time.monotonic() + grace
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() >= deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # its helpers (zygotes, renderers) that outlived it


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/browser.py REPORT.html OUT.png")
    page = open_report(Path(sys.argv[1]), Path(sys.argv[2]))
    requests, errors = list(page.requests), list(page.console_errors)
    print(f"{page.screenshot}: {len(requests)} requests {requests}, {len(errors)} errors {errors}")
