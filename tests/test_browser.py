"""JupyterLab in a real browser: run a widget notebook, move its slider, see the image change.

Uses Debian's Chromium (/usr/bin/chromium) driven by Playwright (no downloaded browser). Skipped
only when Chromium is not installed (``.ci/run`` installs it). Screenshots go to
``test-output/browser/``. The server is always stopped, and every wait is bounded.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    root = tmp_path / "nb"  # a copy: autosave must never touch the committed notebook
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_low_rank_math.ipynb", root)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
           f"--ServerApp.root_dir={root}", "--allow-root"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start in 60 s:\n" + (tmp_path / "lab.log").read_text()[-2000:])
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_rank_slider_redraws_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/01_low_rank_math.ipynb?token={token}", timeout=90_000)
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_function("window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')",
                                   timeout=60_000)
            # wait until the kernel is ready, then run every cell
            page.wait_for_function("document.querySelector('.jp-Notebook') !== null", timeout=30_000)
            time.sleep(3)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            image = page.locator(".widget-image").first
            image.wait_for(state="visible", timeout=180_000)
            image.scroll_into_view_if_needed()
            time.sleep(1)
            before = image.screenshot(path=str(OUT / "slider_before.png"))
            page.screenshot(path=str(OUT / "notebook_01_widget.png"))
            handle = page.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle").first
            handle.click()
            for _ in range(15):
                handle.press("ArrowLeft")
            deadline, after = time.time() + 60, before
            while time.time() < deadline and after == before:
                time.sleep(0.5)
                after = image.screenshot(path=str(OUT / "slider_after.png"))
            page.screenshot(path=str(OUT / "notebook_01_widget_moved.png"))
            text = page.inner_text("body")
            assert "Error displaying widget" not in text and "Model not found" not in text
            assert after != before, "moving the rank slider did not change the image"
        finally:
            browser.close()
