"""The web pages in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_home_profile_and_post_pages_in_french_then_english(make_instance, browser):
    inst = make_instance("127.0.0.2", "Saint-Page").init("alice")
    inst.start()
    # Playwright's sync API owns an event loop in this thread: post with plain urllib before using it.
    request = urllib.request.Request(
        inst.url + "/api/v1/notes", method="POST",
        data=json.dumps({"content": "Je prête une échelle <script>x</script> #bricolage"}).encode(),
        headers={"Authorization": f"Bearer {inst.tokens['alice']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 201
        note = json.load(resp)
    page = browser.new_page(locale="fr-FR")
    page.goto(inst.url + "/")
    assert page.locator("h1").inner_text() == "Les dernières nouvelles de Saint-Page"
    body = page.locator(".note .content").first
    assert "Je prête une échelle" in body.inner_text()
    assert page.locator(".note .content script").count() == 0  # escaped, shown as text
    page.get_by_role("link", name="English").click()
    assert page.locator("h1").inner_text() == "Latest from Saint-Page"
    page.goto(inst.actor_id("alice"))
    assert "@alice@" in page.locator(".handle").inner_text()
    assert page.get_by_text("1 follower").count() == 0 and page.get_by_text("abonné").count() == 1
    page.goto(note["id"])
    assert "échelle" in page.locator(".content").inner_text()
    assert page.locator('link[rel="alternate"][type="application/activity+json"]').get_attribute(
        "href") == note["id"]
    # Screenshots to look at (git-ignored): the home page and the post, phone and desktop, in both languages.
    ARTIFACTS.mkdir(exist_ok=True)
    for lang in ("fr", "en"):
        for width in (375, 1280):
            page.set_viewport_size({"width": width, "height": 800})
            for name, url in (("home", inst.url + f"/?lang={lang}"), ("note", note["id"] + f"?lang={lang}")):
                page.goto(url)
                page.screenshot(path=str(ARTIFACTS / f"{name}-{lang}-{width}.png"), full_page=True)
