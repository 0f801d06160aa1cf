"""The report page in a real browser (headless Chromium through Selenium): the viewer
lists every episode, its filters (step, reward, consulted) select exactly the episodes
they should, and an opened episode shows accepted and refused replies differently and the
final answer against the gold. A screenshot is kept as a test artifact, in
$EAPO_TEST_ARTIFACTS if set, else in the test's tmp folder.

Needs Debian's `chromium` and `chromium-driver` (`make browser` installs them; CI does).
Skips, saying so, only when chromium cannot be found."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from eapo.reporting.report import build_report

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium not found on PATH: install Debian's chromium and chromium-driver (make browser)")
    driver_path = shutil.which("chromedriver")
    assert driver_path, "chromium is installed but chromedriver is not: apt-get install chromium-driver"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(report_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-report")
    result = build_report([report_runs], out)
    html = result.html.read_text()
    block = re.search(r'<script id="eapo-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    return result.html, json.loads(block)["episodes"]


def artifacts_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EAPO_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def listed(browser) -> list[dict]:
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#ep-rows tr')).map(tr => "
        "({step: +tr.dataset.step, reward: +tr.dataset.reward, consults: +tr.dataset.consults}));")
    count = browser.find_element("id", "ep-count").text
    assert count.startswith(f"{len(rows)} of "), count  # every match is listed (fewer than a page)
    return rows


def test_viewer_filters_and_episode_view(browser, page, tmp_path):
    from selenium.webdriver.support.ui import Select

    path, episodes = page
    browser.get(path.as_uri())
    assert browser.title == "EAPO report"
    assert browser.execute_script("return document.querySelectorAll('#plots img').length") == 8
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('#plots img')).every(i => i.complete && i.naturalWidth > 0)")
    assert len(listed(browser)) == len(episodes)

    consult = Select(browser.find_element("id", "f-consult"))
    consult.select_by_value("yes")
    rows = listed(browser)
    assert len(rows) == sum(e["consults"] > 0 for e in episodes) > 0 and all(r["consults"] > 0 for r in rows)
    consult.select_by_value("no")
    rows = listed(browser)
    assert len(rows) == sum(e["consults"] == 0 for e in episodes) > 0 and all(r["consults"] == 0 for r in rows)
    consult.select_by_value("all")

    step = Select(browser.find_element("id", "f-step"))
    step.select_by_value("2")
    rows = listed(browser)
    assert len(rows) == sum(e["step"] == 2 for e in episodes) > 0 and {r["step"] for r in rows} == {2}

    rmin = browser.find_element("id", "f-rmin")
    rmin.send_keys("1")
    rows = listed(browser)
    assert len(rows) == sum(e["step"] == 2 and e["reward"] >= 1 for e in episodes)
    assert all(r["reward"] >= 1 and r["step"] == 2 for r in rows)
    rmin.clear()
    step.select_by_value("all")
    browser.find_element("id", "f-rmax").send_keys("0.5")
    rows = listed(browser)
    assert len(rows) == sum(e["reward"] <= 0.5 for e in episodes) > 0
    browser.find_element("id", "f-rmax").clear()
    assert len(listed(browser)) == len(episodes)

    # open an episode whose consult got one reply accepted and one refused
    target = next(i for i, e in enumerate(episodes) if e["acc"] and e["ref"])
    browser.find_element("css selector", f'#ep-rows tr[data-idx="{target}"]').click()
    detail = browser.find_element("id", "ep-detail")
    ep = episodes[target]
    assert ep["uid"] in detail.text and ep["question"] in detail.text
    accepted = detail.find_elements("css selector", ".call.accepted")
    refused = detail.find_elements("css selector", ".call.refused")
    assert len(accepted) == ep["acc"] and len(refused) == ep["ref"]
    assert accepted[0].value_of_css_property("background-color") != refused[0].value_of_css_property("background-color")
    assert "accepted" in accepted[0].text and "refused" in refused[0].text
    final = detail.find_element("css selector", ".final")
    assert f"gold: {ep['gold']}" in final.text
    assert ("correct" in final.get_attribute("class")) == (ep["score"] >= 1)
    for seg in ep["segs"]:
        if seg["p"]:
            assert seg["p"].strip() in detail.text  # the policy's own text, turn by turn

    browser.execute_script("document.getElementById('viewer').scrollIntoView()")
    shot = artifacts_dir(tmp_path) / "report-viewer.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    # a link to an episode opens it
    other = episodes[-1]
    browser.get(f"{path.as_uri()}#ep={other['uid']}")
    assert f"Episode {other['uid']}" in browser.find_element("id", "ep-detail").text
