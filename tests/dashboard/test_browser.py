"""The dashboard in a real headless browser (Debian's chromium driven by Playwright) against a running
platform: it connects with a platform token, shows a decision and its notice's state live, and works by
keyboard."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.ci import unavailable
from tests.platform import Running
from wi.contract import PowerCap, derived_id

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_COPY = "WI_DASHBOARD_SCREENSHOT"
"""Where the test also saves its screenshot, if set (the README's is made so)."""
expect.set_options(timeout=15_000)


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; skips without it (fails under CI=true): `tools/chromium/install` installs it."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: run tools/chromium/install (make test does)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Headless chromium, driven by Playwright."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def _tab_to(page: Page, selector: str, most: int = 30) -> None:
    """Presses Tab until the element matching ``selector`` has the focus."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus by keyboard")


async def test_the_dashboard_shows_decisions_live_and_works_by_keyboard(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    http_url = running.endpoints.http_url
    acme = httpx.AsyncClient(base_url=http_url, headers={"Authorization": f"Bearer {running.acme}"})
    async with acme:
        assert (await acme.get("/ui/api/snapshot")).status_code == 403, "a tenant token reads nothing"
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        await page.goto(f"{http_url}/ui#token={running.operator}")
        await expect(page.locator("#status")).to_have_text("Live")
        assert "token" not in page.url, "the token leaves the address bar"
        await expect(page.locator("#fleet tbody tr").first).to_be_visible()

        await acme.post("/v1/workloads/web/hints", json={"kind": "evictability", "evictable": True})
        placed = await acme.post(
            "/v1/workloads/web/deployments",
            json={"deployment": "api", "instances": 2, "cores": 4, "memory_gb": 8},
        )
        entry = page.locator("#timeline li", has_text="allocator place")
        await expect(entry).to_contain_text("acme/web: api: placed")
        badge = entry.locator(".state")
        await expect(badge).to_have_text("pending")

        notice_id = derived_id("placement", placed.json()["ids"][0], 0)
        answered = await acme.post(f"/v1/workloads/web/notices/{notice_id}/responses", json={"action": "ack"})
        assert answered.status_code == 202, answered.text
        await expect(badge).to_have_text("acked")
        await expect(page.locator("#fleet tbody")).to_contain_text("spot")

        drill = (await acme.post("/v1/workloads/web/drills", json={"target": "web-0"})).json()
        drilled = page.locator("#timeline li", has_text="eviction notice")
        await expect(drilled.locator(".state")).to_have_text("pending")
        await acme.post(f"/v1/workloads/web/notices/{drill['notice_id']}/responses", json={"action": "ack"})
        await expect(page.locator("#timeline li", has_text="(drill)")).to_contain_text("acked")

        await running.bus.publish(PowerCap(power_domain="use1-row1", cap_watts=9_000, draw_watts=8_500))
        row = page.locator('#power [data-domain="use1-row1"]')
        await expect(row).to_contain_text("draw 8500 W, cap 9000 W")

        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to the decisions"
        await _tab_to(page, '#workloads button[data-key="acme/web"]')
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", "the focus is visible"
        await page.keyboard.press("Enter")
        await expect(page.locator("#workload h2")).to_have_text("acme/web")
        await expect(page.locator("#workload table")).to_contain_text("evictability")

        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
        if os.environ.get(SCREENSHOT_COPY):
            await page.screenshot(path=os.environ[SCREENSHOT_COPY], full_page=True)
