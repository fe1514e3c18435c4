"""Helpers for the browser tests: serve an app on loopback, drive Debian's headless Chromium,
and find axe-core (the npm package) for accessibility checks.

Nothing here downloads a browser: the tests use /usr/bin/chromium and /usr/bin/chromedriver
(Debian packages) and skip cleanly when they, selenium or axe-core are absent.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,900")
#: Where .ci/run installs axe-core (``npm install --prefix .ci/npm axe-core@4``); the
#: AXE_CORE_JS variable names another copy of ``axe.min.js``.
AXE_CANDIDATES = (ROOT / ".ci" / "npm" / "node_modules" / "axe-core" / "axe.min.js",
                  ROOT / "node_modules" / "axe-core" / "axe.min.js")


def serve(data_dir, **settings):
    """Serve the app over ``data_dir`` on a free loopback port in a thread; yield its URL."""
    from werkzeug.serving import make_server

    from riskmap.web import create_app

    app = create_app({"data_dir": str(data_dir), "auto_demo": False, **settings})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=5)


def chromium():
    """A headless Chromium driver; skips the test when the browser or selenium is absent."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("headless Chromium or chromedriver not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def open_page(driver, url: str, timeout: float = 20.0) -> None:
    """Load ``url`` and wait until its maps (if any) have drawn."""
    driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script("return window.riskmapReady === true || "
                                 "!document.querySelector('.folium-map')"):
            return
        time.sleep(0.1)
    raise AssertionError(f"maps never finished drawing on {url}")


def axe_source() -> str:
    """The text of axe.min.js; skips when axe-core is not installed."""
    env = os.environ.get("AXE_CORE_JS")
    for path in ([Path(env)] if env else []) + list(AXE_CANDIDATES):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    pytest.skip("axe-core not installed (npm install --prefix .ci/npm axe-core@4)")


def shot(driver, name: str) -> Path:
    """Save a screenshot under test-artifacts/ (kept by the test run for a human look)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
