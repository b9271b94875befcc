"""The web page end to end in real headless Chromium (Debian's chromium, driven by
Playwright's Python package; no browser download): type a review, submit, read the
result, stream a generation over server-sent events. With RECUR_UPDATE_SCREENSHOTS=1 the
screenshot is saved to docs/images/serve-page.png (else to the test's temporary folder)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
from serve_models import serve_in_thread, tiny_sentiment, tiny_tagger  # noqa: E402
from test_serve import EchoRequest, EchoResponse, _stream  # noqa: E402

from recur.serve.app import create_app, load_models  # noqa: E402
from recur.serve.handlers import Route, TaskHandler, register_handler, unregister_handler  # noqa: E402
from recur.serve.limits import Limits  # noqa: E402

CHROMIUM = os.environ.get("RECUR_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "serve-page.png"
# Flags for a closed network and a root user: no sandbox, no background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)),
    reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; or set "
           "RECUR_CHROMIUM)")


@pytest.fixture
def echo_dir(tmp_path):
    register_handler(TaskHandler(
        task="echo-browser", load=lambda folder: None, describe=lambda model: {},
        routes={"generate": Route(EchoRequest, EchoResponse, stream=_stream)}))
    (tmp_path / "config.json").write_text(json.dumps({"task": "echo-browser"}))
    yield tmp_path
    unregister_handler("echo-browser")


def test_pages_in_headless_chromium(tmp_path, echo_dir):
    models = load_models([f"imdb={tiny_sentiment()}"], Limits())
    with serve_in_thread(create_app(models)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 560})
            page.goto(url + "/", wait_until="load")
            section = page.locator("section#imdb-predict")
            section.wait_for(timeout=15_000)
            assert "lstm" in section.locator(".meta").inner_text()
            assert page.locator("form[data-route=generate]").count() == 0  # no such model loaded
            box = section.locator("textarea[name=text]")
            box.fill("the actors were brilliant and the story was wonderful\nthe plot was awful and dull")
            section.locator("button[type=submit]").click()
            labels = section.locator("[data-role=label]")
            labels.nth(1).wait_for(timeout=15_000)
            assert labels.all_inner_texts() == ["positive", "negative"]
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            if os.environ.get("RECUR_UPDATE_SCREENSHOTS") == "1":
                shutil.copyfile(tmp_path / "page.png", SCREENSHOT)

            box.fill("the plot was awful and dull")  # one text: words coloured by evidence
            section.locator("button[type=submit]").click()
            tokens = section.locator("[data-role=explanation] .token")
            tokens.first.wait_for(timeout=15_000)
            words = tokens.all_inner_texts()
            assert words == ["the", "plot", "was", "awful", "and", "dull"]
            scores = [float(t.get_attribute("data-score")) for t in tokens.all()]
            assert words[scores.index(max(scores))] in ("awful", "dull")
            page.screenshot(path=str(tmp_path / "explain.png"), full_page=True)
            if os.environ.get("RECUR_UPDATE_SCREENSHOTS") == "1":
                shutil.copyfile(tmp_path / "explain.png", SCREENSHOT.with_name("serve-explain.png"))

            box.fill("")  # an empty form still answers (the empty text)
            section.locator("button[type=submit]").click()
            labels.first.wait_for(timeout=15_000)
            assert section.locator(".error").count() == 0
        finally:
            browser.close()

    # A streaming task's section appears only when such a model is served.
    models = load_models([f"echo={echo_dir}"], Limits())
    with serve_in_thread(create_app(models)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/", wait_until="load")
            section = page.locator("section#echo-generate")
            section.wait_for(timeout=15_000)
            assert page.locator("form[data-route=predict]").count() == 0
            section.locator("input[name=prompt]").fill("go")
            section.locator("input[name=max_new_tokens]").fill("3")
            section.locator("button[type=submit]").click()
            stream = section.locator("[data-role=stream]")
            page.wait_for_function("() => document.querySelector('[data-role=stream]')"
                                   "?.textContent.includes('go2')", timeout=15_000)
            assert stream.inner_text().strip() == "gogo0 go1 go2"
        finally:
            browser.close()


def test_tagger_entities_in_headless_chromium(tmp_path):
    models = load_models([f"ner={tiny_tagger()}"], Limits())
    with serve_in_thread(create_app(models)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 400})
            page.goto(url + "/", wait_until="load")
            section = page.locator("section#ner-tag")
            section.wait_for(timeout=15_000)
            assert page.locator("form[data-route=predict]").count() == 0
            section.locator("textarea[name=text]").fill("John lives in Paris. Mary visited London.")
            section.locator("button[type=submit]").click()
            entities = section.locator(".entity")
            entities.nth(3).wait_for(timeout=15_000)
            assert entities.all_inner_texts() == ["JohnB-PER", "ParisB-LOC", "MaryB-PER",
                                                  "LondonB-LOC"]
            assert section.locator(".error").count() == 0
            page.screenshot(path=str(tmp_path / "tag.png"), full_page=True)
            if os.environ.get("RECUR_UPDATE_SCREENSHOTS") == "1":
                shutil.copyfile(tmp_path / "tag.png", SCREENSHOT.with_name("serve-tag.png"))
        finally:
            browser.close()
