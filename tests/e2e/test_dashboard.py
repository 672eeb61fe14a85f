"""The dashboard in a real headless Chromium (Debian's), on a served pipeline:
the charts render, a displayed figure equals the snapshot's, and a new
snapshot appears without a reload. The screenshot goes to the test's output
folder (a copy is committed as serving/dashboard.png, linked from the README)."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.fixtures.api import Served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As this machine's probe found: without the background-networking flags Chromium's own
# connections are refused by the closed network, and as root it needs --no-sandbox.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
CHARTS = ["circulation", "velocity", "top", "temperature", "stages", "levels"]


@pytest.fixture
def page() -> Page:  # type: ignore[misc]
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed (deploy/install.sh installs it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1500})
        finally:
            browser.close()


def test_dashboard_renders_live_pipeline_data(served: Served, page: Page, tmp_path: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.url + "/")
    for name in CHARTS:
        page.wait_for_selector(f"#chart-{name}[data-rendered=true]", state="attached", timeout=15_000)
    page.wait_for_function("document.body.dataset.version !== ''", timeout=15_000)

    with served.client() as c:
        snap = c.get("/api/metrics/current").json()
    page.wait_for_function(f"Number(document.body.dataset.version) >= {snap['version']}", timeout=15_000)
    shown = int(page.inner_text("#fig-supply").replace(",", ""))
    assert shown == snap["supply"] == 30
    transfers_before = int(page.inner_text("#fig-transfers").replace(",", ""))
    assert transfers_before == snap["transfers"]
    bars = page.evaluate("window.dashboard.charts.top.data.datasets[0].data")
    labels = page.evaluate("window.dashboard.charts.top.data.labels")
    assert labels[0] == snap["topCirculating"][0]["ducatId"] and bars[0] == snap["topCirculating"][0]["transfers"]
    assert page.evaluate("window.dashboard.charts.temperature.data.datasets[0].data") == [
        snap["temperature"].get(k, 0) for k in ("cold", "warm", "hot")]
    page.wait_for_selector("#recent tbody tr", timeout=15_000)
    assert page.inner_text("#live") == "live"

    page.evaluate("window.__loadedOnce = true")  # gone if the page reloads
    with served.writer() as w:
        body = orjson.dumps({"transactionId": f"dash-{uuid.uuid4().hex[:8]}", "timestamp": "2026-11-26T12:45:00Z",
                             "from": "alice", "to": "quinn", "ducatIds": ["BATCH-2-000005"]})
        assert w.post("/api/transactions", content=body, params={"wait": 5}).json()["status"] == "accepted"
    page.wait_for_function(
        f"Number(document.getElementById('fig-transfers').textContent.replace(/,/g, '')) > {transfers_before}",
        timeout=20_000)
    assert page.evaluate("window.__loadedOnce") is True, "the page reloaded"
    with served.client() as c:
        now = c.get("/api/metrics/current").json()
    assert int(page.inner_text("#fig-transfers").replace(",", "")) in (now["transfers"], transfers_before + 1)
    page.wait_for_function("document.querySelector('#recent tbody td').textContent === "
                           f"String({now['position']['seq']})", timeout=10_000)  # the new transaction is listed
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000
    assert not errors, errors
