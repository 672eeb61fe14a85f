"""The dashboard in a real headless Chromium (Debian's), on a served pipeline:
the charts render, a displayed figure equals the snapshot's, and a new
snapshot appears without a reload. The screenshot goes to the test's output
folder (a copy is committed as serving/dashboard.png, linked from the README)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import psycopg
import pytest
from playwright.sync_api import Page, sync_playwright

from schemas.models import Alert
from sinks.postgres.alerts import save as save_alerts
from tests.fixtures.api import LAST_SEQ, Served
from tests.fixtures.services import _blocking

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


async def _save(url: str, alert: Alert) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:  # as `ducats cascades` writes it
        await save_alerts(conn, offsets={0: 1}, detector={}, alerts=[alert])
    finally:
        await conn.close()


def test_the_network_and_alerts_panels_show_real_data_and_acknowledge(served: Served, page: Page,
                                                                      tmp_path: Path) -> None:
    served.wait_snapshot(LAST_SEQ)
    env = {**os.environ, **served.settings.to_env(DUCATS_ANALYZE_METRICS_PORT="0")}
    done = subprocess.run([sys.executable, "-m", "cli", "analyze", "--once"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run = orjson.loads(done.stdout)
    alert = Alert(alert_id="cascade-4242", kind="cascade", state="open", signal="transfers_per_second",
                  started_at="2026-11-26T12:30:00+00:00", start_seq=4242, baseline={"median": 8.0, "mad": 2.0,
                                                                                    "upper": 25.8},
                  peak=95, transfers=95, seconds=1, detected_at="2026-11-26T12:30:03+00:00")
    _blocking(_save(served.settings.database_url, alert))  # its own loop, in a thread
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.url + "/")
    page.wait_for_selector("#panel-network[data-rendered=true]", state="attached", timeout=15_000)
    page.wait_for_selector("#panel-alerts[data-rendered=true]", state="attached", timeout=15_000)
    summary = page.inner_text("#network-summary")
    assert f"{run['graph']['nodes']} holders, {run['graph']['edges']} edges" in summary, summary
    shown = [r.split("\t") for r in page.inner_text("#influencers tbody").splitlines()]
    assert [row[1] for row in shown] == [h["holder"] for h in run["influence"]]
    assert page.inner_text("#alerts tbody tr:first-child td:first-child") == "cascade-4242"
    assert page.text_content("#alerts-open") == "1 open"

    page.fill("#ack-key", served.key)
    page.fill("#ack-by", "operator-ana")
    page.fill("#ack-note", "checked the exchange")
    page.click("button[data-alert=cascade-4242]")
    page.wait_for_function("document.getElementById('ack-result').textContent.includes('acknowledged by')",
                           timeout=10_000)
    page.wait_for_function("document.querySelector('#alerts tbody tr td:last-child').textContent"
                           ".startsWith('operator-ana')", timeout=10_000)
    with served.client() as c:
        ack = c.get("/api/alerts/cascade-4242").json()
    assert ack["acknowledged"]["by"] == "operator-ana" and ack["acknowledged"]["note"] == "checked the exchange"
    assert [a["action"] for a in ack["audit"]] == ["opened", "acknowledged"]
    page.screenshot(path=str(tmp_path / "dashboard-network.png"), full_page=True)
    assert not errors, errors
