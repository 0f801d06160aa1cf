"""Screenshots of an `eapo report` page for the README (headless Chromium through Selenium).

    .venv/bin/eapo report runs/default-s0 --out /tmp/report
    .venv/bin/python docs/img/make_screenshots.py /tmp/report/report.html docs/img

writes report-overview.png (tables and the first plots) and report-viewer.png (the
trajectory viewer with one episode open: the first one that had replies both accepted and
refused and ended correct, else the first that consulted).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def main(page: Path, out: Path) -> None:
    html = page.read_text(encoding="utf-8")
    eps = json.loads(re.search(r'<script id="eapo-data" type="application/json">(.*?)</script>', html, re.S).group(1))["episodes"]
    pick = next((i for i, e in enumerate(eps) if e["acc"] and e["ref"] and e["score"] >= 1), None)
    if pick is None:
        pick = next(i for i, e in enumerate(eps) if e["consults"])
    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    try:
        driver.get(page.resolve().as_uri())
        out.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out / "report-overview.png"))
        driver.find_element("id", "f-consult").send_keys("consulted")
        driver.execute_script("window.eapoViewer.select(arguments[0]);"
                              "document.getElementById('viewer').scrollIntoView();", pick)
        driver.save_screenshot(str(out / "report-viewer.png"))
    finally:
        driver.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
