"""A headless Debian Chromium driven by Selenium, for the dashboard's browser tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Screenshots of every page the tests open (git-ignored, under build/).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium(width: int = 1280, height: int = 800):
    """A new headless Chromium session (`pytest.skip` when Chromium is not installed)."""
    if not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make chromium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or ""
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot(driver, name: str) -> Path:
    """Save the current page as `build/screenshots/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def severe_logs(driver) -> list[str]:
    """The browser console's script errors (a failed request, such as the 401 that opens
    the token prompt, is the page working as meant and is left out)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
