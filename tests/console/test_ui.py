#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/console/test_ui.py - vigil-console in a real browser.

Starts a real vigild on a temporary data directory, replays a small
vigil-gen stream into it (with nightly rebuilds, so there are generations,
profiles and labels), starts vigil-console on loopback, and drives headless
Chromium through Debian's chromedriver with selenium: sign in, open the
queue, open a case, mark it fraud (the label is then read back from the
archive), edit a rule, check it, back-test it, deploy it (vigild's rules
hash changes) and roll back (the hash returns), and as an admin roll the
feature generation back one from the nights page (vigild serves the older
generation; the audit log has it). Takes screenshots of each
page (--screenshots DIR: docs/img/console-*.png).

Skips (exit 77, meson's code) with the reason when selenium, chromium or
chromedriver is missing. Usage: test_ui.py BUILD_ROOT SOURCE_ROOT [--screenshots DIR]
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vt_browser import chromium  # noqa: E402  (skips without a browser)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

TOKEN = "rita-rule-editor-token-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_json(url, token=None, timeout=10):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def wait_for(what, fn, timeout=60.0):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - a server still starting
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print("usage: test_ui.py BUILD_ROOT SOURCE_ROOT [--screenshots DIR]", file=sys.stderr)
        return 2
    build, src = args[0], args[1]
    shots = args[args.index("--screenshots") + 1] if "--screenshots" in args else None
    tmp = tempfile.mkdtemp(prefix="vigil-console-ui-")
    procs = []
    try:
        return run(build, src, shots, tmp, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if os.environ.get("VIGIL_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(build, src, shots, tmp, procs):
    data = os.path.join(tmp, "data")
    rules_dir = os.path.join(tmp, "rules")
    os.makedirs(data)
    os.makedirs(rules_dir)
    for f in ("default.rules", "blocked_cards.txt", "test_bins.txt"):
        shutil.copy(os.path.join(src, "rules", f), rules_dir)
    rules = os.path.join(rules_dir, "default.rules")
    csv = os.path.join(tmp, "traffic.csv")
    subprocess.run([os.path.join(build, "tools/gen/vigil-gen"), "--cards", "400", "--days", "12",
                    "--seed", "7", "--start", "2024-01-01", "-o", csv],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = "ipc://" + os.path.join(data, "vigild.sock")
    admin_port = free_port()
    log = open(os.path.join(tmp, "vigild.log"), "w")
    procs.append(subprocess.Popen([os.path.join(build, "server/vigild"), "--data", data,
                                   "--listen", sock, "--admin", f"127.0.0.1:{admin_port}",
                                   "--rules", rules, "--fsync", "never"], stderr=log))
    wait_for("vigild", lambda: http_json(f"http://127.0.0.1:{admin_port}/readyz")["ready"])
    subprocess.run([os.path.join(build, "tools/replay/vigil-replay"), "--csv", csv, "--server", sock,
                    "--rules", rules, "--concurrency", "1", "--nightly", "--data", data,
                    "--rebuild", os.path.join(build, "batch/vigil-rebuild"),
                    "--fraud-labels-only", "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    rows = sum(1 for _ in open(csv)) - 1
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write(f"rita admin {TOKEN}\n")
    os.chmod(tokens, 0o600)  # the console refuses a tokens file others can read
    # vigild's admin endpoint is on loopback without a token file (it serves
    # everything there); the console sends this one anyway
    vtoken = os.path.join(tmp, "vigild.token")
    with open(vtoken, "w") as f:
        f.write("ui-test-vigild-admin-token\n")
    port = free_port()
    clog = open(os.path.join(tmp, "console.log"), "w")
    procs.append(subprocess.Popen([os.path.join(build, "console/vigil-console"), "--data", data,
                                   "--rules", rules, "--tokens", tokens, "--state",
                                   os.path.join(tmp, "state"), "--server", sock, "--listen",
                                   f"127.0.0.1:{port}", "--replay",
                                   os.path.join(build, "tools/replay/vigil-replay"),
                                   "--vigild-admin", f"127.0.0.1:{admin_port}",
                                   "--vigild-admin-token-file", vtoken, "-q"],
                                  stderr=clog))
    base = f"http://127.0.0.1:{port}"
    wait_for("the console's index",
             lambda: http_json(base + "/api/status", TOKEN)["index"]["scored"] >= rows)
    hash0 = http_json(f"http://127.0.0.1:{admin_port}/v1/rules")["content_hash"]
    labels0 = http_json(base + "/api/status", TOKEN)["index"]["labels"]

    drv = chromium(1400, 1000, browser_log=True)
    try:
        w = WebDriverWait(drv, 30)

        def shot(name):
            if shots:
                os.makedirs(shots, exist_ok=True)
                drv.save_screenshot(os.path.join(shots, f"console-{name}.png"))

        drv.get(base + "/#/queue")
        w.until(EC.visibility_of_element_located((By.ID, "token-input"))).send_keys(TOKEN)
        drv.find_element(By.ID, "token-save").click()
        # the queue
        w.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#queue-table .case-link")))
        assert "of" in drv.find_element(By.ID, "queue-count").text
        shot("queue")
        link = drv.find_element(By.CSS_SELECTOR, "#queue-table .case-link")
        txn = link.text
        link.click()
        # the case
        w.until(EC.presence_of_element_located((By.ID, "hits-table")))
        assert txn in drv.find_element(By.TAG_NAME, "h1").text
        assert "unlabelled" in drv.find_element(By.ID, "case-label").text
        shot("case")
        # case work: a note and a status, shown after the page reloads the case
        drv.find_element(By.ID, "note-text").send_keys("called the cardholder")
        drv.find_element(By.ID, "btn-note").click()
        w.until(EC.text_to_be_present_in_element((By.ID, "notes"), "called the cardholder"))
        Select(drv.find_element(By.ID, "case-status")).select_by_value("investigating")
        drv.find_element(By.ID, "btn-status").click()
        w.until(EC.text_to_be_present_in_element((By.ID, "status-msg"), "Status investigating"))
        assert http_json(base + "/api/cases/" + txn, TOKEN)["status"] == "investigating"
        drv.find_element(By.ID, "btn-fraud").click()
        w.until(EC.text_to_be_present_in_element((By.ID, "case-label"), "fraud"))
        # the label reached vigild's archive: the console reads it back from there
        wait_for("the label in the archive",
                 lambda: http_json(base + "/api/status", TOKEN)["index"]["labels"] > labels0, 30)
        # search: any archived transaction, here the allowed ones of the last day
        drv.get(base + "/#/search?decision=allow")
        w.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#search-table .btn-label-fraud")))
        assert "transactions from" in drv.find_element(By.ID, "search-count").text
        shot("search")
        # rules: edit, check, back-test, deploy
        drv.get(base + "/#/rules")
        ta = w.until(EC.presence_of_element_located((By.ID, "rules-text")))
        text = ta.get_property("value")
        band = "band review = review_at"
        assert band in text
        band_line = text[:text.index(band)].count("\n") + 1
        drv.execute_script("arguments[0].value = arguments[1];", ta,
                           text.replace(band, "band review = 35 +"))
        drv.find_element(By.ID, "btn-check").click()
        err = w.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#check-result pre.diag")))
        assert "default.rules:%d:" % band_line in err.text, err.text
        drv.execute_script("arguments[0].value = arguments[1];", ta,
                           text.replace(band, "band review = 20"))
        drv.find_element(By.ID, "btn-check").click()
        w.until(EC.text_to_be_present_in_element((By.ID, "check-result"), "compiles"))
        drv.find_element(By.ID, "btn-backtest").click()
        WebDriverWait(drv, 180).until(EC.presence_of_element_located((By.ID, "bt-metrics")))
        assert "decisions change" in drv.find_element(By.ID, "bt-changed").text
        assert "money caught" in drv.find_element(By.ID, "bt-metrics").text
        time.sleep(0.5)  # the chart draws on the next tick
        shot("rules")
        drv.find_element(By.ID, "deploy-message").send_keys("review from 30 points")
        drv.find_element(By.ID, "btn-deploy").click()
        w.until(EC.text_to_be_present_in_element((By.ID, "deploy-result"), "deployed as version"))
        hash1 = wait_for("vigild to load the deployed file", lambda: (
            h := http_json(f"http://127.0.0.1:{admin_port}/v1/rules")["content_hash"]) != hash0 and h)
        # roll back to version 1 (the file as found)
        btn = w.until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "#versions-table .btn-rollback[data-version='1']")))
        btn.click()
        drv.switch_to.alert.accept()
        w.until(EC.presence_of_element_located(
            (By.XPATH, "//*[@id='versions-table']//tr[td[1]='1']//span[text()='deployed']")))
        wait_for("vigild to load the rolled-back file", lambda: http_json(
            f"http://127.0.0.1:{admin_port}/v1/rules")["content_hash"] == hash0)
        assert hash1 != hash0
        # nights: roll the feature generation back one (through vigild)
        cur = http_json(base + "/api/generations", TOKEN)["current"]
        drv.get(base + "/#/nights")
        w.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#nights-table tbody tr")))
        time.sleep(0.5)
        shot("nights")
        btn = w.until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, f"#nights-table .btn-make-current[data-generation='{cur - 1}']")))
        btn.click()
        drv.switch_to.alert.accept()
        wait_for("vigild to serve the rolled-back generation", lambda: http_json(
            f"http://127.0.0.1:{admin_port}/healthz")["features_generation"] == cur - 1)
        w.until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, f"#nights-table .btn-make-current[data-generation='{cur}']")))
        assert http_json(base + "/api/generations", TOKEN)["current"] == cur - 1
        drv.get(base + "/#/audit")
        w.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#audit-table tbody tr")))
        audit = drv.find_element(By.ID, "audit-table").text
        for action in ("label", "deploy_rules", "rollback_rules", "backtest",
                       "generation_current"):
            assert action in audit, action
        shot("audit")
    except Exception:
        drv.save_screenshot(os.path.join(tmp, "failure.png"))
        for e in drv.get_log("browser"):
            print("browser:", e.get("message"), file=sys.stderr)
        print(f"page at failure: {tmp}/failure.png", file=sys.stderr)
        raise
    finally:
        drv.quit()
    # the console stops cleanly (under ASan: no leak, no error)
    console = procs[-1]
    console.send_signal(signal.SIGTERM)
    rc = console.wait(15)
    clog.close()
    if rc != 0:
        print(open(os.path.join(tmp, "console.log")).read(), file=sys.stderr)
        raise AssertionError(f"vigil-console exited with status {rc}")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
