"""A real headless Chromium for the web UI tests (loaded by conftest.py as a plugin).

Debian's `chromium` and `chromium-driver` packages, driven by Selenium; nothing here
downloads a browser or a driver (Selenium Manager is kept offline by giving it both
paths). One browser serves the whole session: starting Chromium costs seconds.

Screenshots go under one temporary folder per session (printed at the end) so that a
person can look at the pages the tests saw.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testbed import need

CHROMIUM = os.environ.get("DIOPTRA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DIOPTRA_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1280, 800)
WAIT_S = 60.0  # a guard, not a measurement: pages load slowly on a busy machine


class Browser:
    """A thin layer over a Selenium driver: waits, text, screenshots, window size."""

    def __init__(self, driver, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def open(self, url: str) -> Browser:
        self.driver.get(url)
        return self

    @property
    def url(self) -> str:
        return self.driver.current_url

    def text(self) -> str:
        """The page's visible text."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait_until(self, condition: Callable[[], object], what: str,
                   timeout_s: float = WAIT_S) -> object:
        """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                result = condition()
                if result:
                    return result
            except Exception as exc:  # noqa: BLE001 - the page may still be changing
                last_error = exc
            time.sleep(0.2)
        shot = self.screenshot("timeout")
        raise AssertionError(
            f"timed out after {timeout_s:g}s waiting for {what} at {self.url} "
            f"(screenshot {shot}; last error {last_error!r}); page text:\n{self.text()[:2000]}"
        )

    def wait_text(self, *needles: str, timeout_s: float = WAIT_S) -> str:
        """Wait until every needle is in the visible text; returns that text."""
        def has_all() -> str | None:
            text = self.text()
            return text if all(needle in text for needle in needles) else None

        return self.wait_until(has_all, f"the text {needles!r}", timeout_s)

    def find(self, css: str, timeout_s: float = WAIT_S):
        """The first element matching ``css`` once it is displayed."""
        from selenium.webdriver.common.by import By

        def shown():
            for element in self.driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed():
                    return element
            return None

        return self.wait_until(shown, f"an element {css!r}", timeout_s)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def resize(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{len(list(self.shots.iterdir())):03d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def reset(self) -> None:
        """Forget cookies and storage and go back to the default window size."""
        self.driver.delete_all_cookies()
        try:
            self.driver.execute_script("window.localStorage && localStorage.clear()")
        except Exception:  # noqa: BLE001 - about:blank has no storage
            pass
        self.resize(*WINDOW)


def start_chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    return driver


@pytest.fixture(scope="session")
def browser_session() -> Iterator[Browser]:
    need(os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK),
         f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER} "
         "(Debian's chromium and chromium-driver packages)")
    pytest.importorskip("selenium")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download
    profile = Path(tempfile.mkdtemp(prefix="dioptra-chromium-"))
    # Kept after the session (outside pytest's rotating temporary folders) for a person.
    shots = Path(tempfile.mkdtemp(prefix="dioptra-screenshots-"))
    driver = start_chromium(profile)
    try:
        yield Browser(driver, shots)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        print(f"\nbrowser screenshots: {shots}")


@pytest.fixture
def browser(browser_session) -> Browser:
    """The session's browser, with no cookies and the default window size."""
    browser_session.reset()
    return browser_session
