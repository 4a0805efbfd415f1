#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/tools/test_optional_absent.py - an absent optional field never makes
a rule fire by itself (issue 16, "Default rules that generalise").

A feed may carry only the required columns (txn_id, event_time, card_id,
merchant_id, amount, currency): the held-out benchmark has card, terminal,
amount and time. Generates vigil-gen traffic, drops every optional column
(mcc, country, channel, terminal, device, ip, lat, lon; the labels stay, so
the nightly rebuilds tune thresholds and fraud rates as usual), replays it
through the nightly cycle with rules alone (--no-model: the heuristics that
step aside once a model exists are all active, the harshest case) and
checks, rule by rule, that no rule of rules/default.rules whose condition
reads an optional field, or a feature made from one, ever fires.

Which features come from optional fields is read from `vigil-rules
features --json` (the schema), by the field each is made of; the rules'
conditions are read from the rule file. A rule that reads such a feature
and still fires here fires because a field is absent: the failure names it
and its hit count. The same traffic with every column is replayed too, as a
control: there, those rules do fire, so the check can fail.

Usage: test_optional_absent.py BUILD_ROOT SOURCE_ROOT
"""
import csv
import json
import os
import re
import subprocess
import sys
import tempfile

REQUIRED = ["txn_id", "event_time", "card_id", "merchant_id", "amount", "currency"]
LABELS = ["label", "label_time"]
# Parts of a feature name that say which optional field it is made of
# (docs/features.md): mcc, country, channel, terminal, device, ip, the
# location (lat, lon, and the distances and speeds made from them).
OPTIONAL_PART = re.compile(
    r"(^|[._])(mcc|country|countries|channel|terminal|terminal_id|device|device_id|ip|"
    r"lat|lon|km|kmh)(?=$|[._])")


def fail(msg):
    sys.exit("test_optional_absent: " + msg)


def optional_features(rules_tool):
    out = subprocess.run([rules_tool, "features", "--json"], check=True,
                         capture_output=True, text=True).stdout
    names = {f["name"] for f in json.loads(out)}
    opt = {n for n in names if OPTIONAL_PART.search(n)}
    # sanity: the schema still has the fields this test is about
    for must in ("country", "mcc", "channel", "terminal_id", "device_id", "ip", "lat", "lon"):
        if must not in opt:
            fail(f"feature {must} not in vigil-rules features: update the test")
    return names, opt


def rule_conditions(path):
    """{rule name: text of its when clause} of a rule file."""
    text = re.sub(r"#[^\n]*", "", open(path).read())
    rules = {}
    for m in re.finditer(r"\brule\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{(.*?)\n\s*score\b", text, re.S):
        rules[m.group(1)] = m.group(2)
    if len(rules) < 10:
        fail(f"only {len(rules)} rules read from {path}")
    return rules


def reads(cond, features):
    idents = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", cond))
    return sorted(idents & features)


def hits(results):
    count = {}
    with open(results) as fh:
        for line in fh:
            for h in json.loads(line).get("hits", []):
                count[h["rule"]] = count.get(h["rule"], 0) + 1
    return count


def main():
    build, src = sys.argv[1], sys.argv[2]
    gen = os.path.join(build, "tools", "gen", "vigil-gen")
    replay = os.path.join(build, "tools", "replay", "vigil-replay")
    rules_tool = os.path.join(build, "tools", "rulestool", "vigil-rules")
    rules = os.path.join(src, "rules", "default.rules")
    names, opt = optional_features(rules_tool)
    conds = rule_conditions(rules)
    watched = {r: reads(c, opt) for r, c in conds.items() if reads(c, opt)}
    if len(watched) < 5:
        fail(f"only {len(watched)} rules read an optional field: the rule parsing broke?")

    with tempfile.TemporaryDirectory(prefix="vigil-optional-") as tmp:
        full = os.path.join(tmp, "full.csv")
        bare = os.path.join(tmp, "bare.csv")
        subprocess.run([gen, "--cards", "400", "--days", "30", "--seed", "7",
                        "--fraud-rate", "0.02", "-q", "-o", full], check=True)
        with open(full, newline="") as fi, open(bare, "w", newline="") as fo:
            r = csv.DictReader(fi)
            keep = REQUIRED + [c for c in LABELS if c in r.fieldnames]
            w = csv.DictWriter(fo, fieldnames=keep, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            rows = 0
            for row in r:
                w.writerow(row)
                rows += 1
        count = {}
        for name, path in (("full", full), ("bare", bare)):
            res = os.path.join(tmp, name + ".results")
            summ = os.path.join(tmp, name + ".json")
            subprocess.run([replay, "--csv", path, "--rules", rules, "--nightly", "--no-model",
                            "-q", "--results", res, "--summary", summ], check=True)
            s = json.load(open(summ))
            if s["rows"] != rows or s.get("bad_rows", 0) != 0:
                fail(f"{name}: {s['rows']} rows replayed of {rows}, {s.get('bad_rows')} bad")
            count[name] = hits(res)

    # control: with every column, rules reading optional fields do fire
    fired_full = [r for r in watched if count["full"].get(r, 0) > 0]
    if len(fired_full) < 3:
        fail(f"control: only {fired_full} of the rules reading optional fields fire "
             "on the full traffic: the check below would prove nothing")
    bad = [f"{r} ({count['bare'][r]} hits; reads {', '.join(watched[r])})"
           for r in sorted(watched) if count["bare"].get(r, 0) > 0]
    if bad:
        fail("with only the required columns these rules fire, though they read "
             "an absent field: " + "; ".join(bad))
    print(f"test_optional_absent: {rows} rows; {len(watched)} rules read an optional "
          f"field ({len(fired_full)} fire on the full traffic), none fires without it; "
          f"{sum(count['bare'].values())} hits from the other rules")


if __name__ == "__main__":
    main()
