"""The token-stream example end to end: a page (examples/token_stream.html, served over HTTP) follows a stream
with the JavaScript client the broker serves at /herald.js, over the WebSocket channel, in Debian's headless
Chromium driven through the DevTools protocol; the Python worker (examples/token_stream.py) writes the
tokens. Skipped without /usr/bin/chromium (or $CHROMIUM) unless HERALD_REQUIRE_BROWSER is set."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import Broker, eventually

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

if not Path(CHROMIUM).exists():
    if os.environ.get("HERALD_REQUIRE_BROWSER"):
        raise RuntimeError(f"HERALD_REQUIRE_BROWSER is set but there is no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

from websockets.sync.client import connect as ws_connect  # noqa: E402


@pytest.fixture
def chromium() -> Iterator[int]:
    profile = tempfile.mkdtemp(prefix="herald-chromium-")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    proc = subprocess.Popen([CHROMIUM, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    port_file = Path(profile) / "DevToolsActivePort"
    try:
        eventually(lambda: port_file.exists() and port_file.read_text().split("\n")[0].isdigit() or proc.poll() is not None, "chromium's DevTools port", 30)
        assert proc.poll() is None, f"chromium exited: {proc.stderr.read().decode() if proc.stderr else ''}"
        yield int(port_file.read_text().split("\n")[0])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its helpers share its process group
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def pages() -> Iterator[int]:
    """Serves examples/ over HTTP on a free port (the page is an ordinary web page of another origin)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(EXAMPLES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


class DevTools:
    def __init__(self, port: int) -> None:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = ws_connect(page["webSocketDebuggerUrl"], max_size=None)
        self.next_id = 0

    def send(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def evaluate(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page threw: {r['exceptionDetails']}")
        return r["result"].get("value")


def test_browser_follows_tokens_written_by_a_python_worker(broker: Broker, chromium: int, pages: int) -> None:
    page = DevTools(chromium)
    stream = "browser-chat:tokens"
    page.send("Page.navigate", url=f"http://127.0.0.1:{pages}/token_stream.html?broker=127.0.0.1:{broker.http_port}&stream={stream}")
    eventually(lambda: page.evaluate("document.body && document.body.dataset.following === '1'"), "the page to follow the stream", 30)
    assert page.evaluate("document.getElementById('answer').textContent") == ""
    env = dict(os.environ, HERALD_URL=broker.url(3), WORKFLOW_ID="browser-chat")
    worker = subprocess.Popen([sys.executable, str(EXAMPLES / "token_stream.py")], env=env, stdout=subprocess.PIPE, text=True)
    # Live: the page shows the first tokens while the worker is still writing the rest.
    eventually(lambda: page.evaluate("document.getElementById('answer').textContent").startswith("Herald"), "the first token in the page", 30)
    assert worker.wait(60) == 0
    eventually(lambda: page.evaluate("document.body.dataset.done === '1'"), "the page to see the stream closed", 30)
    assert page.evaluate("document.getElementById('answer').textContent") == "Herald streams tokens to the browser as they come ."
    page.ws.close()
