# SPDX-License-Identifier: MIT
"""tests/lib/vt_browser.py - headless Chromium for the browser tests
(tests/console/test_ui.py, tests/tools/test_report_ui.py), through
Debian's python3-selenium and chromium-driver.

Importing it checks that selenium, chromium and chromedriver are there and
otherwise skips the test (exit 77, meson's skip code) with the reason, so
a machine without a browser says what is missing instead of failing.
"""
import atexit
import os
import shutil
import sys
import tempfile

SKIP = 77


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    skip("python3-selenium is not installed (apt-get install python3-selenium)")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not os.access(CHROMIUM, os.X_OK):
    skip("chromium is not installed (apt-get install chromium)")
if not os.access(DRIVER, os.X_OK):
    skip("chromedriver is not installed (apt-get install chromium-driver)")


def chromium(width, height, browser_log=False):
    """A headless Chromium window of width x height pixels (the caller
    quits it); browser_log keeps the page's console messages
    (drv.get_log("browser")). Skips if chromedriver cannot start it."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium's profile and its singleton socket directory (made in
    # TMPDIR) go in a directory of the test's own, removed at exit: left in
    # /tmp, every run added one.
    tmp = tempfile.mkdtemp(prefix="vigil-chromium-")
    atexit.register(shutil.rmtree, tmp, True)
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", f"--user-data-dir={tmp}/profile"):
        opts.add_argument(a)
    env = dict(os.environ, TMPDIR=tmp)
    try:
        return webdriver.Chrome(service=Service(DRIVER, env=env), options=opts)
    except Exception as e:  # noqa: BLE001
        skip(f"chromedriver could not start chromium: {str(e).splitlines()[0]}")
    return None
