#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/tools/test_report_ui.py - vigil-replay's HTML report in a browser.

Generates a small vigil-gen stream (frauds of every pattern), replays it
with nightly rebuilds and --compare (the default rules with the review
band lowered: some decisions change) into --report, opens the page in
headless Chromium through Debian's chromedriver and checks that what an
analyst reads is there and drawn: the score histogram with the review and
decline bands and readable ticks, the precision-recall curve with its
operating point, shadow and negative-points rules marked as such, the money
table, the day-by-day trend with a row per day and the nightly model
column, the top alerted transactions with their reasons, the side-by-side
decision diff. Skips (exit 77, meson's code) with the reason when selenium,
chromium or chromedriver is missing. Usage: test_report_ui.py BUILD_ROOT SOURCE_ROOT
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vt_browser import chromium  # noqa: E402  (skips without a browser)
from selenium.webdriver.common.by import By  # noqa: E402


def fail(msg):
    sys.exit("test_report_ui: " + msg)


def main():
    build, src = sys.argv[1], sys.argv[2]
    gen = os.path.join(build, "tools", "gen", "vigil-gen")
    replay = os.path.join(build, "tools", "replay", "vigil-replay")
    with tempfile.TemporaryDirectory(prefix="vigil-report-ui-") as tmp:
        csv = os.path.join(tmp, "gen.csv")
        html = os.path.join(tmp, "report.html")
        cmpdir = os.path.join(tmp, "cmp")
        os.mkdir(cmpdir)
        for f in ("default.rules", "blocked_cards.txt", "test_bins.txt"):
            shutil.copy(os.path.join(src, "rules", f), cmpdir)
        cmp_rules = os.path.join(cmpdir, "default.rules")
        text = open(cmp_rules).read()
        m = re.search(r"^band review = (\w+)$", text, re.M)
        if m is None:
            fail("no 'band review = N' line in rules/default.rules")
        if m.group(1).isdigit():
            review_at = int(m.group(1))
        else:
            # a tuned band: 8 days have no model, and a band on the score tunes on
            # the model's scores alone, so the band in force is its fallback
            t = re.search(r"^threshold %s = .* fallback (\d+)\b" % m.group(1), text, re.M)
            if t is None:
                fail("band review = %s: no such threshold with a whole fallback" % m.group(1))
            review_at = int(t.group(1))
        text = text.replace(m.group(0), "band review = %d" % (review_at - 10))
        open(cmp_rules, "w").write(text)
        subprocess.run([gen, "--cards", "300", "--days", "8", "--seed", "3",
                        "--fraud-rate", "0.02", "-q", "-o", csv], check=True)
        subprocess.run([replay, "--csv", csv, "--rules", os.path.join(src, "rules", "default.rules"),
                        "--compare", cmp_rules, "--nightly", "--report", html, "-q"], check=True)

        drv = chromium(1200, 1000)
        try:
            check(drv, "file://" + html, review_at)
        finally:
            drv.quit()
    print("test_report_ui: ok")


def one(drv, css, what):
    els = drv.find_elements(By.CSS_SELECTOR, css)
    if not els:
        fail(f"no {what} ({css})")
    if not els[0].is_displayed():
        fail(f"{what} ({css}) is not displayed")
    return els[0]


def check(drv, url, review_at):
    drv.get(url)
    if drv.find_elements(By.TAG_NAME, "script"):
        fail("the report has a script: it must stay self-contained")
    # score histogram: bands, their thresholds named, round x ticks
    hist = one(drv, "#score-histogram svg", "score histogram")
    if hist.size["height"] < 100 or hist.size["width"] < 300:
        fail(f"the score histogram is drawn {hist.size}, too small to read")
    one(drv, "#score-histogram rect.band-review", "review band")
    one(drv, "#score-histogram rect.band-decline", "decline band")
    labels = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#score-histogram text.bandl")]
    if not any(("review" in t and str(review_at) in t) for t in labels):
        fail(f"the review band is not labelled with its threshold {review_at}: {labels}")
    ticks = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#score-histogram text.xtick")]
    if len(ticks) < 3 or any(not re.fullmatch(r"-?\d+", t) for t in ticks):
        fail(f"score ticks are not round numbers: {ticks}")
    step = {int(b) - int(a) for a, b in zip(ticks, ticks[1:])}
    if len(step) != 1:
        fail(f"score ticks are not evenly spaced: {ticks}")
    if len(drv.find_elements(By.CSS_SELECTOR, "#score-histogram rect.fraud")) < 2:
        fail("no fraud bars in the histogram")
    # PR curve and the operating point
    one(drv, "#pr-curve polyline.curve", "precision-recall curve")
    op = one(drv, "#pr-curve #operating-point", "operating point")
    if "precision" not in op.find_element(By.TAG_NAME, "title").get_attribute("textContent"):
        fail("the operating point does not say its precision")
    # the decisions are not one threshold: their point is called what it
    # is, and the review band's own point on the curve is marked apart
    if "decisions" not in drv.find_element(By.CSS_SELECTOR, "#pr-curve text.opl").text:
        fail("the operating point's label does not say it is the decisions made")
    bp = one(drv, "#pr-curve #band-point", "the review band's point on the curve")
    if "review band" not in bp.find_element(By.TAG_NAME, "title").get_attribute("textContent"):
        fail("the band point does not say it is the review band's")
    # rules: shadow and negative-points rules marked
    shadow = drv.find_elements(By.CSS_SELECTOR, "#rules g.rule-shadow text")
    if not shadow or "(shadow)" not in shadow[0].text:
        fail("no shadow rule marked '(shadow)' in the rules plot")
    neg = drv.find_elements(By.CSS_SELECTOR, "#rules g.rule-negative text")
    if not neg or not re.search(r"\(-\d+ points\)", neg[0].text):
        fail("no negative-points rule marked with its points in the rules plot")
    # money
    money = one(drv, "table#money", "money table").text
    for row in ("fraud caught", "legitimate declined", "legitimate sent to review"):
        if row not in money:
            fail(f"the money table has no '{row}' row")
    # day-by-day trend: a row per replayed day, the nightly model column
    one(drv, "#trend-chart polyline.trend.precision", "precision trend line")
    days = drv.find_elements(By.CSS_SELECTOR, "table#trend tr")[1:]
    if len(days) != 8:
        fail(f"the trend table has {len(days)} days, the replay covered 8")
    if not drv.find_elements(By.CSS_SELECTOR, "table#trend td.model"):
        fail("the trend table names no nightly generation/model")
    # top alerted transactions with reasons
    top = drv.find_elements(By.CSS_SELECTOR, "table#top-alerts tr.top-row")
    if not top:
        fail("no top alerted transaction listed")
    reasons = top[0].find_element(By.CSS_SELECTOR, "td.reasons").text
    if not reasons.strip():
        fail("the top alert lists no reason")
    # --compare: the side-by-side decision diff
    one(drv, "#compare-diff table.transitions", "decision transition table")
    if not drv.find_elements(By.CSS_SELECTOR, "#compare-diff tr.diff-row"):
        fail("the decision diff lists no changed transaction (the review band moved)")


if __name__ == "__main__":
    main()
